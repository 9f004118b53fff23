"""Validate a workflow definition and report every problem, with no database.

:func:`validate_definition` returns a list of :class:`Problem` s: errors (the
definition cannot be run) and warnings (it runs, but probably not as meant). It is
the one set of definition rules: the compiler refuses a definition it reports errors
for (so do the services, the testing helpers, introspection and import, which all
compile through it), the admin and the ``steps_check`` command report its problems
(through :func:`django_steps.validation.validate_workflow` for stored workflows),
and the models' ``clean()`` methods call its per-row rules (:func:`status_kinds`,
:func:`conflicting_kinds`, :func:`default_status_ends_step`,
:func:`final_step_transitions`, :func:`condition_issues`) to word the same rules
for a form.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
from collections import Counter, defaultdict, deque
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from ..cel import DEFAULT_LIMITS, CelLimits, compile_condition
from ..cel.safety import parse_tree
from ..cel.variables import (
    RESERVED_NAMES,
    KeyReference,
    VariableReference,
    compared_literals,
    declaration_errors,
    key_references,
    variable_references,
)
from ..exceptions import ConditionError, ConditionSyntaxError, DefinitionError
from .context import ACTOR_KEYS, INSTANCE_KEYS
from .definition import (
    StatusDefinition,
    StepDefinition,
    TransitionDefinition,
    WorkflowDefinition,
)

__all__ = [
    "ERROR",
    "WARNING",
    "ConditionIssue",
    "Problem",
    "condition_issues",
    "condition_variables",
    "ensure_valid_definition",
    "errors_of",
    "raise_for_errors",
    "undeclared_message",
    "undeclared_variables",
    "validate_definition",
]

ERROR = "error"
WARNING = "warning"

T = TypeVar("T")


@dataclass(frozen=True)
class Problem:
    """One problem of a workflow definition.

    ``severity`` is ``"error"`` or ``"warning"``; ``code`` a stable identifier (e.g.
    ``"no_initial_step"``); ``message`` a sentence naming the workflow and the thing
    at fault. The location is ``kind`` (``workflow``, ``step``, ``status`` or
    ``transition``) and ``name``, with ``step`` naming a status's step, ``field`` the
    model field at fault (e.g. ``"condition"``) and ``line``/``column`` (1-based) the
    place in a condition. ``id`` is the definition object's id (the database primary
    key for stored workflows) and ``obj`` the row, when known.
    """

    severity: str
    code: str
    message: str
    workflow: str
    kind: str
    name: str
    step: str = ""
    field: str = ""
    line: int | None = None
    column: int | None = None
    id: Any = dataclasses.field(default=None, compare=False)
    obj: Any = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def __str__(self) -> str:
        return f"{self.severity}: {self.message} [{self.code}]"


def errors_of(problems: Iterable[Problem]) -> list[Problem]:
    """The problems that are errors."""
    return [problem for problem in problems if problem.is_error]


def ensure_valid_definition(
    definition: WorkflowDefinition,
    *,
    backend: str = "celpy",
    limits: CelLimits = DEFAULT_LIMITS,
) -> list[Problem]:
    """Validate ``definition``; raise :class:`DefinitionError` if it has errors.

    Returns the warnings otherwise. The error's ``problems`` lists every problem.
    """
    problems = validate_definition(definition, backend=backend, limits=limits)
    raise_for_errors(definition.name, problems)
    return problems


def raise_for_errors(workflow: str, problems: Sequence[Problem]) -> None:
    """Raise :class:`DefinitionError` listing the errors among ``problems``, if any."""
    errors = errors_of(problems)
    if errors:
        details = " ".join(problem.message for problem in errors)
        raise DefinitionError(
            f"Workflow {workflow!r} has {len(errors)} error(s): {details}",
            workflow=workflow,
            problems=problems,
        )


def validate_definition(
    definition: WorkflowDefinition,
    *,
    backend: str = "celpy",
    limits: CelLimits = DEFAULT_LIMITS,
    object_fields: Collection[str] | None = None,
) -> list[Problem]:
    """Every problem of ``definition``, errors and warnings, in definition order.

    Conditions are compiled with ``backend`` and ``limits``, so a condition that
    would be refused at run time is reported here with its line and column.
    ``object_fields`` are the keys of ``object`` when the workflow's model is known
    (``Workflow.content_type``): a condition reading another key is an error.
    """
    return _Validator(definition, backend, limits, object_fields).run()


@functools.lru_cache(maxsize=1024)
def condition_variables(expression: str) -> tuple[VariableReference, ...]:
    """The free variables of a condition that parses (cached per text)."""
    return tuple(variable_references(parse_tree(expression)))


def undeclared_variables(
    expression: str, declared: Iterable[str]
) -> list[tuple[VariableReference, list[str]]]:
    """References to undeclared variables, each with the declared names it resembles."""
    names = sorted(declared)
    seen: set[str] = set()
    found = []
    for reference in condition_variables(expression):
        if reference.name in names or reference.name in seen or reference.name in RESERVED_NAMES:
            continue
        seen.add(reference.name)
        found.append((reference, difflib.get_close_matches(reference.name, names, n=3)))
    return found


def undeclared_message(
    reference: VariableReference, suggestions: list[str], declared: Iterable[str]
) -> str:
    """``variable 'clam' (line 1, column 1) is not declared; did you mean 'claim'? ...``"""
    text = f"variable {reference.name!r}"
    if reference.line is not None:
        text += f" (line {reference.line}, column {reference.column})"
    text += " is not declared"
    if suggestions:
        text += "; did you mean " + " or ".join(repr(name) for name in suggestions) + "?"
    else:
        text += "."
    return f"{text} Declared variables: {', '.join(sorted(declared))}."


def _located(text: str, line: int | None, column: int | None) -> str:
    return f"{text} (line {line}, column {column})" if line is not None else text


def _suggest(name: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, known, n=3)
    return "; did you mean " + " or ".join(repr(c) for c in close) + "?" if close else "."


@functools.lru_cache(maxsize=1024)
def _reserved_reads(
    expression: str,
) -> tuple[tuple[KeyReference, ...], tuple[tuple[str, int | None, int | None], ...]]:
    """The keys a condition reads of the reserved names, and the strings ``status`` is
    compared with (cached per text; a text naming none of them is not parsed)."""
    if not any(name in expression for name in RESERVED_NAMES):
        return (), ()
    tree = parse_tree(expression)
    return tuple(key_references(tree)), tuple(compared_literals(tree, "status"))


def reserved_name_issues(
    expression: str,
    *,
    object_fields: Collection[str] | None = None,
    statuses: Collection[str] | None = None,
) -> list[ConditionIssue]:
    """Keys of ``actor``, ``instance`` (and ``object``) and ``status`` values that cannot be.

    ``actor`` and ``instance`` have fixed keys; ``object`` has ``object_fields`` when
    they are known; ``status`` compared with a string must name one of ``statuses``
    (the completion statuses of the transition's step), when given.
    """
    references, status_literals = _reserved_reads(expression)
    keys: dict[str, Sequence[str] | None] = {
        "actor": ACTOR_KEYS,
        "instance": INSTANCE_KEYS,
        "object": sorted(object_fields) if object_fields is not None else None,
    }
    issues = []
    for reference in references:
        known = keys.get(reference.name)
        if known is None or reference.key in known:
            continue
        where = _located(f"{reference.name}.{reference.key}", reference.line, reference.column)
        if reference.name == "object":
            explain = "is not a field the workflow's model declares for conditions"
        else:
            explain = f"is not a key of {reference.name}"
        issues.append(
            ConditionIssue(
                "unknown_key",
                f"{where} {explain}{_suggest(reference.key, known)} "
                f"Keys of {reference.name}: {', '.join(known)}.",
                reference.line,
                reference.column,
                reference.name,
            )
        )
    if statuses is not None:
        known_statuses = sorted(statuses)
        for value, line, column in status_literals:
            if value in known_statuses:
                continue
            where = _located(f"status is compared with {value!r}", line, column)
            issues.append(
                ConditionIssue(
                    "unknown_status",
                    f"{where}, which is not a completion status of the step, so it never "
                    f"matches{_suggest(value, known_statuses)} The step's completion "
                    f"statuses: {', '.join(repr(s) for s in known_statuses) or 'none'}.",
                    line,
                    column,
                    "status",
                )
            )
    return issues


@dataclass(frozen=True)
class ConditionIssue:
    """Why a condition text is refused.

    ``code`` is ``invalid_condition``, ``undeclared_variable``, ``unknown_key`` (a key of
    ``actor``, ``instance`` or ``object`` that is not there) or ``unknown_status``;
    ``variable`` names the reserved name at fault for the last two.
    """

    code: str
    message: str
    line: int | None = None
    column: int | None = None
    variable: str = ""


def condition_issues(
    condition: str,
    *,
    declared: Mapping[str, str] | None = None,
    backend: str = "celpy",
    limits: CelLimits = DEFAULT_LIMITS,
    object_fields: Collection[str] | None = None,
    statuses: Collection[str] | None = None,
) -> list[ConditionIssue]:
    """Why ``condition`` would be refused (empty list: it is fine; empty text always is).

    The condition is compiled with ``backend`` and ``limits`` (syntax, length, depth
    and safety rules); when ``declared`` names variables (and is itself valid), every
    variable the condition reads must be among them or the reserved names
    (``object``, ``status``, ``actor``, ``instance``, ``now``). The keys it reads of
    those are checked by :func:`reserved_name_issues`.
    """
    if not condition.strip():
        return []
    try:
        compile_condition(condition, backend=backend, limits=limits)
    except ConditionError as error:
        syntax = error if isinstance(error, ConditionSyntaxError) else None
        return [
            ConditionIssue(
                "invalid_condition",
                str(error),
                syntax.line if syntax else None,
                syntax.column if syntax else None,
            )
        ]
    issues = reserved_name_issues(condition, object_fields=object_fields, statuses=statuses)
    if not declared or declaration_errors(declared):
        return issues
    return [
        ConditionIssue(
            "undeclared_variable",
            undeclared_message(reference, suggestions, declared),
            reference.line,
            reference.column,
        )
        for reference, suggestions in undeclared_variables(condition, declared)
    ] + issues


def is_permission_name(permission: str) -> bool:
    """Whether ``permission`` has the form ``app_label.codename`` (one dot, no spaces)."""
    app_label, dot, codename = permission.partition(".")
    return bool(
        dot
        and app_label
        and codename
        and "." not in codename
        and not any(character.isspace() for character in permission)
    )


def completion_status_names(step: StepDefinition) -> list[str]:
    """The names of ``step``'s completion statuses: the values ``status`` has in its conditions."""
    return [status.name for status in step.statuses if status.is_completion]


# --- per-row rules ----------------------------------------------------------------------


def status_kinds(status: StatusDefinition) -> list[str]:
    """What ends or stops a step that a status is marked as, in this order:
    ``"completion"``, ``"cancellation"``, ``"on-hold"`` (empty for a plain status)."""
    return [
        label
        for flag, label in (
            (status.is_completion, "completion"),
            (status.is_cancellation, "cancellation"),
            (status.is_on_hold, "on-hold"),
        )
        if flag
    ]


def conflicting_kinds(status: StatusDefinition) -> list[str]:
    """The kinds of a status marked more than one of them (a status may be only one);
    empty when it is fine. The rule of ``conflicting_status_flags``."""
    kinds = status_kinds(status)
    return kinds if len(kinds) > 1 else []


def default_status_ends_step(step: StepDefinition, status: StatusDefinition) -> str | None:
    """The kind of a default status that would end or stop the non-final step it is
    the default of as soon as it is entered; ``None`` when it is fine. The rule of
    ``default_status_ends_step``."""
    if not status.is_default or step.is_final:
        return None
    kinds = status_kinds(status)
    return kinds[0] if kinds else None


def final_step_transitions(step: StepDefinition, outgoing: Sequence[T]) -> list[T]:
    """The transitions leaving ``step`` (given in any form) if it is final: a final
    step may have none. Empty when it is fine. The rule of ``final_step_has_transitions``."""
    return list(outgoing) if step.is_final else []


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Validator:
    def __init__(
        self,
        definition: WorkflowDefinition,
        backend: str,
        limits: CelLimits,
        object_fields: Collection[str] | None,
    ):
        self.object_fields = object_fields
        self.definition = definition
        self.backend = backend
        self.limits = limits
        self.where = f"Workflow {definition.name!r}"
        self.problems: list[Problem] = []

    def add(
        self,
        severity: str,
        code: str,
        message: str,
        kind: str,
        name: str,
        *,
        id: Any = None,
        **location: Any,
    ) -> None:
        self.problems.append(
            Problem(
                severity=severity,
                code=code,
                message=f"{self.where}: {message}",
                workflow=self.definition.name,
                kind=kind,
                name=name,
                id=id,
                **location,
            )
        )

    def run(self) -> list[Problem]:
        definition = self.definition
        for error in declaration_errors(definition.context_variables):
            self.add(
                ERROR,
                "invalid_context_variables",
                error,
                "workflow",
                definition.name,
                id=definition.id,
                field="context_variables",
            )
        if not definition.steps:
            self.add(
                ERROR,
                "no_steps",
                "it has no steps; add an initial step, a final step and transitions.",
                "workflow",
                definition.name,
                id=definition.id,
            )
            return self.problems
        self.check_steps()
        for step in definition.steps:
            self.check_statuses(step)
            self.check_deadline(step)
        known = self.check_transitions()
        self.check_priorities()
        self.check_completion_statuses()
        self.check_reachability(known)
        return self.problems

    # --- steps and statuses -----------------------------------------------------------

    def check_steps(self) -> None:
        definition = self.definition
        for name, count in Counter(step.name for step in definition.steps).items():
            if count > 1:
                self.add(
                    ERROR,
                    "duplicate_step_name",
                    f"{count} steps are called {name!r}; step names must be unique.",
                    "step",
                    name,
                    field="name",
                )
        initial = [step for step in definition.steps if step.is_initial]
        if not initial:
            self.add(
                ERROR,
                "no_initial_step",
                "it has no initial step; mark the step instances start at as initial.",
                "workflow",
                definition.name,
                id=definition.id,
            )
        elif len(initial) > 1:
            names = ", ".join(repr(step.name) for step in initial)
            for step in initial[1:]:
                self.add(
                    ERROR,
                    "multiple_initial_steps",
                    f"it has {len(initial)} initial steps ({names}); exactly one may be initial.",
                    "step",
                    step.name,
                    id=step.id,
                    field="is_initial_step",
                )
        if not definition.final_steps:
            self.add(
                ERROR,
                "no_final_step",
                "it has no final step, so no instance can ever complete; mark a step as final.",
                "workflow",
                definition.name,
                id=definition.id,
            )

    def check_statuses(self, step: StepDefinition) -> None:
        step_where = f"step {step.name!r}"
        for name, count in Counter(status.name for status in step.statuses).items():
            if count > 1:
                self.add(
                    ERROR,
                    "duplicate_status_name",
                    f"{step_where} has {count} statuses called {name!r}; status names must be "
                    "unique within a step.",
                    "status",
                    name,
                    step=step.name,
                    field="name",
                )
        defaults = [status for status in step.statuses if status.is_default]
        if not defaults:
            self.add(
                ERROR,
                "no_default_status",
                f"{step_where} has no default status; instances entering it need one.",
                "step",
                step.name,
                id=step.id,
            )
        elif len(defaults) > 1:
            names = ", ".join(repr(status.name) for status in defaults)
            for status in defaults[1:]:
                self.add(
                    ERROR,
                    "multiple_default_statuses",
                    f"{step_where} has {len(defaults)} default statuses ({names}); exactly one "
                    "may be the default.",
                    "status",
                    status.name,
                    id=status.id,
                    step=step.name,
                    field="is_default_status",
                )
        for status in step.statuses:
            status_where = f"{step_where}, status {status.name!r}"
            kinds = conflicting_kinds(status)
            if kinds:
                self.add(
                    ERROR,
                    "conflicting_status_flags",
                    f"{status_where} is marked {' and '.join(kinds)}; a status can be only one "
                    "of completion, cancellation or on-hold.",
                    "status",
                    status.name,
                    id=status.id,
                    step=step.name,
                )
            kind = default_status_ends_step(step, status)
            if kind is not None:
                self.add(
                    ERROR,
                    "default_status_ends_step",
                    f"{status_where} is the default status and a {kind} status; a non-final "
                    "step would be left (or stopped) as soon as it is entered. Make a plain "
                    "status the default.",
                    "status",
                    status.name,
                    id=status.id,
                    step=step.name,
                    field="is_default_status",
                )
        for status in step.statuses:
            self.check_rule(step, status)
        has_completion = any(status.is_completion for status in step.statuses)
        if step.is_final and not has_completion:
            self.add(
                WARNING,
                "final_step_cannot_complete",
                f"final {step_where} has no completion status, so instances that reach it "
                "never complete.",
                "step",
                step.name,
                id=step.id,
            )
        if not step.is_final and not has_completion:
            self.add(
                ERROR,
                "step_cannot_complete",
                f"{step_where} is not final and has no completion status, so instances can "
                "never leave it; add a completion status.",
                "step",
                step.name,
                id=step.id,
            )

    def check_deadline(self, step: StepDefinition) -> None:
        """``due_after`` and ``timeout_status`` come together, on a non-final step."""
        if step.due_after is None and step.timeout_status is None:
            return
        step_where = f"step {step.name!r}"
        if step.is_final:
            self.add(
                ERROR,
                "timeout_on_final_step",
                f"final {step_where} has a deadline (due after / timeout status); a final step "
                "ends the workflow, so nothing could time out there. Remove the deadline.",
                "step",
                step.name,
                id=step.id,
                field="timeout_status" if step.timeout_status is not None else "due_after",
            )
            return
        if step.due_after is not None and step.due_after.total_seconds() <= 0:
            self.add(
                ERROR,
                "due_after_not_positive",
                f"{step_where}: due after {step.due_after} is not a positive duration.",
                "step",
                step.name,
                id=step.id,
                field="due_after",
            )
        if step.timeout_status is None:
            self.add(
                ERROR,
                "due_without_timeout_status",
                f"{step_where} has a due time but no timeout status; choose the status "
                "(one of the step's own) that instances get when they are due.",
                "step",
                step.name,
                id=step.id,
                field="timeout_status",
            )
            return
        if step.due_after is None:
            self.add(
                ERROR,
                "timeout_status_without_due",
                f"{step_where} has timeout status {step.timeout_status!r} but no due after "
                "duration, so it would never time out; set due after or clear the status.",
                "step",
                step.name,
                id=step.id,
                field="due_after",
            )
        status = step.status(step.timeout_status)
        if status is None:
            known = ", ".join(repr(s.name) for s in step.statuses) or "none"
            self.add(
                ERROR,
                "unknown_timeout_status",
                f"{step_where}: timeout status {step.timeout_status!r} is not one of the "
                f"step's statuses ({known}).",
                "step",
                step.name,
                id=step.id,
                field="timeout_status",
            )
        elif status.is_default:
            self.add(
                WARNING,
                "timeout_status_is_default",
                f"{step_where}: timeout status {status.name!r} is the step's default status, "
                "which instances have from the moment they enter it; timing out changes "
                "nothing unless their status changed meanwhile.",
                "step",
                step.name,
                id=step.id,
                field="timeout_status",
            )

    def check_rule(self, step: StepDefinition, status: StatusDefinition) -> None:
        """A status's ``permission`` is ``app_label.codename``; its ``actor_condition``
        compiles and reads only names conditions may read (the permission's existence
        is checked against the database by :func:`django_steps.validation`)."""
        status_where = f"step {step.name!r}, status {status.name!r}"
        if status.permission and not is_permission_name(status.permission):
            self.add(
                ERROR,
                "invalid_permission",
                f"{status_where}: permission {status.permission!r} is not a permission name; "
                "write it as app_label.codename, e.g. purchasing.approve_order.",
                "status",
                status.name,
                id=status.id,
                step=step.name,
                field="permission",
            )
        if not status.actor_condition.strip():
            return
        where = f"{status_where}: actor condition {_shorten(status.actor_condition)!r}"
        for issue in condition_issues(
            status.actor_condition,
            declared=self.definition.context_variables,
            backend=self.backend,
            limits=self.limits,
            object_fields=self.object_fields,
            statuses=[status.name],
        ):
            self.add(
                ERROR,
                issue.code,
                f"{where}: {issue.message}",
                "status",
                status.name,
                id=status.id,
                step=step.name,
                field="actor_condition",
                line=issue.line,
                column=issue.column,
            )

    # --- transitions ------------------------------------------------------------------

    def check_transitions(self) -> list[TransitionDefinition]:
        """Check every transition; return those between known steps."""
        definition = self.definition
        known: list[TransitionDefinition] = []
        for transition in definition.transitions:
            valid = True
            for field_name, step_name in (
                ("from_step", transition.from_step),
                ("to_step", transition.to_step),
            ):
                if definition.step(step_name) is None:
                    valid = False
                    self.add(
                        ERROR,
                        "transition_unknown_step",
                        f"transition {transition.label!r} names step {step_name!r}, which is "
                        "not a step of this workflow.",
                        "transition",
                        transition.label,
                        id=transition.id,
                        field=field_name,
                    )
            if valid:
                known.append(transition)
            self.check_condition(transition)
        for step in definition.steps:
            outgoing = [t for t in known if t.from_step == step.name]
            leaving = final_step_transitions(step, outgoing)
            if leaving:
                self.add(
                    ERROR,
                    "final_step_has_transitions",
                    f"final step {step.name!r} has outgoing transitions "
                    f"({', '.join(repr(t.label) for t in leaving)}); a final step ends the "
                    "workflow. Remove them or unmark the step as final.",
                    "step",
                    step.name,
                    id=step.id,
                    field="is_final_step",
                )
            if not step.is_final and not outgoing:
                self.add(
                    ERROR,
                    "step_has_no_way_out",
                    f"step {step.name!r} is not final and has no outgoing transition, so "
                    "completing it always fails; add a transition from it or make it final.",
                    "step",
                    step.name,
                    id=step.id,
                )
        return known

    def check_condition(self, transition: TransitionDefinition) -> None:
        where = f"transition {transition.label!r}: condition {_shorten(transition.condition)!r}"
        step = self.definition.step(transition.from_step)
        for issue in condition_issues(
            transition.condition,
            declared=self.definition.context_variables,
            backend=self.backend,
            limits=self.limits,
            object_fields=self.object_fields,
            statuses=completion_status_names(step) if step is not None else None,
        ):
            self.add(
                ERROR,
                issue.code,
                f"{where}: {issue.message}",
                "transition",
                transition.label,
                id=transition.id,
                field="condition",
                line=issue.line,
                column=issue.column,
            )

    def check_priorities(self) -> None:
        definition = self.definition
        for step in definition.steps:
            ordered = definition.transitions_from(step.name)
            by_priority: dict[int, list[TransitionDefinition]] = defaultdict(list)
            for transition in ordered:
                if transition.condition.strip():
                    by_priority[transition.priority].append(transition)
            for priority, group in by_priority.items():
                if len(group) > 1:
                    names = ", ".join(repr(t.label) for t in group)
                    for transition in group[1:]:
                        self.add(
                            WARNING,
                            "same_priority",
                            f"conditional transitions {names} from step {step.name!r} share "
                            f"priority {priority}; they are tried in creation order. Give them "
                            "distinct priorities.",
                            "transition",
                            transition.label,
                            id=transition.id,
                            field="priority",
                        )
            unconditional = next((t for t in ordered if not t.condition.strip()), None)
            if unconditional is None:
                continue
            for transition in ordered[ordered.index(unconditional) + 1 :]:
                self.add(
                    WARNING,
                    "shadowed_transition",
                    f"transition {transition.label!r} is never taken: transition "
                    f"{unconditional.label!r} from step {step.name!r} has no condition and is "
                    "tried first. Give it a lower priority.",
                    "transition",
                    transition.label,
                    id=transition.id,
                    field="priority",
                )

    def check_completion_statuses(self) -> None:
        """Warn when several completion statuses of a step cannot route differently.

        They can only if a condition tried before the step's first unconditional
        transition reads ``status``; otherwise each of them takes the same transition.
        """
        definition = self.definition
        for step in definition.steps:
            completions = completion_status_names(step)
            ordered = definition.transitions_from(step.name)
            if len(completions) < 2 or not ordered or step.is_final:
                continue
            tried = []
            for transition in ordered:
                tried.append(transition)
                if not transition.condition.strip():
                    break
            if any(_reads_status(transition.condition) for transition in tried):
                continue
            names = " and ".join(repr(name) for name in completions)
            self.add(
                WARNING,
                "completion_statuses_alike",
                f"step {step.name!r} has completion statuses {names}, but no condition of its "
                "transitions reads status, so each of them leads through the same transition. "
                f"Route them with a condition such as status == {completions[-1]!r}, or keep "
                "one completion status.",
                "step",
                step.name,
                id=step.id,
            )

    # --- graph --------------------------------------------------------------------------

    def check_reachability(self, known: list[TransitionDefinition]) -> None:
        definition = self.definition
        forward: dict[str, set[str]] = defaultdict(set)
        backward: dict[str, set[str]] = defaultdict(set)
        for transition in known:
            forward[transition.from_step].add(transition.to_step)
            backward[transition.to_step].add(transition.from_step)
        initial = [step.name for step in definition.steps if step.is_initial]
        if len(initial) == 1:
            reachable = _closure(initial, forward)
            for step in definition.steps:
                if step.name not in reachable:
                    self.add(
                        ERROR,
                        "unreachable_step",
                        f"step {step.name!r} cannot be reached from the initial step "
                        f"{initial[0]!r}; add a transition to it or remove it.",
                        "step",
                        step.name,
                        id=step.id,
                    )
        finals = [step.name for step in definition.final_steps]
        if finals:
            can_finish = _closure(finals, backward)
            for step in definition.steps:
                if step.name not in can_finish:
                    self.add(
                        WARNING,
                        "no_path_to_final_step",
                        f"no final step can be reached from step {step.name!r}; instances "
                        "there can only be cancelled.",
                        "step",
                        step.name,
                        id=step.id,
                    )


def _reads_status(condition: str) -> bool:
    if not condition.strip():
        return False
    try:
        return any(reference.name == "status" for reference in condition_variables(condition))
    except ConditionError:
        return False  # reported as invalid_condition


def _closure(start: Iterable[str], edges: dict[str, set[str]]) -> set[str]:
    seen = set(start)
    queue = deque(seen)
    while queue:
        for target in edges.get(queue.popleft(), ()):
            if target not in seen:
                seen.add(target)
                queue.append(target)
    return seen
