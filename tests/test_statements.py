"""The write path's prepared statements: what they lock, read and write.

The engine runs SQL written once per connection (:mod:`django_steps._engine.statements`)
instead of building QuerySets on every change. These tests pin what that SQL does:
it locks the instance row only, reads the workflow's revision rather than its row,
writes exactly what ``save()`` and ``bulk_create()`` would, and hands every caller its
own workflow object.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from django_steps import engine
from django_steps.models import WorkflowHistory, WorkflowInstance
from django_steps.services import start_workflow_instance, update_workflow_step_status
from tests.conftest import LOW
from tests.testapp.models import Claim, Document

pytestmark = pytest.mark.django_db


@pytest.fixture
def instance(claims: Any) -> WorkflowInstance:
    instance = start_workflow_instance(claims.name, Claim.objects.create(title="Hail"))
    assert instance is not None
    assert update_workflow_step_status(instance, "Accepted")  # now at Review
    return instance


def lock_statement(captured: Any) -> str:
    (sql,) = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("SELECT")]
    return str(sql)


def test_the_lock_reads_the_workflow_revision_not_the_workflow_row(
    instance, django_assert_num_queries
):
    with django_assert_num_queries(5 if connection.vendor != "postgresql" else 4) as captured:
        assert update_workflow_step_status(instance, "In progress")
    sql = lock_statement(captured)
    assert '"django_steps_workflow"."revision"' in sql
    assert '"django_steps_workflow"."version"' not in sql
    assert '"django_steps_workflow"."name"' not in sql
    assert "ORDER BY" not in sql  # the model's ordering is no use for one row


@pytest.mark.postgres
def test_the_lock_is_taken_on_the_instance_row_only(instance, django_assert_num_queries):
    # Locking the joined workflow row too would serialise every change of a workflow.
    with django_assert_num_queries(4) as captured:
        assert update_workflow_step_status(instance, "In progress")
    assert lock_statement(captured).endswith('FOR UPDATE OF "django_steps_workflowinstance"')


def test_the_written_state_and_history_read_back_as_saved(instance):
    before = timezone.now()
    engine.update_workflow_step_status(instance, "Approved", LOW, note="fast path")
    stored = WorkflowInstance.objects.select_related(
        "current_step", "current_step_status", "workflow"
    ).get(pk=instance.pk)
    assert (stored.current_step.name, stored.current_step_status.name) == (
        instance.current_step.name,
        instance.current_step_status.name,
    )
    assert stored.updated_at == instance.updated_at
    assert stored.updated_at >= before
    assert stored.lifecycle == instance.lifecycle == "running"
    status_changed, step_changed = WorkflowHistory.objects.filter(
        instance=instance, note="fast path"
    ).order_by("id")
    assert (status_changed.event, step_changed.event) == ("status_changed", "step_changed")
    assert step_changed.context_data == LOW  # JSON stored as JSON, not as a string
    assert [c["result"] for c in step_changed.conditions] == [False, False, True]
    assert status_changed.conditions == []
    assert step_changed.timestamp == stored.updated_at
    assert step_changed.to_step_id == stored.current_step_id


def test_each_caller_gets_its_own_workflow_object(claims):
    first = start_workflow_instance(claims.name, Claim.objects.create(title="One"))
    second = start_workflow_instance(claims.name, Claim.objects.create(title="Two"))
    assert update_workflow_step_status(first, "Accepted")
    assert update_workflow_step_status(second, "Accepted")
    assert first.workflow == second.workflow == claims
    assert first.workflow is not second.workflow
    first.workflow.context_variables["claim"] = "changed in memory"
    first.workflow.description = "changed in memory"
    assert update_workflow_step_status(second, "Approved", LOW)
    assert second.workflow.description == claims.description
    assert second.workflow.context_variables == claims.context_variables


def test_instances_with_uuid_objects_and_a_missing_row(claims):
    document = Document.objects.create(title="Policy")
    instance = start_workflow_instance(claims.name, document)
    assert update_workflow_step_status(instance, "Accepted")
    assert instance.content_object == document
    WorkflowInstance.objects.filter(pk=instance.pk).delete()
    assert not update_workflow_step_status(instance, "Approved", LOW)
