"""Faults in the middle of a change leave the instance exactly as it was, with no history.

A signal receiver that raises, a database error on the history insert (patched, and
on PostgreSQL a real trigger), and a process killed inside the change's transaction
each roll the whole change back. These tests run with committed transactions, so
what they check is what other connections see. Definition edits while instances
run: deleting a step or status in use is refused with a message that names it;
renaming one breaks no instance and no history.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.db import DatabaseError, OperationalError, connection, transaction
from django.db.models import ProtectedError

from django_steps import engine, services, signals
from django_steps._engine.statements import Statements
from django_steps.models import (
    Workflow,
    WorkflowHistory,
    WorkflowInstance,
    WorkflowStep,
    WorkflowStepStatus,
)
from tests.conftest import LOW
from tests.reliability.harness import start_workers
from tests.testapp.models import Claim

pytestmark = pytest.mark.django_db(transaction=True)

STATE_FIELDS = (
    "current_step_id",
    "current_step_status_id",
    "lifecycle",
    "status_before_hold_id",
    "completed_at",
    "cancelled_at",
    "updated_at",
)


@pytest.fixture
def instance(claims: Workflow) -> WorkflowInstance:
    return engine.start_workflow_instance("Claims", Claim.objects.create(title="Broken window"))


def at_review(instance: WorkflowInstance) -> WorkflowInstance:
    engine.update_workflow_step_status(instance, "Accepted")
    return instance


def snapshot(instance: WorkflowInstance) -> dict[str, Any]:
    """The stored state and history of an instance, read fresh from the database."""
    state = WorkflowInstance.objects.filter(pk=instance.pk).values(*STATE_FIELDS).get()
    history = list(
        WorkflowHistory.objects.filter(instance_id=instance.pk)
        .order_by("id")
        .values_list("id", "event", "to_step_name", "to_status_name")
    )
    return {"state": state, "history": history}


def in_memory(instance: WorkflowInstance) -> tuple[Any, ...]:
    return tuple(getattr(instance, name) for name in STATE_FIELDS)


@pytest.fixture
def connected() -> Iterator[Callable[[Any, Callable[..., None]], str]]:
    """Connect receivers for one test (returns the dispatch uid); disconnected at the end."""
    connections: list[tuple[Any, str]] = []

    def connect(django_signal: Any, receiver: Callable[..., None]) -> str:
        uid = f"tests.test_faults.{len(connections)}"
        django_signal.connect(receiver, dispatch_uid=uid, weak=False)
        connections.append((django_signal, uid))
        return uid

    yield connect
    for django_signal, uid in connections:
        django_signal.disconnect(dispatch_uid=uid)


class ReceiverFailed(Exception):
    pass


def fail(**kwargs: Any) -> None:
    raise ReceiverFailed("the receiver failed")


def on_hold(instance: WorkflowInstance) -> WorkflowInstance:
    engine.set_workflow_on_hold(at_review(instance))
    return instance


def at_payment(instance: WorkflowInstance) -> WorkflowInstance:
    engine.update_workflow_step_status(at_review(instance), "Approved", LOW)
    return instance


# Each case: how to reach the state the change starts from, the change (given the
# engine or the services module), and the signal its last event sends, so everything
# else of the change is already written when the receiver fails.
CHANGES: dict[str, tuple[Callable[..., Any], Callable[..., Any], Any]] = {
    "step completion": (
        at_review,
        lambda api, i: api.update_workflow_step_status(i, "Approved", LOW),
        signals.workflow_step_changed,
    ),
    "status update": (
        at_review,
        lambda api, i: api.update_workflow_step_status(i, "In progress"),
        signals.workflow_status_changed,
    ),
    "hold": (at_review, lambda api, i: api.set_workflow_on_hold(i), signals.workflow_held),
    "resume": (on_hold, lambda api, i: api.resume_workflow_instance(i), signals.workflow_resumed),
    "cancel": (
        at_review,
        lambda api, i: api.cancel_workflow_instance(i),
        signals.workflow_cancelled,
    ),
    "workflow completion": (
        at_payment,
        lambda api, i: api.update_workflow_step_status(i, "Paid"),
        signals.workflow_completed,
    ),
}


@pytest.mark.parametrize("api", [engine, services], ids=["engine", "services"])
@pytest.mark.parametrize("case", list(CHANGES))
def test_receiver_that_raises_leaves_the_instance_as_before(instance, connected, case, api):
    prepare, change, last_signal = CHANGES[case]
    prepare(instance)
    before, before_in_memory = snapshot(instance), in_memory(instance)
    receiver = connected(last_signal, fail)

    with pytest.raises(ReceiverFailed):
        change(api, instance)

    assert snapshot(instance) == before
    assert in_memory(instance) == before_in_memory, "the caller's object must not change"
    last_signal.disconnect(dispatch_uid=receiver)
    change(api, instance)  # with the receiver gone, the same change goes through
    assert snapshot(instance) != before


def test_receiver_that_raises_on_start_creates_no_instance(claims, connected):
    claim = Claim.objects.create(title="Flooded basement")
    connected(signals.workflow_started, fail)

    with pytest.raises(ReceiverFailed):
        engine.start_workflow_instance("Claims", claim)
    with pytest.raises(ReceiverFailed):
        services.start_workflow_instance("Claims", claim)

    assert not WorkflowInstance.objects.exists()
    assert not WorkflowHistory.objects.exists()


@pytest.mark.parametrize("api", [engine, services], ids=["engine", "services"])
def test_database_error_on_the_history_insert_leaves_the_instance_as_before(instance, api):
    at_review(instance)
    before, before_in_memory = snapshot(instance), in_memory(instance)
    injected = DatabaseError("injected: history insert failed")

    with (
        mock.patch.object(Statements, "write", side_effect=injected) as insert,
        pytest.raises(DatabaseError, match="injected"),
    ):
        api.update_workflow_step_status(instance, "Approved", LOW)

    assert insert.call_count == 1, "the error must come from inside the change"
    assert snapshot(instance) == before
    assert in_memory(instance) == before_in_memory


REFUSE_STEP_CHANGES = """
CREATE FUNCTION tests_refuse_step_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'tests: step_changed history rows are refused';
END $$;
CREATE TRIGGER tests_refuse_step_changes BEFORE INSERT ON django_steps_workflowhistory
    FOR EACH ROW WHEN (NEW.event = 'step_changed') EXECUTE FUNCTION tests_refuse_step_changes();
"""
DROP_TRIGGER = """
DROP TRIGGER IF EXISTS tests_refuse_step_changes ON django_steps_workflowhistory;
DROP FUNCTION IF EXISTS tests_refuse_step_changes();
"""


@pytest.mark.postgres
def test_trigger_refusing_the_history_insert_leaves_the_instance_as_before(instance):
    at_review(instance)
    before = snapshot(instance)
    with connection.cursor() as cursor:
        cursor.execute(REFUSE_STEP_CHANGES)
    try:
        # The insert carries a status_changed row and the refused step_changed row.
        with pytest.raises(DatabaseError, match="step_changed history rows are refused"):
            engine.update_workflow_step_status(instance, "Approved", LOW)
        assert snapshot(instance) == before
        assert not services.update_workflow_step_status(instance, "No such status")
    finally:
        with connection.cursor() as cursor:
            cursor.execute(DROP_TRIGGER)
    # The connection is usable and the same change now goes through.
    engine.update_workflow_step_status(instance, "Approved", LOW)
    assert instance.current_step.name == "Payment"


@pytest.mark.postgres
def test_process_killed_inside_the_transaction_leaves_the_instance_as_before(
    instance, tmp_path: Path
):
    at_review(instance)
    before = snapshot(instance)
    spec = {
        "mode": "hang",
        "worker": 0,
        "instance": str(instance.pk),
        "status": "Approved",
        "context": LOW,
    }
    (worker,) = start_workers([spec], tmp_path)
    try:
        wait_until_ready_to_hang(worker, tmp_path)
        # The worker is inside its change: it holds the instance's row lock.
        with transaction.atomic(), pytest.raises(OperationalError):
            WorkflowInstance.objects.select_for_update(nowait=True).get(pk=instance.pk)
        os.kill(worker.process.pid, signal.SIGKILL)
        worker.process.wait(timeout=30)
    finally:
        worker.stop()
    assert worker.process.returncode == -signal.SIGKILL

    with transaction.atomic():
        with connection.cursor() as cursor:  # fail fast if the dead process kept its lock
            cursor.execute("SET LOCAL lock_timeout = '20s'")
        assert snapshot(instance) == before
        assert not WorkflowHistory.objects.filter(note="w0#0").exists()
        engine.update_workflow_step_status(instance, "Approved", LOW)
    assert instance.current_step.name == "Payment"


def wait_until_ready_to_hang(worker: Any, directory: Path) -> None:
    """Release the worker and wait (bounded) until its receiver runs in the transaction."""
    marker = directory / "barrier" / "inside-transaction"
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert worker.process.poll() is None, f"worker ended early:\n{worker.output()}"
        assert time.monotonic() < deadline, f"worker never got inside:\n{worker.output()}"
        time.sleep(0.02)


# --- definition edits while instances run -------------------------------------------


def test_deleting_the_current_step_is_refused_with_a_clear_message(instance):
    step = WorkflowStep.objects.get(workflow__name="Claims", name="Submitted")
    before = snapshot(instance)

    with pytest.raises(ProtectedError) as refused:
        step.delete()

    message = str(refused.value.args[0])
    assert message.startswith("Cannot delete step 'Submitted' of workflow 'Claims': "), message
    assert "1 workflow instance is at it" in message, message
    assert instance in refused.value.protected_objects
    assert snapshot(instance) == before
    assert WorkflowStep.objects.filter(pk=step.pk).exists()


def test_deleting_the_current_status_is_refused_with_a_clear_message(instance):
    status = instance.current_step_status
    before = snapshot(instance)

    with pytest.raises(ProtectedError) as refused:
        status.delete()

    message = str(refused.value.args[0])
    expected = "Cannot delete status 'New' of step 'Submitted' (workflow 'Claims'): "
    assert message.startswith(expected), message
    assert snapshot(instance) == before
    assert WorkflowStepStatus.objects.filter(pk=status.pk).exists()


def test_deleting_a_workflow_with_instances_is_refused(instance):
    engine.start_workflow_instance("Claims", Claim.objects.create(title="Second"))
    with pytest.raises(ProtectedError) as refused:
        Workflow.objects.get(name="Claims").delete()
    message = str(refused.value.args[0])
    assert message.startswith("Cannot delete workflow 'Claims': 2 workflow instances are"), message
    assert WorkflowInstance.objects.filter(pk=instance.pk).exists()


def test_deleting_a_step_no_instance_uses_is_allowed(instance):
    WorkflowStep.objects.get(workflow__name="Claims", name="Investigation").delete()
    engine.update_workflow_step_status(at_review(instance), "Approved", LOW)
    assert instance.current_step.name == "Payment"


def test_deleting_the_status_an_on_hold_instance_returns_to(instance):
    at_review(instance)
    engine.update_workflow_step_status(instance, "In progress")
    engine.set_workflow_on_hold(instance)
    WorkflowStepStatus.objects.get(step__name="Review", name="In progress").delete()

    engine.resume_workflow_instance(instance)  # falls back to the step's default status
    assert instance.current_step_status.name == "Pending"
    assert instance.lifecycle == "running"


def test_deleting_a_status_clears_its_history_links_and_keeps_the_names(instance):
    # History links to steps and statuses have no database constraint; Django's
    # deletion still sets them to NULL, and the name snapshots remain the record.
    at_review(instance)
    engine.update_workflow_step_status(instance, "In progress")
    engine.update_workflow_step_status(instance, "Pending")
    in_progress = WorkflowStepStatus.objects.get(step__name="Review", name="In progress")
    linked = WorkflowHistory.objects.filter(instance=instance, to_status=in_progress)
    left = WorkflowHistory.objects.filter(instance=instance, from_status=in_progress)
    ids = [linked.get().pk, left.get().pk]
    in_progress.delete()

    rows = WorkflowHistory.objects.filter(pk__in=ids).order_by("pk")
    assert [(row.to_status_id, row.from_status_id) for row in rows] == [
        (None, rows[0].from_status_id),
        (rows[1].to_status_id, None),
    ]
    assert rows[0].from_status_id is not None
    assert rows[1].to_status_id is not None
    assert [(row.to_status_name, row.from_status_name) for row in rows] == [
        ("In progress", "Pending"),
        ("Pending", "In progress"),
    ]


def test_renaming_steps_and_statuses_breaks_no_instance_or_history(instance):
    at_review(instance)
    engine.update_workflow_step_status(instance, "In progress")
    engine.set_workflow_on_hold(instance)
    history_before = list(instance.history.order_by("id").values_list("to_step_name", flat=True))
    review = WorkflowStep.objects.get(workflow__name="Claims", name="Review")
    review.name = "Assessment"
    review.save()
    in_progress = review.possible_statuses.get(name="In progress")
    in_progress.name = "Being assessed"
    in_progress.save()

    engine.resume_workflow_instance(instance)
    assert (instance.current_step.name, instance.current_step_status.name) == (
        "Assessment",
        "Being assessed",
    )
    engine.update_workflow_step_status(instance, "Approved", LOW)
    assert instance.current_step.name == "Payment"
    rows = list(instance.history.order_by("id"))
    assert [row.to_step_name for row in rows[: len(history_before)]] == history_before
    assert ("Review", "In progress") in [(r.to_step_name, r.to_status_name) for r in rows]
    assert (rows[-2].from_step_name, rows[-2].to_status_name) == ("Assessment", "Approved")
    assert rows[-1].event == "step_changed"
    assert (rows[-1].from_step_name, rows[-1].to_step_name) == ("Assessment", "Payment")
