"""Databases: every write runs in a transaction on the database it writes to.

With a router sending django-steps' rows to another database, a start, a state change
and a definition edit each run in one transaction there, so a receiver that refuses
the change undoes all of it. Two databases holding the same rows (loaded from one
fixture) never share a compiled workflow.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core import serializers
from django.db import transaction

from django_steps import engine, signals
from django_steps.models import (
    Workflow,
    WorkflowHistory,
    WorkflowInstance,
    WorkflowStep,
    WorkflowStepStatus,
    WorkflowTransition,
)
from django_steps.services import start_workflow_instance, update_workflow_step_status
from tests.factories import claims_definition, create_workflow
from tests.testapp.models import Claim

pytestmark = pytest.mark.django_db(databases=["default", "other"])

LOW = {"claim": {"amount": 500.0, "is_high_risk": False}}


class EverythingOnOther:
    """A router sending every read and write to the ``other`` database."""

    def db_for_read(self, model: Any, **hints: Any) -> str:
        return "other"

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return "other"


ROUTER = f"{__name__}.EverythingOnOther"


class Refused(Exception):
    pass


def refuse(**kwargs: Any) -> None:
    raise Refused


@pytest.fixture
def routed(settings: Any) -> None:
    settings.DATABASE_ROUTERS = [ROUTER]
    create_workflow(claims_definition())  # on "other", through the router


def test_a_refused_start_under_a_router_writes_nothing(routed):
    claim = Claim.objects.create(title="Hail")
    assert claim._state.db == "other"
    signals.workflow_started.connect(refuse)
    try:
        with pytest.raises(Refused):
            engine.start_workflow_instance("Claims", claim)
    finally:
        signals.workflow_started.disconnect(refuse)
    assert WorkflowInstance.objects.using("other").count() == 0
    assert WorkflowHistory.objects.using("other").count() == 0
    instance = start_workflow_instance("Claims", claim)  # and then it starts
    assert instance is not None
    assert instance._state.db == "other"
    assert WorkflowHistory.objects.using("other").filter(instance=instance).count() == 1
    assert WorkflowInstance.objects.using("default").count() == 0


def test_a_refused_change_under_a_router_writes_nothing(routed):
    instance = start_workflow_instance("Claims", Claim.objects.create(title="Hail"))
    assert instance is not None
    signals.workflow_step_changed.connect(refuse)
    try:
        with pytest.raises(Refused):
            engine.update_workflow_step_status(instance, "Accepted")
    finally:
        signals.workflow_step_changed.disconnect(refuse)
    stored = WorkflowInstance.objects.using("other").get(pk=instance.pk)
    assert stored.current_step.name == "Submitted"
    assert WorkflowHistory.objects.using("other").filter(instance=instance).count() == 1


def test_a_definition_edit_under_a_router_bumps_the_routed_workflow(routed):
    workflow = Workflow.objects.get(name="Claims")
    before = workflow.revision
    transition = WorkflowTransition.objects.filter(workflow=workflow).first()
    assert transition is not None
    transition.description = "edited"
    transition.save()
    assert Workflow.objects.using("other").get(pk=workflow.pk).revision != before


def same_workflow_on_both_databases() -> tuple[Workflow, Workflow]:
    """The claims workflow on both databases, loaded from one fixture (rows and keys)."""
    workflow = create_workflow(claims_definition())
    rows = [
        *Workflow.objects.filter(pk=workflow.pk),
        *WorkflowStep.objects.filter(workflow=workflow),
        *WorkflowStepStatus.objects.filter(step__workflow=workflow),
        *WorkflowTransition.objects.filter(workflow=workflow),
    ]
    fixture = serializers.serialize("json", rows)
    for alias in ("default", "other"):
        for loaded in serializers.deserialize("json", fixture, using=alias):
            loaded.save(using=alias)
    return (
        Workflow.objects.using("default").get(pk=workflow.pk),
        Workflow.objects.using("other").get(pk=workflow.pk),
    )


def test_two_databases_loaded_with_the_same_rows_keep_their_own_conditions():
    here, there = same_workflow_on_both_databases()
    assert (here.pk, here.version, here.created_at) == (there.pk, there.version, there.created_at)
    assert here.revision != there.revision  # a load writes a revision of its own
    # One edit on each, so both are at the same version: only "other" refuses payment.
    payment = {"workflow__pk": here.pk, "name": "Review -> Payment"}
    WorkflowTransition.objects.using("other").filter(**payment).update(condition="false")
    WorkflowTransition.objects.using("default").filter(**payment).update(description="ok")
    instances = {}
    for alias in ("default", "other"):
        claim = Claim.objects.using(alias).create(title=f"Hail on {alias}")
        instance = start_workflow_instance("Claims", claim)
        assert instance is not None
        assert instance._state.db == alias
        assert update_workflow_step_status(instance, "Accepted")  # unguarded: to Review
        instances[alias] = instance
    assert update_workflow_step_status(instances["default"], "Approved", LOW)
    assert not update_workflow_step_status(instances["other"], "Approved", LOW)
    assert instances["default"].current_step.name == "Payment"
    assert instances["other"].current_step.name == "Review"


def test_starting_for_an_object_of_another_database_without_a_router():
    _here, there = same_workflow_on_both_databases()
    claim = Claim.objects.using("other").create(title="Elsewhere")
    with transaction.atomic(using="other"):
        instance = engine.start_workflow_instance("Claims", claim)
    assert instance._state.db == "other"
    assert instance.workflow_id == there.pk
    assert WorkflowInstance.objects.using("default").count() == 0
