"""The compiled-workflow cache serves the committed definition of the database asked.

Compiled workflows are cached by database, workflow and ``revision``, a random value
written with each committed edit: a rolled-back edit, a ``loaddata`` and a
``QuerySet.update()`` of definition rows all leave the cache unable to serve
conditions the database no longer holds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core import serializers
from django.core.management import call_command
from django.db import transaction

from django_steps import engine
from django_steps.exceptions import NoTransitionAvailable
from django_steps.models import Workflow, WorkflowStep, WorkflowStepStatus, WorkflowTransition
from django_steps.services import start_workflow_instance, update_workflow_step_status
from tests.factories import claims_definition, create_workflow
from tests.testapp.models import Claim

pytestmark = pytest.mark.django_db

LOW = {"claim": {"amount": 500.0, "is_high_risk": False}}
PAYMENT = "Review -> Payment"


class RolledBack(Exception):
    pass


@pytest.fixture
def workflow() -> Workflow:
    return create_workflow(claims_definition())


@pytest.fixture
def at_review(workflow: Workflow) -> Any:
    instance = start_workflow_instance(workflow.name, Claim.objects.create(title="Hail"))
    assert instance is not None
    assert update_workflow_step_status(instance, "Accepted")
    return instance


def set_condition(workflow: Workflow, name: str, condition: str) -> None:
    transition = WorkflowTransition.objects.get(workflow=workflow, name=name)
    transition.condition = condition
    transition.save()


def test_a_rolled_back_edit_is_never_served(workflow, at_review):
    # An edit compiled inside its transaction, then rolled back; the next committed
    # edit reaches the same version number. The rolled-back guard must not be used.
    set_condition(workflow, PAYMENT, "claim.amount < 1000.0")
    middling = {"claim": {"amount": 5000.0, "is_high_risk": False}}  # no transition passes
    other = Claim.objects.create(title="Inside the edit")

    def edit_use_and_roll_back() -> None:
        with transaction.atomic():
            set_condition(workflow, PAYMENT, "true")
            inside = start_workflow_instance(workflow.name, other)
            assert inside is not None
            assert update_workflow_step_status(inside, "Accepted")
            assert update_workflow_step_status(inside, "Approved", middling)
            raise RolledBack

    with pytest.raises(RolledBack):
        edit_use_and_roll_back()
    step = WorkflowStep.objects.get(workflow=workflow, name="Payment")
    step.description = "A committed edit"
    step.save()
    with pytest.raises(NoTransitionAvailable):
        engine.update_workflow_step_status(at_review, "Approved", middling)
    assert at_review.current_step.name == "Review"


def test_every_committed_edit_writes_a_new_revision(workflow):
    seen = {workflow.revision}
    set_condition(workflow, PAYMENT, "claim.amount < 100")
    seen.add(Workflow.objects.get(pk=workflow.pk).revision)
    WorkflowStepStatus.objects.filter(step__workflow=workflow, name="Paid").update(description="x")
    seen.add(Workflow.objects.get(pk=workflow.pk).revision)
    workflow.refresh_from_db()
    workflow.description = "edited"
    workflow.save()
    seen.add(workflow.revision)
    Workflow.objects.filter(pk=workflow.pk).update(context_variables={})
    seen.add(Workflow.objects.get(pk=workflow.pk).revision)
    assert len(seen) == 5


def test_queryset_update_of_a_condition_is_seen_at_once(workflow, at_review):
    WorkflowTransition.objects.filter(workflow=workflow, name=PAYMENT).update(condition="false")
    assert not update_workflow_step_status(at_review, "Approved", LOW)
    assert at_review.current_step.name == "Review"


def test_bulk_created_transitions_are_seen_at_once(workflow, at_review):
    review = WorkflowStep.objects.get(workflow=workflow, name="Review")
    set_condition(workflow, PAYMENT, "false")
    assert not update_workflow_step_status(at_review, "Approved", LOW)  # none passes
    payment = WorkflowStep.objects.get(workflow=workflow, name="Payment")
    WorkflowTransition.objects.bulk_create(
        [WorkflowTransition(workflow=workflow, name="Pay", from_step=review, to_step=payment)]
    )
    engine.update_workflow_step_status(at_review, "Approved", LOW)
    assert at_review.current_step.name == "Payment"


def test_loaddata_of_definition_rows_is_seen_at_once(workflow, at_review, tmp_path: Path):
    # A fixture carrying only the changed transition (a raw save of it).
    transition = WorkflowTransition.objects.get(workflow=workflow, name=PAYMENT)
    data = json.loads(serializers.serialize("json", [transition]))
    data[0]["fields"]["condition"] = "false"
    fixture = tmp_path / "transition.json"
    fixture.write_text(json.dumps(data))
    call_command("loaddata", str(fixture), verbosity=0)
    assert not update_workflow_step_status(at_review, "Approved", LOW)
    assert at_review.current_step.name == "Review"


def test_loaddata_of_a_workflow_row_gives_it_a_revision_of_its_own(workflow, tmp_path: Path):
    fixture = tmp_path / "workflow.json"
    fixture.write_text(serializers.serialize("json", [workflow]))
    call_command("loaddata", str(fixture), verbosity=0)
    assert Workflow.objects.get(pk=workflow.pk).revision != workflow.revision
