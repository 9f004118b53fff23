"""Drive a workflow definition through its machine, with no database.

:class:`WorkflowRunner` applies the lifecycle rules (start, set a status, hold,
resume, cancel) to a :class:`MachineState` and reports what happened as an
:class:`Outcome`: the list of :class:`Change` s (one per history event) and the
conditions evaluated. The services run the same runner over a ``WorkflowInstance``
and persist the outcome; the testing helpers run it over a plain object. A refused
operation raises a :class:`~django_steps.exceptions.StepsError` and leaves the
state untouched.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from statemachine.exceptions import TransitionNotAllowed

from ..cel import DEFAULT_LIMITS, CelLimits, CompiledCondition, compile_condition, convert_context
from ..cel.variables import RESERVED_NAMES, check_declared_context, reserved_names_read
from ..exceptions import (
    ConditionEvaluationError,
    ContextError,
    DefinitionError,
    InstanceFinished,
    InvalidStatus,
    NoTransitionAvailable,
    OperationNotAllowed,
    PermissionDenied,
    TransitionConditionError,
)
from .compiler import COMPLETE, Evaluation, StepBinding, WorkflowMachine, compile_workflow
from .context import Surroundings, check_reserved_keys, condition_context
from .definition import StatusDefinition, StepDefinition, WorkflowDefinition
from .lifecycle import ChangeKind, Lifecycle

__all__ = [
    "Change",
    "MachineState",
    "Outcome",
    "WorkflowRunner",
]


@dataclass
class MachineState:
    """Where an instance is: the object a workflow machine is bound to.

    ``step`` is the machine's state field (the step name); ``status`` the current
    status name; ``status_before_hold`` what ``resume`` returns to.
    """

    step: str | None = None
    status: str | None = None
    lifecycle: Lifecycle = Lifecycle.RUNNING
    status_before_hold: str | None = None

    def __post_init__(self) -> None:
        self.lifecycle = Lifecycle(self.lifecycle)


class _Scratch:
    """The step and lifecycle a borrowed machine reads and moves during one transition."""

    __slots__ = ("lifecycle", "step")

    def __init__(self, step: str | None, lifecycle: Lifecycle):
        self.step = step
        self.lifecycle = lifecycle


#: An idle or borrowed machine: the machine, its binding and its bound ``complete`` event.
_Borrowed = tuple[WorkflowMachine, StepBinding, Any]


@dataclass(frozen=True)
class Change:
    """One event of an operation, from one (step, status) to another."""

    kind: ChangeKind
    from_step: str | None
    from_status: str | None
    to_step: str | None
    to_status: str | None


@dataclass
class Outcome:
    """What an operation did: its changes (empty when nothing changed) and evaluations."""

    changes: list[Change] = field(default_factory=list)
    evaluations: list[Evaluation] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    @property
    def kinds(self) -> list[ChangeKind]:
        return [change.kind for change in self.changes]

    @property
    def acted_at(self) -> str | None:
        """The step the operation was made at (``None`` for a start or no change): where
        ``instance.actors`` records the actor. The step a transition enters, and its
        completion when it is final, are the engine's doing, not the actor's."""
        if not self.changes or self.changes[0].kind is ChangeKind.STARTED:
            return None
        return self.changes[0].from_step


class WorkflowRunner:
    """Apply the workflow rules of one definition to machine states.

    Build it from a definition (validated and compiled here: one with errors raises
    :class:`~django_steps.exceptions.DefinitionError` listing the validator's
    problems) or from a class made by
    :func:`~django_steps.machines.compiler.compile_workflow`. Runners hold no
    per-instance state and are safe to share between threads.
    """

    def __init__(
        self,
        definition_or_machine: WorkflowDefinition | type[WorkflowMachine],
        *,
        backend: str = "celpy",
        limits: CelLimits = DEFAULT_LIMITS,
    ):
        if isinstance(definition_or_machine, WorkflowDefinition):
            machine = compile_workflow(definition_or_machine, backend=backend, limits=limits)
        else:
            machine = definition_or_machine
        self.machine_class: type[WorkflowMachine] = machine
        self.definition: WorkflowDefinition = machine.definition
        self.backend = backend
        self.limits = limits
        # The reserved names (object, status, actor...) each step's conditions read: only
        # those are built when the step is completed.
        reads: dict[str, frozenset[str]] = {}
        for transition, compiled in machine.conditions.items():
            if compiled is not None:
                names = reserved_names_read(transition.condition)
                reads[transition.from_step] = reads.get(transition.from_step, frozenset()) | names
        self.reads: Mapping[str, frozenset[str]] = reads
        # Each status's actor condition, compiled (validation has checked it compiles),
        # and the steps with a status rule: their changes always get surroundings.
        rules: dict[tuple[str, str], tuple[CompiledCondition, frozenset[str]]] = {}
        guarded: set[str] = set()
        for step in self.definition.steps:
            for status in step.statuses:
                if status.has_rule:
                    guarded.add(step.name)
                if status.actor_condition.strip():
                    rules[step.name, status.name] = (
                        compile_condition(status.actor_condition, backend=backend, limits=limits),
                        reserved_names_read(status.actor_condition),
                    )
        self._actor_conditions = rules
        #: The steps with a status that has a ``permission`` or ``actor_condition``.
        self.guarded: frozenset[str] = frozenset(guarded)
        # One idle machine per thread for completing steps (see _borrow_machine).
        self._idle = threading.local()

    # --- reading ------------------------------------------------------------------

    def machine(self, state: MachineState) -> WorkflowMachine:
        """A machine bound to ``state`` (for introspection; use the runner to change it).

        ``state`` may be any object with ``step`` (a step name) and ``lifecycle``.
        """
        machine_class = self.machine_class
        binding = StepBinding(state, machine_class.state_ids, machine_class.step_names)
        return machine_class(model=binding, state_field="state_id")

    def step_of(self, state: MachineState) -> StepDefinition:
        if state.step is None:
            raise DefinitionError(
                f"Workflow {self.definition.name!r}: the instance has no current step.",
                workflow=self.definition.name,
            )
        return self.definition.get_step(state.step)

    def default_status(self, step: StepDefinition) -> StatusDefinition:
        status = step.default_status
        if status is None:
            raise DefinitionError(
                f"Workflow {self.definition.name!r}: step {step.name!r} has no default status.",
                workflow=self.definition.name,
            )
        return status

    # --- operations -----------------------------------------------------------------

    def start(self) -> tuple[MachineState, Outcome]:
        """A new state at the initial step with its default status."""
        step = self.definition.initial_step
        if step is None:
            raise DefinitionError(
                f"Workflow {self.definition.name!r} has no initial step.",
                workflow=self.definition.name,
            )
        status = self.default_status(step)
        state = MachineState(step=step.name, status=status.name)
        outcome = Outcome([Change(ChangeKind.STARTED, None, None, step.name, status.name)])
        self._complete_if_done(state, step, status, outcome)
        return state, outcome

    def condition_values(
        self,
        state: MachineState,
        status: str,
        context: Mapping[str, Any] | None,
        surroundings: Surroundings | None = None,
    ) -> Any:
        """The converted context the current step's conditions see when ``status`` is set.

        ``context`` (``context_data``) plus the reserved names the step's conditions
        read, built from ``surroundings``; raises
        :class:`~django_steps.exceptions.ContextError` for unusable values (and, when
        the conditions read reserved names, for one used as a key of ``context``;
        :meth:`set_status` always refuses those).
        """
        reads = self.reads.get(state.step or "")
        if reads:  # else the context is context_data itself: nothing to build
            check_reserved_keys(context)
            context = condition_context(
                context,
                reads=reads,
                status=status,
                step=state.step,
                current_status=state.status,
                surroundings=surroundings,
            )
        return convert_context(context, backend=self.backend, limits=self.limits)

    def rule_refusal(
        self,
        state: MachineState,
        status: StatusDefinition,
        surroundings: Surroundings | None,
        context: Mapping[str, Any] | None = None,
    ) -> tuple[str, str] | None:
        """Why the actor may not set ``status`` at the current step: ``(rule, reason)``.

        ``None`` when the status has no rule, the actor is ``SYSTEM`` or the actor
        passes it: it holds the ``permission`` and the ``actor_condition`` is true.
        A rule with no actor refuses, and so does an ``actor_condition`` that cannot be
        evaluated (fail closed). ``rule`` is ``"permission <name>"`` or
        ``"actor_condition <text>"``.
        """
        if not status.has_rule or (surroundings is not None and surroundings.system):
            return None
        first_rule = (
            f"permission {status.permission}"
            if status.permission
            else f"actor_condition {status.actor_condition}"
        )
        # An actor comes with a way to ask for its permissions; checking for one builds
        # nothing (the actor's values, and their groups query, only for a condition).
        if surroundings is None or surroundings.has_perm is None:
            return first_rule, "no actor was given, and the status has a rule"
        if status.permission and not surroundings.permits(status.permission):
            return first_rule, f"the actor does not have the permission {status.permission!r}"
        compiled = self._actor_conditions.get((state.step or "", status.name))
        if compiled is None:
            return None
        program, reads = compiled
        rule = f"actor_condition {status.actor_condition}"
        try:
            values = condition_context(
                context if isinstance(context, Mapping) else None,
                reads=reads | {"actor"},
                status=status.name,
                step=state.step,
                current_status=state.status,
                surroundings=surroundings,
            )
            result = program.evaluate(
                convert_context(values, backend=self.backend, limits=self.limits)
            )
        except (ConditionEvaluationError, ContextError) as error:
            return rule, f"the actor condition could not be evaluated ({error}), so it refuses"
        if not result:
            return rule, "the actor condition is false for this actor"
        return None

    def check_rule(
        self,
        state: MachineState,
        step: StepDefinition,
        status: StatusDefinition,
        surroundings: Surroundings | None,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        """Raise :class:`~django_steps.exceptions.PermissionDenied` if the actor may not
        set ``status`` (see :meth:`rule_refusal`)."""
        refusal = self.rule_refusal(state, status, surroundings, context)
        if refusal is None:
            return
        rule, reason = refusal
        raise PermissionDenied(
            f"Workflow {self.definition.name!r}: status {status.name!r} of step {step.name!r} "
            f"cannot be set by this actor: {reason} (rule: {rule}). Nothing was changed.",
            step=step.name,
            status=status.name,
            rule=rule,
            reason=reason,
        )

    def status_options(
        self, state: MachineState, surroundings: Surroundings | None = None
    ) -> list[tuple[StatusDefinition, str]]:
        """Each status of the current step, in step order, with why it cannot be set now.

        The reason is ``""`` for a status the actor may set now: the instance is
        running (on hold, only a cancellation status), it is not the current status,
        the step has it and its rule lets the actor through (:meth:`rule_refusal`).
        Transition conditions are not tried: a completion status may still be refused
        by them when it is set.
        """
        if state.lifecycle.is_finished or state.step is None:
            return []
        step = self.step_of(state)
        options = []
        for status in step.statuses:
            if status.name == state.status:
                reason = "it is the current status"
            elif state.lifecycle is Lifecycle.ON_HOLD and not status.is_cancellation:
                reason = "the instance is on hold; only a cancellation status can be set"
            else:
                refusal = self.rule_refusal(state, status, surroundings)
                reason = f"{refusal[1]} (rule: {refusal[0]})" if refusal else ""
            options.append((status, reason))
        return options

    def set_status(
        self,
        state: MachineState,
        status_name: str,
        context: Mapping[str, Any] | None = None,
        surroundings: Surroundings | None = None,
    ) -> Outcome:
        """Give the current step the status ``status_name``; see the services' rules.

        Conditions see ``context`` and the reserved names (``object``, ``status``,
        ``actor``, ``instance``, ``now``) built from ``surroundings``; ``context`` with
        a reserved name as a key is refused with a ``ContextError``.
        """
        if context and isinstance(context, Mapping) and not RESERVED_NAMES.isdisjoint(context):
            check_reserved_keys(context)  # raises, naming the key
        self._require_unfinished(state, "set a status")
        step = self.step_of(state)
        status = step.status(status_name)
        if status is None:
            known = ", ".join(repr(s.name) for s in step.statuses) or "none"
            raise InvalidStatus(
                f"Workflow {self.definition.name!r}: step {step.name!r} has no status "
                f"{status_name!r} (its statuses: {known}).",
                step=step.name,
                status=status_name,
            )
        if context is not None and not (status.is_completion and not step.is_final):
            # Refuse unusable context even when no condition runs (a transition converts
            # it itself): it is stored in the history with the change.
            convert_context(context, backend=self.backend, limits=self.limits)
        if status.name == state.status:
            return Outcome()
        if state.lifecycle is Lifecycle.ON_HOLD and not status.is_cancellation:
            raise OperationNotAllowed(
                f"Workflow {self.definition.name!r}: the instance is on hold at step "
                f"{step.name!r}; resume it before setting status {status.name!r} "
                "(only a cancellation status is accepted while on hold).",
                operation="set_status",
            )
        if status.is_on_hold:
            return self.hold(state, surroundings)
        if status.is_cancellation:
            return self.cancel(state, surroundings)
        self.check_rule(state, step, status, surroundings, context)
        if self.definition.context_variables:
            context = check_declared_context(
                self.definition.context_variables, context, workflow=self.definition.name
            )
        if status.is_completion and not step.is_final:
            return self._take_transition(state, step, status, context, surroundings)

        kind = ChangeKind.COMPLETED if status.is_completion else ChangeKind.STATUS_CHANGED
        outcome = Outcome([Change(kind, step.name, state.status, step.name, status.name)])
        state.status = status.name
        if status.is_completion:
            state.lifecycle = Lifecycle.COMPLETED
        return outcome

    def hold(self, state: MachineState, surroundings: Surroundings | None = None) -> Outcome:
        """Put a running instance on hold with its step's on-hold status (and its rule)."""
        self._require_unfinished(state, "put on hold")
        step = self.step_of(state)
        if state.lifecycle is Lifecycle.ON_HOLD:
            raise OperationNotAllowed(
                f"Workflow {self.definition.name!r}: the instance is already on hold "
                f"at step {step.name!r}.",
                operation="hold",
            )
        status = step.on_hold_status
        if status is None:
            raise OperationNotAllowed(
                f"Workflow {self.definition.name!r}: step {step.name!r} has no on-hold status, "
                "so it cannot be put on hold.",
                operation="hold",
            )
        self.check_rule(state, step, status, surroundings)
        outcome = Outcome(
            [Change(ChangeKind.HELD, step.name, state.status, step.name, status.name)]
        )
        state.status_before_hold = state.status
        state.status = status.name
        state.lifecycle = Lifecycle.ON_HOLD
        return outcome

    def resume(self, state: MachineState, surroundings: Surroundings | None = None) -> Outcome:
        """Return an on-hold instance to the status it had before (or the default).

        Leaving hold takes the rule of the step's on-hold status: who may put the
        instance on hold may resume it.
        """
        self._require_unfinished(state, "resume")
        step = self.step_of(state)
        if state.lifecycle is not Lifecycle.ON_HOLD:
            raise OperationNotAllowed(
                f"Workflow {self.definition.name!r}: the instance is not on hold "
                f"(step {step.name!r}, status {state.status!r}).",
                operation="resume",
            )
        on_hold = step.on_hold_status
        if on_hold is not None:
            self.check_rule(state, step, on_hold, surroundings)
        previous = step.status(state.status_before_hold or "")
        if previous is None or previous.is_on_hold:
            previous = self.default_status(step)
        outcome = Outcome(
            [Change(ChangeKind.RESUMED, step.name, state.status, step.name, previous.name)]
        )
        state.status = previous.name
        state.status_before_hold = None
        state.lifecycle = Lifecycle.RUNNING
        return outcome

    def cancel(self, state: MachineState, surroundings: Surroundings | None = None) -> Outcome:
        """Cancel an unfinished instance with its step's cancellation status (and its rule)."""
        self._require_unfinished(state, "cancel")
        step = self.step_of(state)
        status = step.cancellation_status
        if status is None:
            raise OperationNotAllowed(
                f"Workflow {self.definition.name!r}: step {step.name!r} has no cancellation "
                "status, so it cannot be cancelled.",
                operation="cancel",
            )
        self.check_rule(state, step, status, surroundings)
        outcome = Outcome(
            [Change(ChangeKind.CANCELLED, step.name, state.status, step.name, status.name)]
        )
        state.status = status.name
        state.status_before_hold = None
        state.lifecycle = Lifecycle.CANCELLED
        return outcome

    def time_out(self, state: MachineState, surroundings: Surroundings | None = None) -> Outcome:
        """Give a running instance its step's timeout status, as the timer sweep does.

        The status is set by :meth:`set_status` (a completion status takes a
        transition, a cancellation status cancels, an on-hold status holds), with no
        ``context_data``; conditions see ``surroundings`` (the object, the system actor,
        the instance, the sweep's time). Refused
        (:class:`~django_steps.exceptions.OperationNotAllowed`) for a step without a
        timeout status and for an instance on hold, whose clock stops.
        """
        self._require_unfinished(state, "time out")
        step = self.step_of(state)
        if step.timeout_status is None:
            raise OperationNotAllowed(
                f"Workflow {self.definition.name!r}: step {step.name!r} has no timeout status, "
                "so it cannot time out.",
                operation="time_out",
            )
        if state.lifecycle is Lifecycle.ON_HOLD:
            raise OperationNotAllowed(
                f"Workflow {self.definition.name!r}: the instance is on hold at step "
                f"{step.name!r}, and its clock stops while on hold; it cannot time out.",
                operation="time_out",
            )
        return self.set_status(state, step.timeout_status, None, surroundings)

    # --- internals ------------------------------------------------------------------

    def _require_unfinished(self, state: MachineState, action: str) -> None:
        if state.lifecycle.is_finished:
            raise InstanceFinished(
                f"Workflow {self.definition.name!r}: cannot {action}; the instance is "
                f"{state.lifecycle.value} (step {state.step!r}, status {state.status!r})."
            )

    def _borrow_machine(self, state: Any) -> _Borrowed:
        """A machine bound to ``state``, reusing this thread's idle one when there is one.

        Building a python-statemachine instance registers every callback again (about
        as long as the transition itself), and the machine reads its current state from
        the binding on every event, so one machine per thread can serve every update:
        only its binding is pointed at the new state. It is taken out of the slot while
        in use and put back by :meth:`_give_back`; after an unexpected error it is
        dropped and the next call builds a new one. Its ``complete`` event is bound once
        with it.
        """
        idle: _Borrowed | None = getattr(self._idle, "machine", None)
        if idle is None:
            machine_class = self.machine_class
            binding = StepBinding(state, machine_class.state_ids, machine_class.step_names)
            machine = machine_class(model=binding, state_field="state_id")
            return machine, binding, getattr(machine, COMPLETE)
        self._idle.machine = None
        idle[1].state = state
        return idle

    def _give_back(self, borrowed: _Borrowed, *, restart: bool) -> None:
        """Make a borrowed machine this thread's idle one again.

        ``restart`` gives it a new engine first: python-statemachine stops an engine for
        good once its machine enters a final state, and an engine that raised out of an
        event is not trusted to be clean. The machine itself (its states, callbacks and
        binding) holds nothing of the event, and a new engine costs about a tenth of a
        new machine.
        """
        machine = borrowed[0]
        if restart:
            machine._engine = machine._get_engine()
        self._idle.machine = borrowed

    def _take_transition(
        self,
        state: MachineState,
        step: StepDefinition,
        status: StatusDefinition,
        context: Mapping[str, Any] | None,
        surroundings: Surroundings | None,
    ) -> Outcome:
        activation = self.condition_values(state, status.name, context, surroundings)
        # The machine moves a scratch copy, so a refusal leaves ``state`` untouched.
        work = _Scratch(state.step, state.lifecycle)
        evaluations: list[Evaluation] = []
        borrowed = self._borrow_machine(work)
        try:
            # The bound ``complete`` event: the same as machine.send(COMPLETE, ...).
            borrowed[2](activation=activation, evaluations=evaluations)
        except ConditionEvaluationError as error:
            self._give_back(borrowed, restart=True)
            raise TransitionConditionError(
                f"{error}. Nothing was changed.",
                step=step.name,
                evaluations=evaluations,
                error=error,
            ) from None
        except TransitionNotAllowed:
            self._give_back(borrowed, restart=True)
            # Validation ensures a non-final step has outgoing transitions.
            tried = "; ".join(
                f"{e.transition.label} [{e.transition.condition}] -> {e.result}"
                for e in evaluations
            )
            raise NoTransitionAvailable(
                f"Workflow {self.definition.name!r}: step {step.name!r} cannot be completed "
                f"with status {status.name!r}; no transition's condition passed: {tried}. "
                "Nothing was changed.",
                step=step.name,
                evaluations=evaluations,
            ) from None
        target = self.definition.get_step(work.step or "")
        self._give_back(borrowed, restart=target.is_final)
        target_status = self.default_status(target)
        outcome = Outcome(
            [
                Change(ChangeKind.STATUS_CHANGED, step.name, state.status, step.name, status.name),
                Change(
                    ChangeKind.STEP_CHANGED, step.name, status.name, target.name, target_status.name
                ),
            ],
            evaluations,
        )
        state.step = target.name
        state.status = target_status.name
        state.status_before_hold = None
        self._complete_if_done(state, target, target_status, outcome)
        return outcome

    def _complete_if_done(
        self, state: MachineState, step: StepDefinition, status: StatusDefinition, outcome: Outcome
    ) -> None:
        if step.is_final and status.is_completion:
            state.lifecycle = Lifecycle.COMPLETED
            outcome.changes.append(
                Change(ChangeKind.COMPLETED, step.name, status.name, step.name, status.name)
            )
