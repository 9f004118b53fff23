"""The runner reuses one machine per thread to complete steps, with unchanged results.

Building a python-statemachine instance per update cost as much as the transition;
the runner now keeps one idle machine per thread and points it at the next state,
with a new engine after a refusal, a condition error or a final step (a stopped or
failed engine is not reused). These tests pin that the reuse never leaks one state
into another: after refusals, condition errors, unexpected errors, final steps, and
across threads.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from django_steps.exceptions import NoTransitionAvailable, TransitionConditionError
from django_steps.machines import MachineState, WorkflowDefinition, WorkflowRunner
from django_steps.machines.lifecycle import Lifecycle
from tests.conftest import HIGH, LOW, RISKY
from tests.factories import claims_definition


@pytest.fixture
def runner() -> WorkflowRunner:
    data = claims_definition()
    # Without the unconditional fallback, a claim can be refused at Review.
    data["transitions"] = [t for t in data["transitions"] if t.get("condition") != ""]
    return WorkflowRunner(WorkflowDefinition.from_dict(data))


def at_review() -> MachineState:
    return MachineState(step="Review", status="Pending")


def idle_machine(runner: WorkflowRunner):
    """This thread's idle machine, or None."""
    idle = getattr(runner._idle, "machine", None)
    return None if idle is None else idle[0]


def test_one_machine_serves_successive_states(runner):
    first, second = at_review(), at_review()
    runner.set_status(first, "Approved", RISKY)
    machine = idle_machine(runner)
    assert machine is not None
    runner.set_status(second, "Approved", HIGH)
    assert idle_machine(runner) is machine
    assert (first.step, second.step) == ("Investigation", "Senior Review")
    assert (first.status, second.status) == ("Open", "Pending")


def engine_of(runner: WorkflowRunner):
    machine = idle_machine(runner)
    assert machine is not None
    return machine._engine


def test_a_refusal_keeps_the_machine_on_a_new_engine_and_changes_nothing(runner):
    runner.set_status(at_review(), "Approved", RISKY)
    machine, engine = idle_machine(runner), engine_of(runner)
    refused = at_review()
    with pytest.raises(NoTransitionAvailable):
        runner.set_status(refused, "Approved", LOW)
    assert idle_machine(runner) is machine
    assert engine_of(runner) is not engine
    assert (refused.step, refused.status) == ("Review", "Pending")
    after = at_review()
    runner.set_status(after, "Approved", HIGH)
    assert after.step == "Senior Review"


def test_a_condition_error_keeps_the_machine_on_a_new_engine(runner):
    runner.set_status(at_review(), "Approved", RISKY)
    machine, engine = idle_machine(runner), engine_of(runner)
    broken = at_review()
    with pytest.raises(TransitionConditionError):
        runner.set_status(broken, "Approved", {"claim": {"amount": 1.0}})
    assert idle_machine(runner) is machine
    assert engine_of(runner) is not engine
    assert broken.step == "Review"
    after = at_review()
    runner.set_status(after, "Approved", RISKY)
    assert after.step == "Investigation"


def test_an_unexpected_error_drops_the_machine(runner, monkeypatch):
    runner.set_status(at_review(), "Approved", RISKY)
    machine = idle_machine(runner)
    assert machine is not None

    def fail(*args, **kwargs):
        raise RuntimeError("listener failed")

    monkeypatch.setattr(machine._engine, "microstep", fail)
    failing = at_review()
    with pytest.raises(RuntimeError, match="listener failed"):
        runner.set_status(failing, "Approved", HIGH)
    assert idle_machine(runner) is None
    assert failing.step == "Review"
    after = at_review()
    runner.set_status(after, "Approved", HIGH)
    assert after.step == "Senior Review"
    assert idle_machine(runner) is not machine


def test_reaching_a_final_step_does_not_stop_later_completions(runner):
    paying = MachineState(step="Payment", status="Scheduled")
    runner.set_status(paying, "Paid", LOW)
    assert (paying.step, paying.lifecycle) == ("Closed", Lifecycle.COMPLETED)
    # The engine stopped in the final state; the machine is kept with a new one.
    assert engine_of(runner).running
    second = MachineState(step="Payment", status="Scheduled")
    runner.set_status(second, "Paid", LOW)
    assert second.lifecycle is Lifecycle.COMPLETED
    review = at_review()
    runner.set_status(review, "Approved", HIGH)
    assert review.step == "Senior Review"


def test_threads_get_their_own_machine(runner):
    contexts = [RISKY, HIGH] * 200
    expected = {"Investigation", "Senior Review"}
    seen: dict[int, set[int]] = {}
    lock = threading.Lock()

    def complete(context: dict) -> tuple[dict, str | None]:
        state = at_review()
        runner.set_status(state, "Approved", context)
        with lock:
            seen.setdefault(threading.get_ident(), set()).add(id(idle_machine(runner)))
        return context, state.step

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(complete, contexts))
    assert {step for _, step in results} == expected
    assert all(
        step == ("Investigation" if context is RISKY else "Senior Review")
        for context, step in results
    )
    machines = list(seen.values())
    assert all(len(ids) == 1 for ids in machines)  # each thread kept reusing its own
    assert len({next(iter(ids)) for ids in machines}) == len(machines)
