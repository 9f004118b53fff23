"""The models: definition versions and cache invalidation, natural keys, history rows."""

from __future__ import annotations

import pytest
from django.core import serializers
from django.core.management import call_command

from django_steps._engine.cache import workflow_cache
from django_steps.models import (
    Workflow,
    WorkflowHistory,
    WorkflowInstance,
    WorkflowStep,
    WorkflowStepStatus,
    WorkflowTransition,
)
from django_steps.services import (
    start_workflow_instance,
    update_workflow_step_status,
)
from tests.conftest import LOW
from tests.testapp.models import Claim

pytestmark = pytest.mark.django_db


@pytest.fixture
def claim(claims):
    """A claim, with the claims workflow stored."""
    return Claim.objects.create(title="c")


def test_every_definition_change_bumps_the_version(claim):
    workflow = Workflow.objects.get(name="Claims")
    versions = [workflow.version]

    def bumped():
        workflow.refresh_from_db()
        versions.append(workflow.version)
        return versions[-1] > versions[-2]

    step = WorkflowStep.objects.get(workflow=workflow, name="Review")
    step.description = "x"
    step.save()
    assert bumped()
    status = WorkflowStepStatus.objects.create(step=step, name="Escalated")
    assert bumped()
    status.delete()
    assert bumped()
    transition = WorkflowTransition.objects.filter(workflow=workflow).first()
    transition.priority = 99
    transition.save()
    assert bumped()
    stale = Workflow.objects.get(pk=workflow.pk)
    workflow.description = "changed"
    workflow.save()
    assert bumped()
    stale.save()  # a stale object never writes its old version back
    assert bumped()


def test_definition_change_is_seen_without_restart(claim):
    instance = start_workflow_instance("Claims", claim)
    update_workflow_step_status(instance, "Accepted")
    review = WorkflowStep.objects.get(name="Review")
    WorkflowTransition.objects.filter(from_step=review, condition="").update(
        condition="claim.fast == true"
    )
    # .update() sends no signal: bump as an admin save would.
    Workflow.objects.get(name="Claims").save()
    misses = workflow_cache.misses
    assert update_workflow_step_status(instance, "Approved", LOW) is False  # 'fast' missing
    assert workflow_cache.misses == misses + 1
    ok = {"claim": {**LOW["claim"], "fast": True}}
    assert update_workflow_step_status(instance, "Approved", ok)
    assert workflow_cache.misses == misses + 1  # compiled once for the new version


def test_natural_keys_move_definitions_between_databases(claim):
    workflow = Workflow.objects.get(name="Claims")
    objects = [
        workflow,
        *workflow.steps.all(),
        *WorkflowStepStatus.objects.filter(step__workflow=workflow),
        *workflow.transitions.all(),
    ]
    data = serializers.serialize(
        "json", objects, use_natural_foreign_keys=True, use_natural_primary_keys=True
    )
    assert '"pk"' not in data
    WorkflowHistory.objects.all().delete()
    WorkflowInstance.objects.all().delete()
    Workflow.objects.all().delete()
    for obj in serializers.deserialize("json", data):
        obj.save()
    restored = Workflow.objects.get(name="Claims")
    assert restored.steps.count() == 6
    assert WorkflowStepStatus.objects.get_by_natural_key("Approved", "Review", "Claims")
    assert restored.transitions.count() == 7
    assert start_workflow_instance("Claims", Claim.objects.create(title="n")) is not None


def test_dumpdata_with_natural_keys(claim, tmp_path):
    out = tmp_path / "claims.json"
    call_command(
        "dumpdata",
        "django_steps.workflow",
        "django_steps.workflowstep",
        "django_steps.workflowstepstatus",
        "django_steps.workflowtransition",
        natural_foreign=True,
        natural_primary=True,
        output=str(out),
    )
    assert "Senior Review" in out.read_text()


def test_history_rows_are_append_only(claim):
    instance = start_workflow_instance("Claims", claim)
    entry = instance.history.get()
    entry.note = "tampered"
    with pytest.raises(ValueError, match="append-only"):
        entry.save()


def test_history_keeps_names_after_renames(claim):
    instance = start_workflow_instance("Claims", claim)
    update_workflow_step_status(instance, "Accepted")
    WorkflowStep.objects.filter(name="Submitted").update(name="Received")
    names = list(instance.history.values_list("from_step_name", "to_step_name"))
    assert names[-1] == ("Submitted", "Review")


def test_blank_transition_names_are_filled_and_kept_unique(claim):
    workflow = Workflow.objects.get(name="Claims")
    review = workflow.steps.get(name="Review")
    payment = workflow.steps.get(name="Payment")
    second = WorkflowTransition.objects.create(
        workflow=workflow, from_step=review, to_step=payment, condition="claim.vip == true"
    )
    assert second.name == "Review -> Payment (2)"
    assert str(second) == "Review -> Payment (2)"
