"""Compile a :class:`WorkflowDefinition` into a python-statemachine class.

Internal: use :func:`django_steps.machines.compile_workflow` and
:class:`django_steps.machines.WorkflowRunner`.

States are the steps (initial and final flags carried over, the step name as label,
a safe id as id and value; :class:`StepBinding` maps it to the step name the bound
object holds). Completing a step is the ``complete`` event: its transitions
are the workflow's transitions from that step in priority order, each guarded by its
compiled CEL condition. ``hold``, ``resume`` and ``cancel`` are self-transitions on
the non-final steps that have an on-hold or cancellation status, guarded by the
lifecycle of the object the machine is bound to, so a machine tells what can be done
now. Python-statemachine keeps final states terminal; the services still apply the
same status rules there.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from statemachine import State, StateMachine
from statemachine.factory import StateMachineMetaclass

from ..cel import DEFAULT_LIMITS, CelLimits, CompiledCondition, compile_condition
from ..exceptions import ConditionError, ConditionEvaluationError, DefinitionError
from .definition import StepDefinition, TransitionDefinition, WorkflowDefinition
from .flat_engine import DIRECT_ARGUMENTS, FlatMachineEngine, FlatShape
from .lifecycle import Lifecycle

COMPLETE = "complete"
HOLD = "hold"
RESUME = "resume"
CANCEL = "cancel"
EVENTS = (COMPLETE, HOLD, RESUME, CANCEL)


class Evaluation:
    """One condition tried while completing a step: its result or its error."""

    __slots__ = ("error", "result", "transition")

    def __init__(
        self, transition: TransitionDefinition, result: bool | None, error: str | None = None
    ):
        self.transition = transition
        self.result = result
        self.error = error

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, as stored in history rows."""
        return {
            "transition": self.transition.label,
            "to_step": self.transition.to_step,
            "condition": self.transition.condition,
            "priority": self.transition.priority,
            "result": self.result,
            "error": self.error,
        }

    def __repr__(self) -> str:
        outcome = f"error={self.error!r}" if self.error else f"result={self.result!r}"
        return f"Evaluation({self.transition.label!r}, {outcome})"


class WorkflowMachine(StateMachine):
    """Base class of compiled workflow machines (``StateMachine`` semantics).

    Guard errors propagate instead of being turned into events, and an event with no
    transition raises ``TransitionNotAllowed``. The definition is checked by
    :mod:`django_steps.validation`, so python-statemachine's own graph checks are off:
    they would refuse, with a less helpful message, definitions that validation
    reports better. Compiled machines are flat, and run on
    :class:`~django_steps.machines.flat_engine.FlatMachineEngine`.
    """

    validate_disconnected_states = False
    validate_trap_states = False
    validate_final_reachability = False

    definition: ClassVar[WorkflowDefinition]
    state_ids: ClassVar[Mapping[str, str]]
    step_names: ClassVar[Mapping[str, str]]
    conditions: ClassVar[Mapping[TransitionDefinition, CompiledCondition | None]]

    def _get_engine(self) -> Any:
        # Compiled machines are flat, so the engine can skip the statechart work that
        # never applies to them (see flat_engine); anything else gets the library's.
        shape = FlatShape.of(type(self))
        if shape is None or self._callbacks.has_async_callbacks:
            return super()._get_engine()
        return FlatMachineEngine(self, shape)


class StepBinding:
    """What a machine is bound to: exposes a state's step name as the machine's state id.

    ``state`` is any object with ``step`` (a step name) and ``lifecycle`` attributes:
    a :class:`~django_steps.machines.runner.MachineState` or a user's plain object.
    """

    __slots__ = ("state", "state_ids", "step_names")

    def __init__(self, state: Any, state_ids: Mapping[str, str], step_names: Mapping[str, str]):
        self.state = state
        self.state_ids = state_ids
        self.step_names = step_names

    @property
    def state_id(self) -> str | None:
        step = self.state.step
        return None if step is None else self.state_ids[step]

    @state_id.setter
    def state_id(self, value: str | None) -> None:
        self.state.step = None if value is None else self.step_names[value]

    @property
    def lifecycle(self) -> Any:
        return getattr(self.state, "lifecycle", Lifecycle.RUNNING)


def state_id_for(name: str, taken: set[str]) -> str:
    """A safe python-statemachine id for a step name.

    Ids are ``step_`` plus the lowercased name with other characters replaced by
    ``_``, so they never clash with event names, reserved attributes (``model``,
    ``send``, ``states``) or each other; the database name stays the label.
    """
    base = "step_" + (re.sub(r"\W+", "_", name.strip().lower(), flags=re.ASCII).strip("_") or "x")
    candidate, counter = base, 2
    while candidate in taken:
        candidate, counter = f"{base}_{counter}", counter + 1
    taken.add(candidate)
    return candidate


def class_name_for(definition: WorkflowDefinition) -> str:
    """A stable class name per workflow, so recompiling replaces the registry entry."""
    slug = re.sub(r"\W+", "_", definition.name, flags=re.ASCII).strip("_") or "workflow"
    suffix = f"_{definition.id}" if definition.id is not None else ""
    return f"WorkflowMachine_{slug}{suffix}"


def _condition_guard(
    definition: WorkflowDefinition, transition: TransitionDefinition, compiled: CompiledCondition
) -> Callable[..., bool]:
    # Keyword-only parameters and no ``**kwargs``: python-statemachine binds a guard's
    # arguments by its signature on every call, and this shape binds cheapest.
    def guard(*, activation: Any = None, evaluations: list[Evaluation] | None = None) -> bool:
        try:
            result = compiled.evaluate(activation if activation is not None else {})
        except ConditionEvaluationError as error:
            if evaluations is not None:
                evaluations.append(Evaluation(transition, None, str(error)))
            raise ConditionEvaluationError(
                f"Workflow {definition.name!r}, transition {transition.label!r}: condition "
                f"{transition.condition!r} could not be evaluated: {error}",
                expression=transition.condition,
                workflow=definition.name,
                transition=transition.label,
            ) from None
        if evaluations is not None:
            evaluations.append(Evaluation(transition, result))
        return result

    guard.__name__ = f"condition_{transition.label}"
    setattr(guard, DIRECT_ARGUMENTS, ("activation", "evaluations"))
    return guard


def _always(transition: TransitionDefinition) -> Callable[..., bool]:
    def guard(*, evaluations: list[Evaluation] | None = None) -> bool:
        if evaluations is not None:
            evaluations.append(Evaluation(transition, True))
        return True

    setattr(guard, DIRECT_ARGUMENTS, ("evaluations",))
    return guard


def _lifecycle_is(*lifecycles: Lifecycle) -> Callable[..., bool]:
    def guard(*, model: Any = None) -> bool:
        return Lifecycle(getattr(model, "lifecycle", Lifecycle.RUNNING)) in lifecycles

    return guard


def compile_workflow(
    definition: WorkflowDefinition,
    *,
    backend: str = "celpy",
    limits: CelLimits = DEFAULT_LIMITS,
) -> type[WorkflowMachine]:
    """Build the machine class of a workflow definition.

    Raises :class:`~django_steps.exceptions.DefinitionError` when the definition
    cannot be compiled: no steps, no or several initial steps, a transition naming
    an unknown step or leaving a final step, or a condition that does not compile
    (its problems list the :class:`~django_steps.exceptions.ConditionError` s).
    The definition is never modified.
    """
    where = f"Workflow {definition.name!r}"
    if not definition.steps:
        raise DefinitionError(f"{where} has no steps.", workflow=definition.name)
    initial = [step for step in definition.steps if step.is_initial]
    if len(initial) != 1:
        raise DefinitionError(
            f"{where} must have exactly one initial step; it has {len(initial)}.",
            workflow=definition.name,
        )

    taken: set[str] = set(EVENTS)
    state_ids = {step.name: state_id_for(step.name, taken) for step in definition.steps}
    states = {step.name: _state(step, state_ids[step.name]) for step in definition.steps}

    conditions: dict[TransitionDefinition, CompiledCondition | None] = {}
    condition_errors: list[ConditionError] = []
    events: dict[str, Any] = {}

    def add(event: str, transitions: Any) -> None:
        events[event] = events[event] | transitions if event in events else transitions

    for step in definition.steps:
        source = states[step.name]
        outgoing = definition.transitions_from(step.name)
        if step.is_final and outgoing:
            raise DefinitionError(
                f"{where}: final step {step.name!r} has outgoing transitions.",
                workflow=definition.name,
            )
        for transition in outgoing:
            target = states.get(transition.to_step)
            if target is None:
                raise DefinitionError(
                    f"{where}: transition {transition.label!r} leads to unknown step "
                    f"{transition.to_step!r}.",
                    workflow=definition.name,
                )
            guard: Callable[..., bool]
            if transition.condition.strip():
                try:
                    compiled = compile_condition(
                        transition.condition, backend=backend, limits=limits
                    )
                except ConditionError as error:
                    error.workflow, error.transition = definition.name, transition.label
                    condition_errors.append(error)
                    continue
                conditions[transition] = compiled
                guard = _condition_guard(definition, transition, compiled)
            else:
                conditions[transition] = None
                guard = _always(transition)
            add(COMPLETE, source.to(target, event=COMPLETE, cond=guard))
        if step.is_final:
            continue
        if step.on_hold_status is not None:
            add(
                HOLD,
                source.to.itself(internal=True, event=HOLD, cond=_lifecycle_is(Lifecycle.RUNNING)),
            )
            add(
                RESUME,
                source.to.itself(
                    internal=True, event=RESUME, cond=_lifecycle_is(Lifecycle.ON_HOLD)
                ),
            )
        if step.cancellation_status is not None:
            add(
                CANCEL,
                source.to.itself(
                    internal=True,
                    event=CANCEL,
                    cond=_lifecycle_is(Lifecycle.RUNNING, Lifecycle.ON_HOLD),
                ),
            )

    unknown_sources = {t.from_step for t in definition.transitions} - set(states)
    if unknown_sources:
        raise DefinitionError(
            f"{where}: transitions leave unknown step(s) "
            f"{', '.join(map(repr, sorted(unknown_sources)))}.",
            workflow=definition.name,
        )
    if condition_errors:
        details = "; ".join(f"transition {e.transition!r}: {e}" for e in condition_errors)
        raise DefinitionError(
            f"{where} has conditions that do not compile: {details}",
            workflow=definition.name,
            problems=condition_errors,
        )

    attrs: dict[str, Any] = {
        "__module__": __name__,
        "definition": definition,
        "state_ids": state_ids,
        "step_names": {state_id: name for name, state_id in state_ids.items()},
        "conditions": conditions,
        **{state_ids[name]: state for name, state in states.items()},
        **events,
    }
    machine = StateMachineMetaclass(class_name_for(definition), (WorkflowMachine,), attrs)
    return machine  # type: ignore[return-value]


def _state(step: StepDefinition, state_id: str) -> State:
    # The value is the safe id too: python-statemachine refuses values that shadow
    # machine attributes (a step called "model"), so names are labels only.
    return State(
        name=step.name,
        value=state_id,
        initial=step.is_initial,
        final=step.is_final,
    )
