"""Compile a :class:`WorkflowDefinition` into a python-statemachine class.

A definition is validated first (:func:`~django_steps.machines.validation.validate_definition`):
one with errors is refused with the validator's problems, so every path that runs a
workflow (the services, the testing helpers, introspection, the admin) refuses the
same definitions with the same problem codes.

Internal: use :func:`django_steps.machines.compile_workflow` and
:class:`django_steps.machines.WorkflowRunner`.

States are the steps (initial and final flags carried over, the step name as label,
a safe id as id and value; :class:`StepBinding` maps it to the step name the bound
object holds). Completing a step is the ``complete`` event, the machine's only one:
its transitions are the workflow's transitions from that step in priority order,
each guarded by its compiled CEL condition. Holding, resuming and cancelling change
the status and lifecycle, never the step, and are allowed at final steps too, which
python-statemachine keeps terminal: the
:class:`~django_steps.machines.runner.WorkflowRunner` implements them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from statemachine import State, StateMachine
from statemachine.factory import StateMachineMetaclass

from ..cel import DEFAULT_LIMITS, CelLimits, CompiledCondition, compile_condition
from ..exceptions import ConditionEvaluationError
from .definition import StepDefinition, TransitionDefinition, WorkflowDefinition
from .flat_engine import DIRECT_ARGUMENTS, FlatMachineEngine, FlatShape
from .lifecycle import Lifecycle
from .validation import Problem, raise_for_errors, validate_definition

COMPLETE = "complete"


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
    transition raises ``TransitionNotAllowed``. The definition is validated before
    it is compiled, so python-statemachine's own graph checks are off: they would
    refuse, with a less helpful message, definitions that validation reports better.
    Compiled machines are flat, and run on
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


def compile_workflow(
    definition: WorkflowDefinition,
    *,
    backend: str = "celpy",
    limits: CelLimits = DEFAULT_LIMITS,
    problems: Sequence[Problem] | None = None,
) -> type[WorkflowMachine]:
    """Build the machine class of a workflow definition.

    The definition is validated with ``backend`` and ``limits`` first; a definition
    with errors raises :class:`~django_steps.exceptions.DefinitionError` whose
    ``problems`` list every problem (the codes of
    :func:`~django_steps.machines.validation.validate_definition`). Warnings do not
    stop it. ``problems`` is for a caller that has just validated this definition
    with the same backend and limits (the compiled-workflow cache, which also checks
    rows): it is used instead of validating again. The definition is never modified.
    """
    if problems is None:
        problems = validate_definition(definition, backend=backend, limits=limits)
    raise_for_errors(definition.name, problems)

    taken: set[str] = {COMPLETE}
    state_ids = {step.name: state_id_for(step.name, taken) for step in definition.steps}
    states = {step.name: _state(step, state_ids[step.name]) for step in definition.steps}

    conditions: dict[TransitionDefinition, CompiledCondition | None] = {}
    events: dict[str, Any] = {}
    for step in definition.steps:
        source = states[step.name]
        for transition in definition.transitions_from(step.name):
            guard: Callable[..., bool]
            if transition.condition.strip():
                # Validation compiled it already: this is a hit in compile_condition's cache.
                compiled = compile_condition(transition.condition, backend=backend, limits=limits)
                conditions[transition] = compiled
                guard = _condition_guard(definition, transition, compiled)
            else:
                conditions[transition] = None
                guard = _always(transition)
            edge = source.to(states[transition.to_step], event=COMPLETE, cond=guard)
            events[COMPLETE] = events[COMPLETE] | edge if COMPLETE in events else edge

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
