"""Explain what setting a status would do: every outgoing condition's result, changing nothing.

:func:`explain_status` evaluates *every* outgoing transition of a step in the order
the engine tries them (higher priority first), records each condition's result or
error without stopping at errors, and asks the :class:`WorkflowRunner` itself, on a
copy of the state, what the update would do. The verdict is therefore the engine's
own: the first passing transition is taken unless a condition before it fails to
evaluate, in which case the update is refused (conditions fail closed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..exceptions import ConditionEvaluationError, StepsError
from .context import Surroundings
from .definition import TransitionDefinition
from .lifecycle import ChangeKind, Lifecycle
from .runner import Change, MachineState, WorkflowRunner

__all__ = [
    "ConditionCheck",
    "Explanation",
    "completion_status_of",
    "explain_status",
]


@dataclass(frozen=True)
class ConditionCheck:
    """One outgoing transition with its condition's result (``None``) or its error.

    ``reached`` tells whether the engine would evaluate it at all (it stops at the
    first passing condition or the first error); ``taken`` whether it is the
    transition the update would follow.
    """

    position: int
    transition: TransitionDefinition
    result: bool | None
    error: str | None = None
    reached: bool = True
    taken: bool = False

    @property
    def condition_text(self) -> str:
        return self.transition.condition.strip() or "(always)"

    @property
    def result_text(self) -> str:
        if self.error is not None:
            return "ERROR"
        if self.result is None:
            return "not evaluated"
        return "true" if self.result else "false"

    def __str__(self) -> str:
        text = (
            f"{self.position}. {self.transition.label} (priority {self.transition.priority}): "
            f"{self.condition_text} -> {self.result_text}"
        )
        if self.error is not None:
            text += f" ({self.error})"
        if self.taken:
            text += "  <- taken"
        elif not self.reached:
            text += "  (not reached)"
        return text


@dataclass(frozen=True)
class RuleCheck:
    """Whether the actor passes the rule of one status of the step.

    ``rule`` is what the status asks (``"permission app.codename"``,
    ``"actor_condition <text>"`` or both, ``""`` when it has no rule), ``reason`` why
    the actor fails it (``""`` when allowed).
    """

    status: str
    rule: str
    allowed: bool
    reason: str = ""

    def __str__(self) -> str:
        if not self.rule:
            return f"{self.status}: no rule"
        verdict = "allowed" if self.allowed else f"refused: {self.reason}"
        return f"{self.status}: {self.rule} -> {verdict}"


def rule_checks(
    runner: WorkflowRunner, state: MachineState, surroundings: Surroundings | None
) -> tuple[RuleCheck, ...]:
    """The :class:`RuleCheck` of each status of the current step, in step order."""
    step = runner.step_of(state)
    checks = []
    for status in step.statuses:
        rule = " and ".join(
            part
            for part in (
                f"permission {status.permission}" if status.permission else "",
                f"actor_condition {status.actor_condition}"
                if status.actor_condition.strip()
                else "",
            )
            if part
        )
        refusal = runner.rule_refusal(state, status, surroundings)
        checks.append(RuleCheck(status.name, rule, refusal is None, refusal[1] if refusal else ""))
    return tuple(checks)


@dataclass(frozen=True)
class Explanation:
    """What setting ``status`` at ``step`` with ``context`` would do, and why.

    ``checks`` lists every outgoing transition of the step in the order tried.
    ``changes`` are the history events the update would record (empty when it
    would change nothing or be refused). ``refused`` is the engine's message when
    the update would be refused, else ``None``.
    """

    workflow: str
    step: str
    current_status: str | None
    lifecycle: Lifecycle
    status: str | None
    context: Mapping[str, Any] | None
    checks: tuple[ConditionCheck, ...]
    changes: tuple[Change, ...]
    refused: str | None = None
    refused_by: type[StepsError] | None = None
    #: For each status of the step, whether the actor passes its rule and why not.
    rules: tuple[RuleCheck, ...] = ()

    @property
    def allowed(self) -> bool:
        """Whether the update would be accepted."""
        return self.refused is None

    @property
    def taken(self) -> TransitionDefinition | None:
        """The transition the update would follow, if it moves to another step."""
        return next((check.transition for check in self.checks if check.taken), None)

    @property
    def next_step(self) -> str | None:
        """The step the instance would be at afterwards (``None`` when refused)."""
        if not self.allowed:
            return None
        return self.changes[-1].to_step if self.changes else self.step

    @property
    def next_status(self) -> str | None:
        """The status the instance would have afterwards (``None`` when refused)."""
        if not self.allowed:
            return None
        return self.changes[-1].to_status if self.changes else self.current_status

    @property
    def completes_workflow(self) -> bool:
        return any(change.kind is ChangeKind.COMPLETED for change in self.changes)

    @property
    def verdict(self) -> str:
        """One sentence saying what the update would do."""
        if self.refused is not None:
            return f"The update would be refused: {self.refused}"
        if not self.changes:
            return f"Nothing would change: {self.status!r} is already the status."
        taken = self.taken
        if taken is not None:
            text = (
                f"Transition {taken.label!r} would be taken: the instance moves to step "
                f"{self.next_step!r} with status {self.next_status!r}"
            )
        else:
            text = f"The status would become {self.next_status!r} at step {self.step!r}"
        kinds = {change.kind for change in self.changes}
        if ChangeKind.COMPLETED in kinds:
            text += " and the workflow completes"
        elif ChangeKind.HELD in kinds:
            text += " and the instance is put on hold"
        elif ChangeKind.CANCELLED in kinds:
            text += " and the instance is cancelled"
        return text + "."

    def table(self) -> str:
        """The checks as an aligned text table, one row per transition, in order tried."""
        header = ("#", "transition", "to", "priority", "condition", "result", "")
        rows = [header]
        for check in self.checks:
            note = "taken" if check.taken else ("not reached" if not check.reached else "")
            result = check.result_text
            if check.error is not None:
                result = f"ERROR: {check.error}"
            rows.append(
                (
                    str(check.position),
                    check.transition.label,
                    check.transition.to_step,
                    str(check.transition.priority),
                    check.condition_text,
                    result,
                    note,
                )
            )
        widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
        return "\n".join(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in rows
        )

    def __str__(self) -> str:
        status = f"status {self.status!r}" if self.status else "no status"
        lines = [
            f"Workflow {self.workflow!r}, step {self.step!r} (status {self.current_status!r}, "
            f"{self.lifecycle.value}): setting {status}",
        ]
        if self.checks:
            lines += ["", self.table(), ""]
        else:
            lines.append("The step has no outgoing transitions.")
        lines.append(self.verdict)
        guarded = [check for check in self.rules if check.rule]
        if guarded:
            lines += ["Status rules for this actor:", *(f"  {check}" for check in guarded)]
        return "\n".join(lines)


def completion_status_of(runner: WorkflowRunner, step_name: str) -> str | None:
    """The name of the step's first completion status, or ``None``."""
    step = runner.definition.get_step(step_name)
    return next((status.name for status in step.statuses if status.is_completion), None)


def explain_status(
    runner: WorkflowRunner,
    state: MachineState,
    context: Mapping[str, Any] | None,
    status: str | None = None,
    surroundings: Surroundings | None = None,
) -> Explanation:
    """Explain setting ``status`` (default: the step's first completion status) on ``state``.

    Never changes ``state``. Every outgoing transition of the current step is
    evaluated against ``context`` and the names built from ``surroundings`` (the same
    context the runner builds) and reported; the verdict comes from running the
    runner on a copy of ``state``.
    """
    definition = runner.definition
    step = runner.step_of(state)
    if status is None:
        status = completion_status_of(runner, step.name)
    outgoing = definition.transitions_from(step.name)
    results = _evaluate_all(runner, state, status or "", outgoing, context, surroundings)

    changes: tuple[Change, ...] = ()
    refused: str | None = None
    refused_by: type[StepsError] | None = None
    taken_index: int | None = None
    reached = 0
    if status is None:
        refused = (
            f"Workflow {definition.name!r}: step {step.name!r} has no completion status, "
            "so it cannot be completed."
        )
    else:
        try:
            outcome = runner.set_status(replace(state), status, context, surroundings)
        except StepsError as error:
            refused, refused_by = str(error), type(error)
            reached = len(getattr(error, "evaluations", ()))
        else:
            changes = tuple(outcome.changes)
            reached = len(outcome.evaluations)
            if any(change.kind is ChangeKind.STEP_CHANGED for change in changes):
                taken_index = reached - 1
    checks = tuple(
        ConditionCheck(
            position=index + 1,
            transition=transition,
            result=result,
            error=error,
            reached=index < reached,
            taken=index == taken_index,
        )
        for index, (transition, result, error) in enumerate(results)
    )
    return Explanation(
        workflow=definition.name,
        step=step.name,
        current_status=state.status,
        lifecycle=state.lifecycle,
        status=status,
        context=context,
        checks=checks,
        changes=changes,
        refused=refused,
        refused_by=refused_by,
        rules=rule_checks(runner, state, surroundings),
    )


def _evaluate_all(
    runner: WorkflowRunner,
    state: MachineState,
    status: str,
    transitions: tuple[TransitionDefinition, ...],
    context: Mapping[str, Any] | None,
    surroundings: Surroundings | None,
) -> list[tuple[TransitionDefinition, bool | None, str | None]]:
    try:
        activation = runner.condition_values(state, status, context, surroundings)
    except StepsError as error:
        return [(transition, None, f"context rejected: {error}") for transition in transitions]
    conditions = runner.machine_class.conditions
    results: list[tuple[TransitionDefinition, bool | None, str | None]] = []
    for transition in transitions:
        compiled = conditions.get(transition)
        if compiled is None:
            results.append((transition, True, None))
            continue
        try:
            results.append((transition, compiled.evaluate(activation), None))
        except ConditionEvaluationError as error:
            results.append((transition, None, str(error)))
    return results
