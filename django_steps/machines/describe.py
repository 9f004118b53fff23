"""Describe a workflow definition, and what a machine state allows now, with no database.

:func:`describe_definition` lists a workflow's machine class, steps, statuses and
transitions (in the order they are tried). :func:`describe_state` tells which
statuses an instance may take now and whether it can be held, resumed or
cancelled. Both ask the :class:`WorkflowRunner` rather than restating its rules:
each operation is tried on a copy of the state and the runner's answer (or its
refusal message) is reported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from ..exceptions import (
    ContextError,
    NoTransitionAvailable,
    StepsError,
    TransitionConditionError,
)
from .compiler import WorkflowMachine
from .context import Surroundings
from .definition import StatusDefinition, StepDefinition, TransitionDefinition, WorkflowDefinition
from .explain import RuleCheck, rule_checks
from .lifecycle import ChangeKind, Lifecycle
from .runner import MachineState, Outcome, WorkflowRunner

__all__ = [
    "Permission",
    "StateDescription",
    "StatusOption",
    "StepDescription",
    "WorkflowDescription",
    "describe_definition",
    "describe_state",
]


@dataclass(frozen=True)
class StepDescription:
    """A step with its statuses and its outgoing transitions in the order tried."""

    step: StepDefinition
    transitions: tuple[TransitionDefinition, ...]

    @property
    def name(self) -> str:
        return self.step.name

    @property
    def statuses(self) -> tuple[StatusDefinition, ...]:
        return self.step.statuses

    def __str__(self) -> str:
        flags = [
            flag
            for flag, on in (("initial", self.step.is_initial), ("final", self.step.is_final))
            if on
        ]
        if self.step.assignee_group:
            flags.append(f"group {self.step.assignee_group}")
        lines = [f"{self.name}" + (f" ({', '.join(flags)})" if flags else "")]
        for status in self.statuses:
            marks = ["default"] if status.is_default else []
            if status.kind != "plain":
                marks.append(status.kind.replace("_", "-"))
            if status.permission:
                marks.append(f"permission {status.permission}")
            if status.actor_condition.strip():
                marks.append(f"actor condition {' '.join(status.actor_condition.split())}")
            lines.append(f"  status {status.name}" + (f" [{', '.join(marks)}]" if marks else ""))
        for position, transition in enumerate(self.transitions, start=1):
            condition = transition.condition.strip() or "(always)"
            lines.append(
                f"  {position}. -> {transition.to_step} if {condition} "
                f"(priority {transition.priority}, {transition.label!r})"
            )
        return "\n".join(lines)


@dataclass(frozen=True)
class WorkflowDescription:
    """A workflow: its compiled machine class and its steps, in order."""

    definition: WorkflowDefinition
    machine_class: type[WorkflowMachine]
    steps: tuple[StepDescription, ...]

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def transitions(self) -> tuple[TransitionDefinition, ...]:
        """Every transition, grouped by step, each group in the order tried."""
        return tuple(t for step in self.steps for t in step.transitions)

    def step(self, name: str) -> StepDescription:
        """The description of step ``name``; ``DefinitionError`` naming it when missing."""
        self.definition.get_step(name)
        return next(step for step in self.steps if step.name == name)

    def __str__(self) -> str:
        header = f"Workflow {self.name!r} (version {self.definition.version})"
        if self.definition.context_variables:
            variables = ", ".join(
                f"{name}: {kind}" for name, kind in self.definition.context_variables.items()
            )
            header += f"; context variables: {variables}"
        return "\n".join([header, *(str(step) for step in self.steps)])


def describe_definition(runner: WorkflowRunner) -> WorkflowDescription:
    """Describe the workflow a runner drives."""
    definition = runner.definition
    return WorkflowDescription(
        definition=definition,
        machine_class=runner.machine_class,
        steps=tuple(
            StepDescription(step=step, transitions=definition.transitions_from(step.name))
            for step in definition.steps
        ),
    )


@dataclass(frozen=True)
class Permission:
    """Whether an operation is allowed now; ``reason`` is the runner's refusal, if any."""

    allowed: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.allowed

    def __str__(self) -> str:
        return "yes" if self.allowed else f"no: {self.reason}"


@dataclass(frozen=True)
class StatusOption:
    """A status of the current step: whether it may be set now and what setting it does."""

    status: StatusDefinition
    allowed: bool
    effect: str
    reason: str = ""

    @property
    def name(self) -> str:
        return self.status.name

    def __str__(self) -> str:
        if self.allowed:
            return f"{self.name}: {self.effect}"
        return f"{self.name}: not allowed ({self.reason})"


@dataclass(frozen=True)
class StateDescription:
    """What an instance in ``step``/``status``/``lifecycle`` may do now."""

    workflow: str
    step: str
    status: str | None
    lifecycle: Lifecycle
    statuses: tuple[StatusOption, ...]
    can_hold: Permission
    can_resume: Permission
    can_cancel: Permission
    #: For each status of the step, whether the actor passes its rule and why not.
    rules: tuple[RuleCheck, ...] = ()

    @property
    def allowed_statuses(self) -> list[str]:
        """Names of the statuses that may be set now (the current one included)."""
        return [option.name for option in self.statuses if option.allowed]

    def __str__(self) -> str:
        lines = [
            f"Workflow {self.workflow!r}: step {self.step!r}, status {self.status!r}, "
            f"{self.lifecycle.value}",
            "Statuses:",
            *(f"  {option}" for option in self.statuses),
            f"Hold: {self.can_hold}",
            f"Resume: {self.can_resume}",
            f"Cancel: {self.can_cancel}",
        ]
        guarded = [check for check in self.rules if check.rule]
        if guarded:
            lines += ["Status rules for this actor:", *(f"  {check}" for check in guarded)]
        return "\n".join(lines)


def describe_state(
    runner: WorkflowRunner, state: MachineState, surroundings: Surroundings | None = None
) -> StateDescription:
    """Tell what ``state`` allows now; ``state`` is not changed.

    Conditions see ``surroundings`` (the object, actor... of the instance), as when
    the status is set.
    """
    step = runner.step_of(state)
    return StateDescription(
        workflow=runner.definition.name,
        step=step.name,
        status=state.status,
        lifecycle=state.lifecycle,
        statuses=tuple(
            _status_option(runner, state, step, status, surroundings) for status in step.statuses
        ),
        can_hold=_permission(runner.hold, state, surroundings),
        can_resume=_permission(runner.resume, state, surroundings),
        can_cancel=_permission(runner.cancel, state, surroundings),
        rules=rule_checks(runner, state, surroundings),
    )


def _permission(
    operation: Callable[[MachineState, Surroundings | None], Outcome],
    state: MachineState,
    surroundings: Surroundings | None,
) -> Permission:
    try:
        operation(replace(state), surroundings)
    except StepsError as error:
        return Permission(False, str(error))
    return Permission(True)


def _status_option(
    runner: WorkflowRunner,
    state: MachineState,
    step: StepDefinition,
    status: StatusDefinition,
    surroundings: Surroundings | None,
) -> StatusOption:
    conditional = any(t.condition.strip() for t in runner.definition.transitions_from(step.name))
    try:
        outcome = runner.set_status(replace(state), status.name, None, surroundings)
    except (NoTransitionAvailable, TransitionConditionError, ContextError) as error:
        # The rules accept the status; only the conditions (i.e. context_data) decide.
        if runner.definition.transitions_from(step.name):
            return StatusOption(status, True, _CONDITIONAL_EFFECT)
        return StatusOption(status, False, "", str(error))
    except StepsError as error:
        return StatusOption(status, False, "", str(error))
    kinds = set(outcome.kinds)
    if not kinds:
        effect = "no change (it is the current status)"
    elif ChangeKind.STEP_CHANGED in kinds and conditional:
        effect = _CONDITIONAL_EFFECT
    elif ChangeKind.STEP_CHANGED in kinds:
        effect = f"completes the step and moves to {outcome.changes[-1].to_step!r}"
        if ChangeKind.COMPLETED in kinds:
            effect += ", completing the workflow"
    elif ChangeKind.COMPLETED in kinds:
        effect = "completes the workflow"
    elif ChangeKind.HELD in kinds:
        effect = "puts the instance on hold"
    elif ChangeKind.CANCELLED in kinds:
        effect = "cancels the instance"
    else:
        effect = "sets the status"
    return StatusOption(status, True, effect)


_CONDITIONAL_EFFECT = (
    "completes the step; the next step depends on the conditions and context_data (see explain)"
)
