"""The documented services on the database: every rule, refusals write nothing."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError

from django_steps import engine
from django_steps.exceptions import (
    InstanceFinished,
    InstanceNotFound,
    InvalidStatus,
    NoTransitionAvailable,
    OperationNotAllowed,
    TransitionConditionError,
    WorkflowNotFound,
)
from django_steps.models import WorkflowHistory, WorkflowInstance
from django_steps.services import (
    cancel_workflow_instance,
    get_workflow_instance_for_object,
    resume_workflow_instance,
    set_workflow_on_hold,
    start_workflow_instance,
    update_workflow_step_status,
)
from tests.conftest import HIGH, LOW, RISKY
from tests.factories import claims_definition, create_workflow
from tests.testapp.models import Claim, Document

pytestmark = pytest.mark.django_db


@pytest.fixture
def claim():
    return Claim.objects.create(title="Broken window", amount=500)


@pytest.fixture
def instance(claims, claim):
    return start_workflow_instance("Claims", claim)


def at_review(instance):
    assert update_workflow_step_status(instance, "Accepted")
    assert instance.current_step.name == "Review"
    return instance


def snapshot(instance):
    """Everything a refused change must leave untouched."""
    row = WorkflowInstance.objects.get(pk=instance.pk)
    return (
        row.current_step_id,
        row.current_step_status_id,
        row.lifecycle,
        row.status_before_hold_id,
        row.completed_at,
        row.cancelled_at,
        WorkflowHistory.objects.filter(instance=instance).count(),
    )


def test_the_documented_usage_example(claims, claim):
    from django_steps.services import (
        cancel_workflow_instance,
        resume_workflow_instance,
        set_workflow_on_hold,
        start_workflow_instance,
        update_workflow_step_status,
    )

    instance = start_workflow_instance("Claims", claim)
    update_workflow_step_status(instance, "Accepted")
    update_workflow_step_status(
        instance, "Approved", context_data={"claim": {"amount": 5000, "is_high_risk": False}}
    )
    # An int amount compares with the condition's 10000.0 as the CEL spec says.
    assert instance.current_step.name == "Payment"
    other = start_workflow_instance("Claims", Claim.objects.create(title="b"))
    assert set_workflow_on_hold(other)
    assert resume_workflow_instance(other)
    assert cancel_workflow_instance(other)


def test_start_creates_instance_at_initial_step(claims, claim):
    instance = start_workflow_instance("Claims", claim)
    assert isinstance(instance, WorkflowInstance)
    assert instance.workflow == claims
    assert instance.current_step.name == "Submitted"
    assert instance.current_step_status.name == "New"
    assert instance.lifecycle == "running"
    assert instance.started_at is not None
    assert instance.content_object == claim
    assert instance.object_id == str(claim.pk)
    history = list(instance.history.all())
    assert [h.event for h in history] == ["started"]
    assert (history[0].to_step_name, history[0].to_status_name) == ("Submitted", "New")


def test_start_returns_the_unfinished_instance(instance, claim):
    assert start_workflow_instance("Claims", claim).pk == instance.pk
    assert WorkflowInstance.objects.count() == 1


def test_start_again_after_finishing_creates_a_new_instance(instance, claim):
    assert cancel_workflow_instance(instance)
    again = start_workflow_instance("Claims", claim)
    assert again.pk != instance.pk
    assert WorkflowInstance.objects.for_object(claim).count() == 2


def conflicting_saves(failures: int) -> Any:
    """``WorkflowInstance.save`` failing ``failures`` times as a concurrent start would."""
    real_save = WorkflowInstance.save
    calls = []

    def save(self: WorkflowInstance, *args: Any, **kwargs: Any) -> None:
        calls.append(self.pk)
        if len(calls) <= failures:
            raise IntegrityError('duplicate key value violates "django_steps_one_unfinished"')
        real_save(self, *args, **kwargs)

    return mock.patch.object(WorkflowInstance, "save", save), calls


def test_start_tries_again_when_the_conflicting_instance_finished_meanwhile(claims, claim):
    # Another process's start won the insert, then its instance finished before this
    # call could look it up: there is nothing to return, so this call starts one.
    patch, calls = conflicting_saves(failures=1)
    with patch:
        instance = engine.start_workflow_instance("Claims", claim)
    assert len(calls) == 2
    assert WorkflowInstance.objects.get() == instance
    assert list(instance.history.values_list("event", flat=True)) == ["started"]


def test_start_gives_up_after_repeated_conflicts(claims, claim):
    patch, calls = conflicting_saves(failures=engine.START_ATTEMPTS)
    with patch, pytest.raises(IntegrityError, match="django_steps_one_unfinished"):
        engine.start_workflow_instance("Claims", claim)
    assert len(calls) == engine.START_ATTEMPTS
    assert not WorkflowInstance.objects.exists()
    assert not WorkflowHistory.objects.exists()


def test_start_works_with_uuid_primary_keys(claims):
    document = Document.objects.create(title="Policy")
    instance = start_workflow_instance("Claims", document)
    assert instance.object_id == str(document.pk)
    assert get_workflow_instance_for_object(document) == instance


def test_start_unknown_workflow_returns_none_and_strict_raises(claim, caplog):
    assert start_workflow_instance("Nope", claim) is None
    assert "Nope" in caplog.text
    with pytest.raises(WorkflowNotFound, match="'Nope'"):
        engine.start_workflow_instance("Nope", claim)
    assert WorkflowInstance.objects.count() == 0


def test_start_unusable_workflow_returns_none(claim):
    data = claims_definition()
    data["name"] = "Broken"
    data["transitions"][1]["condition"] = "claim.is_high_risk =="
    create_workflow(data)
    assert start_workflow_instance("Broken", claim) is None
    assert WorkflowInstance.objects.count() == 0


def test_plain_status_update(instance):
    at_review(instance)
    assert update_workflow_step_status(instance, "In progress")
    instance.refresh_from_db()
    assert instance.current_step_status.name == "In progress"
    assert instance.history.last().event == "status_changed"


def test_same_status_changes_nothing_and_returns_true(instance):
    at_review(instance)
    before = snapshot(instance)
    assert update_workflow_step_status(instance, "Pending")
    assert snapshot(instance) == before


@pytest.mark.parametrize(
    ("context", "target", "status"),
    [
        (LOW, "Payment", "Scheduled"),
        (HIGH, "Senior Review", "Pending"),
        (RISKY, "Investigation", "Open"),
    ],
)
def test_completion_takes_the_transition(instance, context, target, status):
    at_review(instance)
    assert update_workflow_step_status(instance, "Approved", context_data=context)
    assert (instance.current_step.name, instance.current_step_status.name) == (target, status)
    instance.refresh_from_db()
    assert (instance.current_step.name, instance.current_step_status.name) == (target, status)
    last = list(instance.history.order_by("-id")[:2])[::-1]
    assert [h.event for h in last] == ["status_changed", "step_changed"]
    assert last[1].context_data == context
    assert last[1].conditions[-1]["to_step"] == target
    assert last[1].conditions[-1]["result"] is True


def test_refused_transition_writes_nothing(instance):
    at_review(instance)
    before = snapshot(instance)
    bad = {"claim": {"amount": 5.0}}  # is_high_risk missing: fail closed
    assert update_workflow_step_status(instance, "Approved", context_data=bad) is False
    assert snapshot(instance) == before
    assert instance.current_step.name == "Review"
    with pytest.raises(TransitionConditionError, match="is_high_risk") as excinfo:
        engine.update_workflow_step_status(instance, "Approved", bad)
    assert excinfo.value.instance is instance
    assert snapshot(instance) == before


def test_no_passing_transition_is_refused_with_each_condition(claims, instance):
    claims.transitions.filter(condition="").filter(from_step__name="Review").delete()
    at_review(instance)
    before = snapshot(instance)
    assert update_workflow_step_status(instance, "Approved", LOW) is False
    with pytest.raises(NoTransitionAvailable) as excinfo:
        engine.update_workflow_step_status(instance, "Approved", LOW)
    assert [e.result for e in excinfo.value.evaluations] == [False, False]
    assert snapshot(instance) == before


def test_unknown_status_and_status_of_another_step(instance):
    at_review(instance)
    before = snapshot(instance)
    assert update_workflow_step_status(instance, "Nope") is False
    assert update_workflow_step_status(instance, "Paid") is False  # a Payment status
    with pytest.raises(InvalidStatus, match="'Review' has no status 'Paid'"):
        engine.update_workflow_step_status(instance, "Paid")
    assert snapshot(instance) == before


def test_completing_the_workflow(instance):
    at_review(instance)
    update_workflow_step_status(instance, "Approved", LOW)
    assert update_workflow_step_status(instance, "Paid")
    assert instance.lifecycle == "completed"
    assert instance.completed_at is not None
    assert instance.current_step.name == "Closed"
    assert instance.history.last().event == "completed"
    assert WorkflowInstance.objects.completed().get() == instance
    before = snapshot(instance)
    for call in (
        lambda: update_workflow_step_status(instance, "Closed"),
        lambda: set_workflow_on_hold(instance),
        lambda: resume_workflow_instance(instance),
        lambda: cancel_workflow_instance(instance),
    ):
        assert call() in (False, True)
    assert update_workflow_step_status(instance, "Paid") is False
    assert cancel_workflow_instance(instance) is False
    with pytest.raises(InstanceFinished):
        engine.cancel_workflow_instance(instance)
    assert snapshot(instance) == before


def test_hold_and_resume(instance):
    at_review(instance)
    update_workflow_step_status(instance, "In progress")
    assert set_workflow_on_hold(instance)
    assert instance.lifecycle == "on_hold"
    assert instance.current_step_status.name == "On hold"
    assert instance.status_before_hold.name == "In progress"
    assert WorkflowInstance.objects.on_hold().get() == instance
    assert set_workflow_on_hold(instance) is False
    assert update_workflow_step_status(instance, "Approved", LOW) is False
    with pytest.raises(OperationNotAllowed, match="on hold"):
        engine.update_workflow_step_status(instance, "Approved", LOW)
    assert resume_workflow_instance(instance)
    assert instance.lifecycle == "running"
    assert instance.current_step_status.name == "In progress"
    assert instance.status_before_hold is None
    assert resume_workflow_instance(instance) is False
    assert [h.event for h in instance.history.all()][-2:] == ["held", "resumed"]


def test_resume_falls_back_to_default_when_previous_status_was_deleted(claims, instance):
    at_review(instance)
    update_workflow_step_status(instance, "In progress")
    set_workflow_on_hold(instance)
    claims.steps.get(name="Review").possible_statuses.get(name="In progress").delete()
    assert resume_workflow_instance(instance)
    assert instance.current_step_status.name == "Pending"


def test_on_hold_status_through_update_is_hold(instance):
    at_review(instance)
    assert update_workflow_step_status(instance, "On hold")
    assert instance.lifecycle == "on_hold"
    assert instance.status_before_hold.name == "Pending"


def test_cancel_while_on_hold_through_cancellation_status(instance):
    at_review(instance)
    set_workflow_on_hold(instance)
    assert update_workflow_step_status(instance, "Rejected")
    assert instance.lifecycle == "cancelled"
    assert instance.cancelled_at is not None
    assert WorkflowInstance.objects.cancelled().get() == instance


def test_hold_and_cancel_refused_where_the_step_has_no_such_status(instance):
    at_review(instance)
    update_workflow_step_status(instance, "Approved", LOW)  # Payment has neither
    before = snapshot(instance)
    assert set_workflow_on_hold(instance) is False
    assert cancel_workflow_instance(instance) is False
    with pytest.raises(OperationNotAllowed, match="'Payment' has no cancellation status"):
        engine.cancel_workflow_instance(instance)
    assert snapshot(instance) == before


def test_actor_and_note_are_recorded(instance):
    user = get_user_model().objects.create_user("ops")
    assert set_workflow_on_hold(instance, actor=user, note="Waiting for the police report")
    entry = instance.history.last()
    assert entry.actor == user
    assert entry.note == "Waiting for the police report"


def test_stale_python_object_is_updated_from_the_locked_row(instance):
    stale = WorkflowInstance.objects.get(pk=instance.pk)
    at_review(instance)
    assert update_workflow_step_status(stale, "In progress")
    assert stale.current_step.name == "Review"
    assert stale.current_step_status.name == "In progress"


def test_deleted_instance_is_refused(instance):
    WorkflowInstance.objects.filter(pk=instance.pk).delete()
    assert update_workflow_step_status(instance, "Accepted") is False
    with pytest.raises(InstanceNotFound):
        engine.set_workflow_on_hold(instance)


def test_lookup_prefers_unfinished_then_most_recent(claims, claim):
    assert get_workflow_instance_for_object(claim) is None
    first = start_workflow_instance("Claims", claim)
    cancel_workflow_instance(first)
    assert get_workflow_instance_for_object(claim) == first
    second = start_workflow_instance("Claims", claim)
    assert get_workflow_instance_for_object(claim) == second
    cancel_workflow_instance(second)
    assert get_workflow_instance_for_object(claim) == second
    assert get_workflow_instance_for_object(claim, "Claims") == second
    assert get_workflow_instance_for_object(claim, "Other") is None


def test_lookup_is_one_query(instance, claim, django_assert_num_queries):
    from django.contrib.contenttypes.models import ContentType

    ContentType.objects.get_for_model(claim)  # the content type cache is warm in real apps
    with django_assert_num_queries(1):
        assert get_workflow_instance_for_object(claim) == instance


def test_unusable_context_raises_type_error_and_writes_nothing(instance):
    at_review(instance)
    before = snapshot(instance)
    with pytest.raises(TypeError, match=r"context_data at 'claim\.when'"):
        update_workflow_step_status(instance, "Approved", {"claim": {"when": object()}})
    assert snapshot(instance) == before


def test_queryset_methods(claims, claim):
    running = start_workflow_instance("Claims", claim)
    held = start_workflow_instance("Claims", Claim.objects.create(title="h"))
    set_workflow_on_hold(held)
    assert list(WorkflowInstance.objects.active()) == [running]
    assert list(WorkflowInstance.objects.on_hold()) == [held]
    assert set(WorkflowInstance.objects.unfinished()) == {running, held}
    assert list(WorkflowInstance.objects.active().for_object(claim)) == [running]
    assert WorkflowInstance.objects.for_workflow("Claims").count() == 2


def test_async_counterparts(claims, claim):
    from asgiref.sync import async_to_sync

    from django_steps.services import (
        aget_workflow_instance_for_object,
        aset_workflow_on_hold,
        astart_workflow_instance,
        aupdate_workflow_step_status,
    )

    async def scenario():
        instance = await astart_workflow_instance("Claims", claim)
        assert await aupdate_workflow_step_status(instance, "Accepted")
        assert await aset_workflow_on_hold(instance)
        return instance, await aget_workflow_instance_for_object(claim)

    instance, found = async_to_sync(scenario)()
    assert found.pk == instance.pk
    assert found.lifecycle == "on_hold"
