"""Edges of the services: async callers, objects that are not models, stale objects.

Async code cannot run a query on attribute access (``SynchronousOnlyOperation``), so
the async services return instances whose relations are loaded. A call given something
that is not a model instance raises a clear ``TypeError``. A refused change still
brings the caller's object up to date with the row it read under lock.
"""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync

from django_steps import engine
from django_steps._engine.cache import workflow_cache
from django_steps.exceptions import DefinitionError, InvalidObject, InvalidStatus, StepsError
from django_steps.models import WorkflowHistory, WorkflowInstance, WorkflowStep
from django_steps.services import (
    aget_workflow_instance_for_object,
    astart_workflow_instance,
    get_workflow_instance_for_object,
    start_workflow_instance,
    update_workflow_step_status,
)
from tests.factories import claims_definition, create_workflow
from tests.testapp.models import Claim

pytestmark = pytest.mark.django_db


@pytest.fixture
def workflow() -> Any:
    return create_workflow(claims_definition())


@pytest.fixture
def claim() -> Claim:
    return Claim.objects.create(title="Hail")


def read_in_async_code(instance: WorkflowInstance) -> tuple[str, ...]:
    """What async code reads of an instance (raises if any of it needs a query)."""
    return (
        instance.workflow.name,
        instance.current_step.name,
        instance.current_step_status.name,
        str(instance.status_before_hold),
        instance.content_type.model,
        instance.content_object.title,
    )


@pytest.mark.parametrize("cached", [True, False], ids=["compiled", "not compiled yet"])
def test_async_look_up_returns_an_instance_async_code_can_read(workflow, claim, cached):
    instance = start_workflow_instance(workflow.name, claim)
    assert instance is not None
    assert update_workflow_step_status(instance, "Accepted")
    if not cached:
        workflow_cache.clear()

    async def scenario() -> tuple[str, ...]:
        found = await aget_workflow_instance_for_object(claim)
        by_name = await aget_workflow_instance_for_object(claim, workflow.name)
        assert read_in_async_code(by_name) == read_in_async_code(found)
        return read_in_async_code(found)

    assert async_to_sync(scenario)() == ("Claims", "Review", "Pending", "None", "claim", "Hail")


def test_async_start_returns_an_instance_async_code_can_read(workflow, claim):
    async def scenario() -> tuple[tuple[str, ...], tuple[str, ...]]:
        started = await astart_workflow_instance(workflow.name, claim)
        again = await astart_workflow_instance(workflow.name, claim)  # the existing one
        assert again.pk == started.pk
        return read_in_async_code(started), read_in_async_code(again)

    started, again = async_to_sync(scenario)()
    assert started == again == ("Claims", "Submitted", "New", "None", "claim", "Hail")


def test_sync_look_up_attaches_the_cached_rows(workflow, claim, django_assert_num_queries):
    instance = start_workflow_instance(workflow.name, claim)
    with django_assert_num_queries(1):
        found = get_workflow_instance_for_object(claim)
        assert found is not None
        assert read_in_async_code(found) == read_in_async_code(instance)


@pytest.mark.parametrize("not_a_model", ["not a model", 42, None, {"pk": 1}, Claim])
def test_an_object_that_is_not_a_model_instance_is_a_type_error(workflow, not_a_model):
    for call in (
        lambda: engine.start_workflow_instance(workflow.name, not_a_model),
        lambda: start_workflow_instance(workflow.name, not_a_model),
        lambda: get_workflow_instance_for_object(not_a_model),
        lambda: engine.get_workflow_instance_for_object(not_a_model, workflow.name),
    ):
        with pytest.raises(InvalidObject, match="not a") as raised:
            call()
        assert isinstance(raised.value, TypeError)
        assert isinstance(raised.value, StepsError)
        assert raised.value.value is not_a_model
    assert not WorkflowInstance.objects.exists()


def test_a_refused_change_refreshes_a_stale_object(workflow, claim):
    instance = start_workflow_instance(workflow.name, claim)
    assert instance is not None
    stale = WorkflowInstance.objects.get(pk=instance.pk)  # read before the move
    assert update_workflow_step_status(instance, "Accepted")  # to Review, elsewhere
    rows = WorkflowHistory.objects.count()
    with pytest.raises(InvalidStatus):
        engine.update_workflow_step_status(stale, "Accepted")  # not a status of Review
    assert (stale.current_step.name, stale.current_step_status.name) == ("Review", "Pending")
    assert stale.updated_at == instance.updated_at
    assert not update_workflow_step_status(stale, "Withdrawn")  # the services too
    assert stale.current_step.name == "Review"
    assert WorkflowHistory.objects.count() == rows


def test_async_look_up_of_an_instance_whose_workflow_cannot_be_compiled(workflow, claim):
    instance = start_workflow_instance(workflow.name, claim)
    assert instance is not None
    WorkflowStep.objects.filter(workflow=workflow, name="Closed").update(is_final_step=False)
    with pytest.raises(DefinitionError):
        engine.cancel_workflow_instance(instance)
    found = async_to_sync(aget_workflow_instance_for_object)(claim)
    assert found == instance  # returned as the sync look-up returns it
    assert found.current_step.name == "Submitted"  # loaded on access, in sync code
