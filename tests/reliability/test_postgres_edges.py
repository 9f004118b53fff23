"""PostgreSQL edges: edits during a recompile, a step deleted under a move, starts
under ``REPEATABLE READ``.

Threads, each with its own connection, against committed data: a definition edit
committed while another connection loads the definition, a step deleted by a
transaction that commits while a change moves an instance into it, and concurrent
starts for one object under ``REPEATABLE READ``. Each must end with the committed
definition, a clear ``StepsError`` and nothing written, or the one instance.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.db.models.signals import pre_delete

from django_steps import engine
from django_steps._engine.cache import workflow_cache
from django_steps.exceptions import DefinitionError, DefinitionInUse
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
from tests.reliability.scale import LONG
from tests.testapp.models import Claim

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

LOW = {"claim": {"amount": 500.0, "is_high_risk": False}}
RECOMPILES = 400 if LONG else 200
STARTERS = 6


def in_threads(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in ``count`` threads at once; their results (or exceptions)."""
    results: list[Any] = [None] * count
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except BaseException as error:  # returned to the test
            results[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def spare_definition() -> dict[str, Any]:
    """The claims workflow with a final "Spare" step that nothing ever moves to."""
    data = claims_definition()
    data["steps"].append(
        {
            "name": "Spare 0",
            "order": 100,
            "final": True,
            "statuses": [{"name": "Spare", "default": True, "completion": True}],
        }
    )
    data["transitions"].append(
        {
            "name": "To spare",
            "from": "Review",
            "to": "Spare 0",
            "condition": "false",
            "priority": -10,
        }
    )
    return data


def move_the_spare_step(workflow: Workflow, turn: int) -> None:
    """One edit, valid when committed: a new spare step replaces the old one.

    A load that mixes the rows before and after it (the new transition target with the
    old steps, or the old step without its statuses) cannot be compiled.
    """
    with transaction.atomic():
        old = WorkflowStep.objects.get(workflow=workflow, name=f"Spare {turn}")
        new = WorkflowStep.objects.create(
            workflow=workflow, name=f"Spare {turn + 1}", order=100 + turn + 1, is_final_step=True
        )
        WorkflowStepStatus.objects.create(
            step=new, name="Spare", is_default_status=True, is_completion_status=True
        )
        transition = WorkflowTransition.objects.get(workflow=workflow, name="To spare")
        transition.to_step = new
        transition.save()
        old.delete()


def test_recompiles_during_definition_edits_see_one_committed_revision():
    workflow = create_workflow(spare_definition())
    instance = start_workflow_instance(workflow.name, Claim.objects.create(title="Hail"))
    assert instance is not None
    assert update_workflow_step_status(instance, "Accepted")
    done = threading.Event()

    def work(index: int) -> Any:
        if index == 0:  # the editor
            turn = 0
            while not done.is_set():
                move_the_spare_step(workflow, turn)
                turn += 1
            return turn
        failures = []
        mine = WorkflowInstance.objects.get(pk=instance.pk)
        try:
            for call in range(RECOMPILES):
                workflow_cache.clear()
                try:
                    if call % 2:  # inside a state change's READ COMMITTED transaction
                        engine.update_workflow_step_status(
                            mine, "In progress" if call % 4 == 1 else "Pending"
                        )
                    else:  # outside a transaction, as a start compiles
                        engine.start_workflow_instance(workflow.name, mine.content_object)
                except DefinitionError as error:
                    failures.append(str(error))
        finally:
            done.set()
        return failures

    edits, failures = in_threads(2, work)
    assert not isinstance(failures, BaseException), failures
    assert not isinstance(edits, BaseException), edits
    assert edits > 5, "the editor must have committed edits during the recompiles"
    assert failures == []


@pytest.fixture
def waiting_for_a_lock() -> Iterator[Callable[[], bool]]:
    def waiting() -> bool:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            )
            (count,) = cursor.fetchone()
        return bool(count)

    return waiting


def test_a_step_deleted_while_an_instance_moves_into_it_is_a_clear_error(waiting_for_a_lock):
    workflow = create_workflow(claims_definition())
    instance = start_workflow_instance(workflow.name, Claim.objects.create(title="Hail"))
    assert instance is not None
    assert update_workflow_step_status(instance, "Accepted")
    rows = WorkflowHistory.objects.count()
    deleted, release = threading.Event(), threading.Event()

    def work(index: int) -> Any:
        if index == 0:  # deletes Payment (no instance is at it) and commits when told
            with transaction.atomic():
                WorkflowStep.objects.get(workflow=workflow, name="Payment").delete()
                deleted.set()
                release.wait(30)
            return "deleted"
        deleted.wait(30)
        # Moves the instance into Payment, with the definition it has cached.
        mover = WorkflowInstance.objects.get(pk=instance.pk)
        return engine.update_workflow_step_status(mover, "Approved", LOW)

    def release_once_the_move_waits() -> None:
        for _ in range(300):
            if waiting_for_a_lock():
                break
            time.sleep(0.05)
        release.set()

    helper = threading.Thread(target=release_once_the_move_waits)
    helper.start()
    deleter, mover = in_threads(2, work)
    helper.join()
    assert deleter == "deleted"
    assert isinstance(mover, DefinitionError), mover
    assert "deleted" in str(mover)
    stored = WorkflowInstance.objects.get(pk=instance.pk)
    assert (stored.current_step.name, stored.current_step_status.name) == ("Review", "Pending")
    assert WorkflowHistory.objects.count() == rows


def test_deleting_a_step_an_instance_moved_to_meanwhile_is_a_clear_error():
    # The delete checks that no instance is at the step, a change moves one there and
    # commits, then the delete runs and commits: PostgreSQL refuses the commit.
    workflow = create_workflow(claims_definition())
    instance = start_workflow_instance(workflow.name, Claim.objects.create(title="Hail"))
    assert instance is not None
    assert update_workflow_step_status(instance, "Accepted")
    checked, moved = threading.Event(), threading.Event()
    outcome: list[Any] = []

    def between_the_check_and_the_delete(sender: Any, **kwargs: Any) -> None:
        if threading.current_thread() is deleter:
            checked.set()
            moved.wait(30)

    def delete_payment() -> None:
        try:
            WorkflowStep.objects.get(workflow=workflow, name="Payment").delete()
            outcome.append("deleted")
        except BaseException as error:  # checked below
            outcome.append(error)
        finally:
            connections.close_all()

    deleter = threading.Thread(target=delete_payment)
    pre_delete.connect(between_the_check_and_the_delete, sender=WorkflowStep)
    try:
        deleter.start()
        assert checked.wait(30)
        engine.update_workflow_step_status(instance, "Approved", LOW)  # into Payment
        moved.set()
        deleter.join()
    finally:
        pre_delete.disconnect(between_the_check_and_the_delete, sender=WorkflowStep)
    (error,) = outcome
    assert isinstance(error, DefinitionInUse), error
    assert "moved to it while it was being deleted" in str(error)
    assert error.step == "Payment"
    assert WorkflowStep.objects.filter(workflow=workflow, name="Payment").exists()
    instance.refresh_from_db()
    assert instance.current_step.name == "Payment"


def test_concurrent_starts_under_repeatable_read_return_the_one_instance():
    import psycopg

    workflow = create_workflow(claims_definition())
    claim = Claim.objects.create(title="Hail")
    options = connection.settings_dict.setdefault("OPTIONS", {})
    options["isolation_level"] = psycopg.IsolationLevel.REPEATABLE_READ
    try:
        results = in_threads(STARTERS, lambda index: start_workflow_instance(workflow.name, claim))
    finally:
        del options["isolation_level"]
    errors = [result for result in results if isinstance(result, BaseException)]
    assert errors == []
    assert len({result.pk for result in results}) == 1
    assert WorkflowInstance.objects.count() == 1
    assert WorkflowHistory.objects.count() == 1
