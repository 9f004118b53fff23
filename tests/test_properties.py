"""Property-based tests: the database-backed engine and the bare machines always agree.

Hypothesis generates valid workflow definitions (steps in a DAG with the initial
step first and at least one final step, statuses with one plain default per step,
optional cancellation and on-hold statuses, transitions guarded by small CEL
conditions over ``x`` and ``y``) and sequences of operations. Each operation is
applied to a stored instance through :mod:`django_steps.engine` and to a plain
:class:`~django_steps.machines.MachineState` through a
:class:`~django_steps.machines.WorkflowRunner` of the same definition: both must
take the same path (the same changes, the same refusals) and end in the same state,
and the stored instance must satisfy the workflow's invariants after every step.
The strategies are in :mod:`tests.strategies`; example counts come from
:mod:`tests.reliability.scale` (more under ``make reliability``).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction
from hypothesis import given, settings

from django_steps import engine
from django_steps._engine.cache import workflow_cache
from django_steps.cel import get_backend
from django_steps.exceptions import StepsError
from django_steps.machines import MachineState, WorkflowDefinition, WorkflowRunner
from django_steps.machines.lifecycle import Lifecycle
from django_steps.models import WorkflowHistory, WorkflowInstance
from tests.factories import create_workflow
from tests.reliability.audit import (
    assert_allowed_state,
    outcome_changes,
    replay,
    row_change,
    stored_state,
)
from tests.reliability.scale import HYPOTHESIS
from tests.strategies import operation_sequences, workflow_definitions
from tests.testapp.models import Claim


def completion_status(definition: WorkflowDefinition, state: MachineState) -> str:
    step = definition.get_step(state.step or "")
    return next((s.name for s in step.statuses if s.is_completion), "Done")


def apply_to_engine(
    instance: WorkflowInstance, operation: str, status: str | None, context: Any, note: str
) -> Any:
    if operation in ("status", "complete"):
        return engine.update_workflow_step_status(instance, status, context, note=note)
    function = {
        "hold": engine.set_workflow_on_hold,
        "resume": engine.resume_workflow_instance,
        "cancel": engine.cancel_workflow_instance,
    }[operation]
    return function(instance, note=note)


def apply_to_runner(
    runner: WorkflowRunner, state: MachineState, operation: str, status: str | None, context: Any
) -> Any:
    if operation in ("status", "complete"):
        return runner.set_status(state, status or "", context)
    return {"hold": runner.hold, "resume": runner.resume, "cancel": runner.cancel}[operation](state)


@pytest.fixture(autouse=True, scope="module")
def cel_environment() -> None:
    """Build cel-python's environment (it raises the recursion limit) before hypothesis runs."""
    get_backend("celpy").environment  # noqa: B018 - built on first access


def fetch(instance: WorkflowInstance) -> WorkflowInstance:
    return WorkflowInstance.objects.select_related(
        "current_step", "current_step_status", "status_before_hold"
    ).get(pk=instance.pk)


def attempt(function: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "ok", function(*args)
    except StepsError as error:
        return "refused", type(error)


@pytest.mark.django_db
@settings(HYPOTHESIS)
@given(data=workflow_definitions(), steps=operation_sequences)
def test_engine_and_machines_agree_on_every_path(data, steps):
    with transaction.atomic():
        workflow_cache.clear()
        create_workflow(data)
        definition = WorkflowDefinition.from_dict(data)
        runner = WorkflowRunner(definition)
        instance = engine.start_workflow_instance(
            "Generated", Claim.objects.create(title="claim"), note="start"
        )
        state, started = runner.start()
        assert [row_change(r) for r in instance.history.all()] == outcome_changes(started)

        for number, (operation, status, context) in enumerate(steps):
            note = f"op {number}"
            if operation == "complete":
                status = completion_status(definition, state)
            rows_before = WorkflowHistory.objects.filter(instance=instance).count()
            stored = attempt(apply_to_engine, instance, operation, status, context, note)
            machine = attempt(apply_to_runner, runner, state, operation, status, context)

            assert stored[0] == machine[0], f"{operation} {status}: {stored} vs {machine}"
            written = [row_change(r) for r in instance.history.filter(note=note).order_by("id")]
            if stored[0] == "refused":
                assert stored[1] is machine[1], f"refused differently: {stored} vs {machine}"
                assert written == []
            else:
                assert outcome_changes(stored[1]) == outcome_changes(machine[1])
                assert written == outcome_changes(stored[1])
            assert instance.history.count() == rows_before + len(written)

            fresh = fetch(instance)
            assert stored_state(fresh) == state
            assert_allowed_state(fresh, definition)
            assert stored_state(instance) == state, "the caller's object is kept up to date"

        rows = list(WorkflowHistory.objects.filter(instance=instance).order_by("id"))
        assert replay(fetch(instance), rows, runner) == state
        transaction.set_rollback(True)


@settings(HYPOTHESIS)
@given(data=workflow_definitions(), steps=operation_sequences)
def test_machines_alone_keep_the_invariants(data, steps):
    """Without a database: the lifecycle always matches the step and status."""
    definition = WorkflowDefinition.from_dict(data)
    runner = WorkflowRunner(definition)
    state, _ = runner.start()
    for operation, status, context in steps:
        if operation == "complete":
            status = completion_status(definition, state)
        before = MachineState(**vars(state))
        outcome = attempt(apply_to_runner, runner, state, operation, status, context)
        if outcome[0] == "refused":
            assert state == before, "a refused operation leaves the state untouched"
        step = definition.get_step(state.step or "")
        current = step.status(state.status or "")
        assert current is not None
        assert (state.lifecycle is Lifecycle.ON_HOLD) == current.is_on_hold
        assert (state.lifecycle is Lifecycle.CANCELLED) == current.is_cancellation
        assert (state.lifecycle is Lifecycle.COMPLETED) == (step.is_final and current.is_completion)
