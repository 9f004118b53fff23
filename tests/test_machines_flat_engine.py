"""Compiled machines run on the flat engine, with the library engine's results.

:mod:`django_steps.machines.flat_engine` skips statechart work a flat machine never
needs and reuses each transition's exit and entry plans. These tests pin that a
machine on it ends in the same states and runs the same callbacks, in the same order,
as the same machine on python-statemachine's own ``SyncEngine``.
"""

from __future__ import annotations

import gc
import weakref
from contextlib import nullcontext
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statemachine import State
from statemachine.engines.sync import SyncEngine

from django_steps.cel import convert_context
from django_steps.machines import MachineState, WorkflowDefinition, WorkflowRunner
from django_steps.machines.compiler import COMPLETE, WorkflowMachine, compile_workflow
from django_steps.machines.flat_engine import FlatMachineEngine, FlatShape
from tests.conftest import HIGH, LOW, RISKY
from tests.factories import claims_definition
from tests.reliability.scale import HYPOTHESIS


class Recorder:
    """A listener recording the callbacks python-statemachine runs, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def before_transition(self, event: Any, source: State, target: State) -> None:
        self.calls.append(("before", str(event), source.id, target.id))

    def on_exit_state(self, event: Any, state: State) -> None:
        self.calls.append(("exit", str(event), state.id))

    def on_transition(self, event: Any, source: State, target: State) -> None:
        self.calls.append(("on", str(event), source.id, target.id))

    def on_enter_state(self, event: Any, state: State) -> None:
        self.calls.append(("enter", str(event), state.id))

    def after_transition(self, event: Any, source: State, target: State) -> None:
        self.calls.append(("after", str(event), source.id, target.id))


class AfterOnly:
    """A listener with callbacks in one group only: the other groups are skipped."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def after_transition(self, event: Any, source: State, target: State) -> None:
        self.calls.append(("after", str(event), source.id, target.id))


class Preparer:
    """A ``prepare_event`` listener: it runs each time callback arguments are built."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def prepare_event(self, event: Any, transition: Any, state: State) -> dict[str, Any]:
        self.calls.append(("prepare", str(event), transition.source.id, state.id))
        return {}


LISTENERS = {"all callbacks": Recorder, "after only": AfterOnly, "prepare": Preparer}


def machine_class(*, flat: bool) -> type[WorkflowMachine]:
    machine = compile_workflow(WorkflowDefinition.from_dict(claims_definition()))
    if not flat:
        # No shape: the class falls back to the library's engine.
        type.__setattr__(machine, "_flat_shape", None)
    return machine


def drive(
    machine: type[WorkflowMachine], script: list[tuple[str, Any]], listener: Any = None
) -> list[Any]:
    """Run ``script`` (events with their context) on a machine; what each step saw."""
    runner = WorkflowRunner(machine)
    state = MachineState(step="Submitted", status="New")
    bound = runner.machine(state)
    if listener is not None:
        bound.add_listener(listener)
    seen = []
    for event, context in script:
        evaluations: list[Any] = []
        try:
            bound.send(event, activation=convert_context(context), evaluations=evaluations)
            error = None
        except Exception as exc:
            error = type(exc).__name__
        seen.append(
            (
                event,
                state.step,
                error,
                [(e.transition.label, e.result) for e in evaluations],
                list(bound.configuration_values),
            )
        )
    return [seen, listener.calls if listener is not None else None]


SCRIPTS = {
    "straight to payment": [(COMPLETE, LOW), (COMPLETE, LOW), (COMPLETE, LOW)],
    "investigation": [(COMPLETE, None), (COMPLETE, RISKY), (COMPLETE, None), (COMPLETE, None)],
    "senior review": [(COMPLETE, None), (COMPLETE, HIGH), (COMPLETE, None)],
    "past the final step": [(COMPLETE, None), (COMPLETE, LOW), (COMPLETE, None), (COMPLETE, None)],
    "condition error": [(COMPLETE, None), (COMPLETE, {"claim": {}}), (COMPLETE, HIGH)],
    "unknown event": [("nope", None), (COMPLETE, None)],
}


def test_compiled_machines_run_on_the_flat_engine():
    machine = machine_class(flat=True)
    bound = WorkflowRunner(machine).machine(MachineState(step="Review"))
    assert type(bound._engine) is FlatMachineEngine
    assert type(machine_class(flat=False)(start_value=None)._engine) is SyncEngine


@pytest.mark.parametrize("script", list(SCRIPTS.values()), ids=list(SCRIPTS))
@pytest.mark.parametrize("listener", [None, *LISTENERS.values()], ids=["none", *LISTENERS])
def test_flat_engine_gives_the_library_engine_results(script, listener):
    flat = drive(machine_class(flat=True), script, listener and listener())
    library = drive(machine_class(flat=False), script, listener and listener())
    assert flat == library
    if listener is not None:
        assert flat[1]  # the listener saw something to compare


def test_plans_are_kept_per_machine_for_transitions_of_the_class_only():
    machine = machine_class(flat=True)
    state = MachineState(step="Submitted", status="New")
    bound = WorkflowRunner(machine).machine(state)
    for context in (LOW, LOW):
        bound.send(COMPLETE, activation=convert_context(context), evaluations=[])
    assert state.step == "Payment"
    engine = bound._engine
    assert isinstance(engine, FlatMachineEngine)
    taken = {(t.source.name, t.target.name) for t in engine.exit_plans}
    assert taken == {("Submitted", "Review"), ("Review", "Payment")}
    # Entering the initial state (done for each new machine) is not cached.
    assert set(engine.entry_plans) == set(engine.exit_plans)
    # Each plan holds this machine's own states; the class's shape holds no plan.
    for _ordered, states in engine.exit_plans.values():
        assert all(exited._machine() is bound for exited in states)
    assert not hasattr(FlatShape.of(machine), "exit_plans")


def test_a_machine_with_compound_states_is_not_flat():
    class Compound(WorkflowMachine):
        class outer(State.Compound):
            inner = State(initial=True)
            done = State(final=True)
            finish = inner.to(done)

        end = State(final=True)
        leave = outer.to(end)

    assert FlatShape.of(Compound) is None
    machine = Compound()
    assert type(machine._engine) is SyncEngine
    machine.send("finish")
    assert "done" in machine.configuration_values


def test_events_are_matched_once_per_declared_event():
    machine = machine_class(flat=True)
    bound = WorkflowRunner(machine).machine(MachineState(step="Review"))
    for event in (COMPLETE, "nope", COMPLETE):
        with pytest.raises(bound.TransitionNotAllowed) if event == "nope" else nullcontext():
            bound.send(event, activation=convert_context(LOW))
    shape = FlatShape.of(machine)
    assert shape is not None
    assert set(shape.matches) == {COMPLETE}  # an undeclared event is never remembered
    completions = {(t.source.name, t.target.name) for t in shape.matches[COMPLETE]}
    assert ("Review", "Payment") in completions
    assert len(completions) == len(claims_definition()["transitions"])


def test_the_condition_guards_of_compiled_machines_are_marked_for_direct_calls():
    shape = FlatShape.of(machine_class(flat=True))
    assert shape is not None
    assert set(shape.guards) == shape.transitions  # every transition is a ``complete``


def pausable(*, flat: bool) -> type[WorkflowMachine]:
    """A hand-written flat machine: internal self-transitions, guards by name and unmarked."""

    class Pausable(WorkflowMachine):
        idle = State(initial=True)
        busy = State()
        done = State(final=True)
        begin = idle.to(busy)
        pause = busy.to.itself(internal=True, cond="can_pause")
        finish = busy.to(done, cond=lambda allowed=True: allowed)

        def can_pause(self, allowed: bool = True) -> bool:
            return allowed

    if not flat:
        type.__setattr__(Pausable, "_flat_shape", None)
    return Pausable


def send_all(machine: WorkflowMachine, script: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    seen = []
    for event, arguments in script:
        try:
            machine.send(event, **arguments)
            error = None
        except Exception as exc:
            error = type(exc).__name__
        seen.append((event, error, list(machine.configuration_values)))
    return seen


PAUSABLE_SCRIPT = [
    ("pause", {}),
    ("begin", {}),
    ("pause", {"allowed": False}),
    ("pause", {}),
    ("finish", {"allowed": False}),
    ("finish", {}),
    ("begin", {}),
]


@pytest.mark.parametrize("listener", [None, *LISTENERS.values()], ids=["none", *LISTENERS])
def test_flat_engine_runs_other_flat_machines_as_the_library_does(listener):
    runs = []
    for flat in (True, False):
        machine = pausable(flat=flat)()
        assert (type(machine._engine) is FlatMachineEngine) is flat
        recorder = listener and listener()
        if recorder is not None:
            machine.add_listener(recorder)
        runs.append((send_all(machine, PAUSABLE_SCRIPT), recorder and recorder.calls))
    assert runs[0] == runs[1]
    shape = FlatShape.of(pausable(flat=True))
    assert shape is not None
    assert shape.guards == {}  # guards not marked by the compiler go through the library
    assert any(t.internal for t in shape.transitions)


@pytest.mark.parametrize(
    ("listener", "through_the_library"),
    # With prepare_event, every guard tried: Submitted's one, then Review's three.
    [(None, 0), (Recorder, 0), (Preparer, 4)],
    ids=["none", "all callbacks", "prepare"],
)
def test_guards_are_called_directly_unless_prepare_event_may_add_arguments(
    monkeypatch, listener, through_the_library
):
    dispatched = []
    library = SyncEngine._conditions_match

    def counting(self: Any, transition: Any, trigger_data: Any) -> Any:
        dispatched.append(transition)
        return library(self, transition, trigger_data)

    monkeypatch.setattr(SyncEngine, "_conditions_match", counting)
    script = [(COMPLETE, None), (COMPLETE, LOW)]
    seen, _ = drive(machine_class(flat=True), script, listener and listener())
    assert seen[1][3] == [
        ("Review -> Investigation", False),
        ("Review -> Senior Review", False),
        ("Review -> Payment", True),
    ]
    assert len(dispatched) == through_the_library


class Owner:
    """A listener recording, per callback, whether its states belong to its own machine.

    python-statemachine hands callbacks the machine's own (per-instance) state objects;
    with two machines of one class, each must see its own.
    """

    def __init__(self) -> None:
        self.machine: Any = None
        self.calls: list[tuple[Any, ...]] = []

    def mine(self, state: Any) -> bool | None:
        owner = getattr(state, "_machine", None)
        return None if owner is None else owner() is self.machine

    def on_exit_state(self, event: Any, state: State) -> None:
        self.calls.append(("exit", str(event), state.id, self.mine(state), state.is_active))

    def on_enter_state(self, event: Any, state: State) -> None:
        self.calls.append(("enter", str(event), state.id, self.mine(state), state.is_active))

    def after_transition(self, event: Any, source: State, target: State, state: State) -> None:
        self.calls.append(
            ("after", str(event), source.id, self.mine(source), target.id, self.mine(target))
        )
        self.calls.append(("state", state.id, self.mine(state), state.is_active))


def drive_two(machine: type[WorkflowMachine], events: list[tuple[int, str, Any]]) -> list[Any]:
    """Two machines of one class, events sent to each in turn; what each listener saw."""
    runner = WorkflowRunner(machine)
    states = [MachineState(step="Submitted", status="New") for _ in range(2)]
    listeners = [Owner(), Owner()]
    bound = []
    for state, listener in zip(states, listeners, strict=True):
        one = runner.machine(state)
        listener.machine = one
        one.add_listener(listener)
        bound.append(one)
    for which, event, context in events:
        try:
            bound[which].send(event, activation=convert_context(context), evaluations=[])
        except Exception as exc:
            listeners[which].calls.append(("error", type(exc).__name__))
    return [listener.calls for listener in listeners] + [state.step for state in states]


TWO_MACHINES = {
    "one after the other": [
        (0, COMPLETE, LOW),
        (1, COMPLETE, LOW),
        (0, COMPLETE, LOW),
        (1, COMPLETE, LOW),
        (1, COMPLETE, LOW),
        (0, COMPLETE, LOW),
    ],
    "same transition, other machine first": [
        (1, COMPLETE, None),
        (0, COMPLETE, None),
        (0, "hold", None),
        (1, "hold", None),
        (1, "resume", None),
        (0, "resume", None),
    ],
    "diverging": [
        (0, COMPLETE, None),
        (1, COMPLETE, None),
        (0, COMPLETE, RISKY),
        (1, COMPLETE, HIGH),
        (0, COMPLETE, None),
        (1, COMPLETE, None),
        (0, COMPLETE, None),
    ],
}


@pytest.mark.parametrize("events", list(TWO_MACHINES.values()), ids=list(TWO_MACHINES))
def test_two_machines_of_one_class_each_see_their_own_states(events):
    # The plans reused for a transition hold state objects: one machine's must never
    # reach the other's callbacks.
    flat = drive_two(machine_class(flat=True), events)
    library = drive_two(machine_class(flat=False), events)
    assert flat == library
    assert all(call[3] is not False for calls in flat[:2] for call in calls if call[0] == "exit")
    assert any(call[0] == "exit" for call in flat[0])
    assert any(call[0] == "exit" for call in flat[1])


EVENT = st.tuples(
    st.sampled_from([0, 1]),
    st.sampled_from([COMPLETE, COMPLETE, "hold", "resume", "cancel", "nope"]),
    st.sampled_from([None, LOW, HIGH, RISKY, {"claim": {}}]),
)


@settings(HYPOTHESIS)
@given(st.lists(EVENT, max_size=20))
def test_two_machines_of_one_class_agree_with_the_library_on_random_events(events):
    assert drive_two(machine_class(flat=True), events) == drive_two(
        machine_class(flat=False), events
    )


def test_a_machine_and_its_model_are_collectable_once_unused():
    # The class's shape is shared by every machine of the class: it must hold none.
    class Model:
        state_id: Any = None

    machine = machine_class(flat=True)
    model = Model()
    one = machine(model=model, state_field="state_id")
    one.add_listener(Owner())
    one.send(COMPLETE, activation=convert_context(LOW), evaluations=[])
    one.send(COMPLETE, activation=convert_context(LOW), evaluations=[])
    assert model.state_id == "step_payment"
    dead_machine, dead_model = weakref.ref(one), weakref.ref(model)
    del one, model
    gc.collect()
    assert dead_machine() is None
    assert dead_model() is None
    assert FlatShape.of(machine) is not None  # the class keeps its shape
