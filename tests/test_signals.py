"""Signals: sent once per event with one set of arguments, inside the change's transaction."""

from __future__ import annotations

import pytest

from django_steps import signals
from django_steps.models import (
    WorkflowInstance,
)
from django_steps.services import (
    cancel_workflow_instance,
    start_workflow_instance,
    update_workflow_step_status,
)
from tests.conftest import LOW
from tests.testapp.models import Claim

pytestmark = pytest.mark.django_db

ALL_SIGNALS = [
    signals.workflow_started,
    signals.workflow_status_changed,
    signals.workflow_step_changed,
    signals.workflow_held,
    signals.workflow_resumed,
    signals.workflow_cancelled,
    signals.workflow_completed,
]


@pytest.fixture
def received():
    calls = []

    def receiver(signal, sender, **kwargs):
        calls.append((signal, kwargs))

    for signal in ALL_SIGNALS:
        signal.connect(receiver, weak=False, dispatch_uid=f"test-{id(signal)}")
    yield calls
    for signal in ALL_SIGNALS:
        signal.disconnect(dispatch_uid=f"test-{id(signal)}")


@pytest.fixture
def claim(claims):
    """A claim, with the claims workflow stored."""
    return Claim.objects.create(title="c")


def test_signals_sent_with_one_fixed_set_of_arguments(claim, received):
    instance = start_workflow_instance("Claims", claim)
    update_workflow_step_status(instance, "Accepted", {"claim": {}}, note="ok")
    sent = [signal for signal, _ in received]
    assert sent == [
        signals.workflow_started,
        signals.workflow_status_changed,
        signals.workflow_step_changed,
    ]
    for _, kwargs in received:
        assert set(kwargs) == {
            "instance",
            "from_step",
            "from_status",
            "to_step",
            "to_status",
            "context_data",
            "actor",
            "note",
        }
    step_changed = received[-1][1]
    assert step_changed["instance"] == instance
    assert (step_changed["from_step"].name, step_changed["to_step"].name) == ("Submitted", "Review")
    assert step_changed["to_status"].name == "Pending"
    assert step_changed["context_data"] == {"claim": {}}
    assert step_changed["note"] == "ok"
    assert received[0][1]["from_step"] is None


def test_hold_resume_cancel_complete_signals(claim, received):
    from django_steps.services import resume_workflow_instance, set_workflow_on_hold

    instance = start_workflow_instance("Claims", claim)
    set_workflow_on_hold(instance)
    resume_workflow_instance(instance)
    cancel_workflow_instance(instance)
    assert [s for s, _ in received][1:] == [
        signals.workflow_held,
        signals.workflow_resumed,
        signals.workflow_cancelled,
    ]
    other = start_workflow_instance("Claims", Claim.objects.create(title="d"))
    update_workflow_step_status(other, "Accepted")
    update_workflow_step_status(other, "Approved", LOW)
    received.clear()
    update_workflow_step_status(other, "Paid")
    assert [s for s, _ in received][-1] is signals.workflow_completed


def test_receiver_that_raises_rolls_the_change_back(claim):
    instance = start_workflow_instance("Claims", claim)

    def boom(**kwargs):
        raise RuntimeError("receiver failed")

    signals.workflow_step_changed.connect(boom, dispatch_uid="boom")
    try:
        with pytest.raises(RuntimeError, match="receiver failed"):
            update_workflow_step_status(instance, "Accepted")
    finally:
        signals.workflow_step_changed.disconnect(dispatch_uid="boom")
    row = WorkflowInstance.objects.get(pk=instance.pk)
    assert (row.current_step.name, row.current_step_status.name) == ("Submitted", "New")
    assert list(row.history.values_list("event", flat=True)) == ["started"]
