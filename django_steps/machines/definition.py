"""Plain, immutable workflow definitions, independent of the database.

A :class:`WorkflowDefinition` is what the compiler, the runner, the diagrams and
the testing helpers work on. It is built from database rows by
:func:`django_steps._engine.loading.definition_from_db` or from a plain dict by
:meth:`WorkflowDefinition.from_dict` (the same shape as the export format).

:data:`STEP_FIELDS`, :data:`STATUS_FIELDS` and :data:`TRANSITION_FIELDS` are the one
mapping between a definition's attributes, the model fields of its rows and the keys
of the export format; loading, import, export and the test factories all use them.
The fields whose values each layer holds differently are declared beside them but
converted by their own code: :data:`TRANSITION_STEPS` (step names, or foreign keys in
rows) and :data:`STEP_DEADLINE_FIELDS` (a step's ``due_after`` and
``timeout_status``).
:func:`transition_name` is the one place that names an unnamed transition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import Any

from ..exceptions import DefinitionError

__all__ = [
    "StatusDefinition",
    "StepDefinition",
    "TransitionDefinition",
    "WorkflowDefinition",
]


@dataclass(frozen=True)
class DefinitionField:
    """One field of a step, status or transition, as each layer calls it.

    ``attribute`` is the attribute of the definition dataclass, ``model_field`` the
    field of the model row, ``key`` the key in the export format; ``kind`` (``str``,
    ``bool`` or ``int``; ``timedelta`` for a step's ``due_after``) and ``default`` are
    the type and value when the key is left out. The ``name`` of each item is not
    listed: it is ``name`` everywhere and is what rows are matched by. With
    ``omit_default`` the key is written to an export only when the value differs from
    ``default``, so files written before the field existed re-export unchanged.
    """

    attribute: str
    model_field: str
    key: str
    kind: type
    default: Any
    omit_default: bool = False


STEP_FIELDS = (
    DefinitionField("description", "description", "description", str, ""),
    DefinitionField("order", "order", "order", int, 0),
    DefinitionField("is_initial", "is_initial_step", "initial", bool, False),
    DefinitionField("is_final", "is_final_step", "final", bool, False),
)
"""The fields of a step (its statuses aside)."""

STATUS_FIELDS = (
    DefinitionField("description", "description", "description", str, ""),
    DefinitionField("is_default", "is_default_status", "default", bool, False),
    DefinitionField("is_completion", "is_completion_status", "completion", bool, False),
    DefinitionField("is_cancellation", "is_cancellation_status", "cancellation", bool, False),
    DefinitionField("is_on_hold", "is_on_hold_status", "on_hold", bool, False),
    DefinitionField("permission", "permission", "permission", str, "", omit_default=True),
    DefinitionField(
        "actor_condition", "actor_condition", "actor_condition", str, "", omit_default=True
    ),
)
"""The fields of a status."""

TRANSITION_STEPS = (
    DefinitionField("from_step", "from_step", "from", str, ""),
    DefinitionField("to_step", "to_step", "to", str, ""),
)
"""The steps a transition joins: step names in definitions and files, foreign keys in rows."""

STEP_DEADLINE_FIELDS = (
    DefinitionField("due_after", "due_after", "due_after", timedelta, None),
    DefinitionField("timeout_status", "timeout_status", "timeout_status", str, None),
)
"""A step's deadline, converted specially rather than as the plain :data:`STEP_FIELDS`.

``due_after`` is a ``timedelta`` in definitions and rows and a number of seconds in
files; ``timeout_status`` is a status name in definitions and files and a foreign key
to one of the step's statuses in rows. Both keys are exported only when set, so files
of steps without deadlines read as they always have.
"""

TRANSITION_FIELDS = (
    DefinitionField("condition", "condition", "condition", str, ""),
    DefinitionField("priority", "priority", "priority", int, 0),
    DefinitionField("description", "description", "description", str, ""),
)
"""The fields of a transition besides the steps it joins."""


def model_values(fields: Sequence[DefinitionField], item: Any) -> dict[str, Any]:
    """The model field values of a definition's step, status or transition."""
    return {f.model_field: getattr(item, f.attribute) for f in fields}


def definition_values(fields: Sequence[DefinitionField], row: Any) -> dict[str, Any]:
    """The definition attribute values of a model row (a step, status or transition)."""
    return {f.attribute: getattr(row, f.model_field) for f in fields}


def transition_name(from_step: str, to_step: str, number: int = 1) -> str:
    """The name of an unnamed transition: ``From -> To``; ``From -> To (2)`` for number 2."""
    name = f"{from_step} -> {to_step}"
    return name if number == 1 else f"{name} ({number})"


@dataclass(frozen=True)
class StatusDefinition:
    """A status a step can have."""

    name: str
    is_default: bool = False
    is_completion: bool = False
    is_cancellation: bool = False
    is_on_hold: bool = False
    description: str = ""
    id: Any = None
    #: The Django permission (``"app_label.codename"``) an actor needs to set it.
    permission: str = ""
    #: A CEL expression the actor must satisfy to set it.
    actor_condition: str = ""

    @property
    def has_rule(self) -> bool:
        """Whether setting this status needs an actor allowed by a permission or condition."""
        return bool(self.permission or self.actor_condition.strip())

    @property
    def kind(self) -> str:
        """``completion``, ``cancellation``, ``on_hold`` or ``plain``."""
        if self.is_completion:
            return "completion"
        if self.is_cancellation:
            return "cancellation"
        if self.is_on_hold:
            return "on_hold"
        return "plain"


@dataclass(frozen=True)
class StepDefinition:
    """A step of a workflow with its statuses.

    ``due_after`` and ``timeout_status`` (the name of one of the step's own statuses)
    come together: an instance still at the step ``due_after`` after entering it is
    given ``timeout_status`` by the timer sweep (see :mod:`.deadlines`).
    """

    name: str
    order: int = 0
    is_initial: bool = False
    is_final: bool = False
    statuses: tuple[StatusDefinition, ...] = ()
    description: str = ""
    id: Any = None
    due_after: timedelta | None = None
    timeout_status: str | None = None
    #: The name of the auth group responsible for instances at this step (``""``: none).
    assignee_group: str = ""

    def status(self, name: str) -> StatusDefinition | None:
        """The status called ``name``, or ``None``."""
        for status in self.statuses:
            if status.name == name:
                return status
        return None

    @property
    def default_status(self) -> StatusDefinition | None:
        return next((s for s in self.statuses if s.is_default), None)

    @property
    def cancellation_status(self) -> StatusDefinition | None:
        return next((s for s in self.statuses if s.is_cancellation), None)

    @property
    def on_hold_status(self) -> StatusDefinition | None:
        return next((s for s in self.statuses if s.is_on_hold), None)

    @property
    def has_deadline(self) -> bool:
        """Whether instances entering this step get a due time."""
        return bool(self.due_after) and bool(self.timeout_status)


@dataclass(frozen=True)
class TransitionDefinition:
    """A move from one step to another, guarded by a CEL condition (empty: always)."""

    from_step: str
    to_step: str
    condition: str = ""
    priority: int = 0
    name: str = ""
    description: str = ""
    id: Any = None

    @property
    def label(self) -> str:
        """The transition's name, or ``From -> To`` when it has none."""
        return self.name or transition_name(self.from_step, self.to_step)


@dataclass(frozen=True)
class WorkflowDefinition:
    """A whole workflow: steps (in order), their statuses, and transitions.

    ``transitions`` keep their creation order; :meth:`transitions_from` sorts them
    into the order they are tried (higher priority first, ties by creation order).
    ``version`` changes whenever the stored definition changes. ``model`` is the
    label (``"app_label.ModelName"``) of the model the workflow is for, ``""`` for any.
    """

    name: str
    steps: tuple[StepDefinition, ...] = ()
    transitions: tuple[TransitionDefinition, ...] = ()
    description: str = ""
    context_variables: Mapping[str, str] = field(default_factory=dict)
    version: int = 1
    id: Any = None
    model: str = ""

    def __hash__(self) -> int:
        return hash((self.name, self.id, self.version, self.steps, self.transitions))

    @cached_property
    def _steps_by_name(self) -> dict[str, StepDefinition]:
        return {step.name: step for step in self.steps}

    def step(self, name: str) -> StepDefinition | None:
        """The step called ``name``, or ``None``."""
        return self._steps_by_name.get(name)

    def get_step(self, name: str) -> StepDefinition:
        """The step called ``name``; :class:`DefinitionError` naming it when missing."""
        step = self.step(name)
        if step is None:
            raise DefinitionError(
                f"Workflow {self.name!r} has no step {name!r}.", workflow=self.name
            )
        return step

    @property
    def initial_step(self) -> StepDefinition | None:
        return next((s for s in self.steps if s.is_initial), None)

    @property
    def final_steps(self) -> tuple[StepDefinition, ...]:
        return tuple(s for s in self.steps if s.is_final)

    def transitions_from(self, step_name: str) -> tuple[TransitionDefinition, ...]:
        """Outgoing transitions of a step in the order they are tried."""
        return self._ordered_transitions.get(step_name, ())

    @cached_property
    def _ordered_transitions(self) -> dict[str, tuple[TransitionDefinition, ...]]:
        by_step: dict[str, list[tuple[int, int, TransitionDefinition]]] = {}
        for position, transition in enumerate(self.transitions):
            by_step.setdefault(transition.from_step, []).append(
                (-transition.priority, position, transition)
            )
        return {
            name: tuple(t for _, _, t in sorted(items, key=lambda item: item[:2]))
            for name, items in by_step.items()
        }

    # --- plain data ------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The definition as plain data (the export format; ids are left out).

        A step's ``due_after`` (in seconds), ``timeout_status`` and ``assignee_group``,
        and a status's ``permission`` and ``actor_condition``, appear only when set, so
        files of workflows without them read as they always have.
        """
        return {
            "name": self.name,
            "description": self.description,
            **({"model": self.model} if self.model else {}),
            "context_variables": dict(self.context_variables),
            "steps": [
                {
                    "name": step.name,
                    **_export_values(STEP_FIELDS, step),
                    **_deadline_dict(step),
                    **({"assignee_group": step.assignee_group} if step.assignee_group else {}),
                    "statuses": [
                        {"name": status.name, **_export_values(STATUS_FIELDS, status)}
                        for status in step.statuses
                    ],
                }
                for step in self.steps
            ],
            "transitions": [
                {
                    "name": transition.name,
                    **_export_values(TRANSITION_STEPS + TRANSITION_FIELDS, transition),
                }
                for transition in self.transitions
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WorkflowDefinition:
        """Build a definition from plain data (the export format).

        Unknown keys and wrong types raise :class:`DefinitionError` naming the
        place at fault. The mapping is not modified.
        """
        if not isinstance(data, Mapping):
            raise DefinitionError("A workflow definition must be a mapping.")
        name = _required_str(data, "name", "workflow")
        where = f"workflow {name!r}"
        _reject_unknown(data, _WORKFLOW_KEYS, where)
        steps = tuple(
            _step_from_dict(item, f"{where}, step #{index + 1}")
            for index, item in enumerate(_list(data, "steps", where))
        )
        transitions = tuple(
            _transition_from_dict(item, f"{where}, transition #{index + 1}")
            for index, item in enumerate(_list(data, "transitions", where))
        )
        variables = data.get("context_variables") or {}
        if not isinstance(variables, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in variables.items()
        ):
            raise DefinitionError(
                f"{where}: 'context_variables' must map variable names to type names.",
                workflow=name,
            )
        return cls(
            name=name,
            description=_optional_str(data, "description", where),
            steps=steps,
            transitions=transitions,
            context_variables=dict(variables),
            version=int(data.get("version", 1)),
            model=_optional_str(data, "model", where),
        )


def _deadline_dict(step: StepDefinition) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if step.due_after is not None:
        seconds = step.due_after.total_seconds()
        data["due_after"] = int(seconds) if seconds.is_integer() else seconds
    if step.timeout_status is not None:
        data["timeout_status"] = step.timeout_status
    return data


_WORKFLOW_KEYS = {
    "name",
    "description",
    "model",
    "context_variables",
    "steps",
    "transitions",
    "version",
}
_STEP_KEYS = {
    "name",
    "statuses",
    *(f.key for f in STEP_DEADLINE_FIELDS),
    "assignee_group",
    *(f.key for f in STEP_FIELDS),
}
_STATUS_KEYS = {"name", *(f.key for f in STATUS_FIELDS)}
_TRANSITION_KEYS = {"name", *(f.key for f in TRANSITION_STEPS + TRANSITION_FIELDS)}


def _export_values(fields: Sequence[DefinitionField], item: Any) -> dict[str, Any]:
    values = ((f, getattr(item, f.attribute)) for f in fields)
    return {f.key: value for f, value in values if not (f.omit_default and value == f.default)}


def _reject_unknown(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise DefinitionError(
            f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; "
            f"expected some of {', '.join(sorted(allowed))}."
        )


def _required_str(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise DefinitionError(f"{where}: {key!r} must be a non-empty string.")
    return value


def _optional_str(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DefinitionError(f"{where}: {key!r} must be a string.")
    return value


def _bool(data: Mapping[str, Any], key: str, where: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise DefinitionError(f"{where}: {key!r} must be true or false.")
    return value


def _int(data: Mapping[str, Any], key: str, where: str, default: int) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise DefinitionError(f"{where}: {key!r} must be an integer.")
    return value


def _list(data: Mapping[str, Any], key: str, where: str) -> Sequence[Mapping[str, Any]]:
    value = data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        raise DefinitionError(f"{where}: {key!r} must be a list of mappings.")
    return value


def _parsed_values(
    fields: Sequence[DefinitionField], data: Mapping[str, Any], where: str
) -> dict[str, Any]:
    """The definition attribute values of an exported item, each checked for its type."""
    values: dict[str, Any] = {}
    for f in fields:
        if f.kind is bool:
            values[f.attribute] = _bool(data, f.key, where)
        elif f.kind is int:
            values[f.attribute] = _int(data, f.key, where, f.default)
        else:
            values[f.attribute] = _optional_str(data, f.key, where)
    return values


def _step_from_dict(data: Mapping[str, Any], where: str) -> StepDefinition:
    name = _required_str(data, "name", where)
    where = f"{where.rsplit(', ', 1)[0]}, step {name!r}"
    _reject_unknown(data, _STEP_KEYS, where)
    statuses = tuple(
        _status_from_dict(item, f"{where}, status #{index + 1}")
        for index, item in enumerate(_list(data, "statuses", where))
    )
    return StepDefinition(
        name=name,
        assignee_group=_optional_str(data, "assignee_group", where),
        statuses=statuses,
        due_after=_duration(data, "due_after", where),
        timeout_status=_optional_str(data, "timeout_status", where) or None,
        **_parsed_values(STEP_FIELDS, data, where),
    )


def _duration(data: Mapping[str, Any], key: str, where: str) -> timedelta | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DefinitionError(f"{where}: {key!r} must be a number of seconds.")
    return timedelta(seconds=value)


def _status_from_dict(data: Mapping[str, Any], where: str) -> StatusDefinition:
    name = _required_str(data, "name", where)
    where = f"{where.rsplit(', ', 1)[0]}, status {name!r}"
    _reject_unknown(data, _STATUS_KEYS, where)
    return StatusDefinition(name=name, **_parsed_values(STATUS_FIELDS, data, where))


def _transition_from_dict(data: Mapping[str, Any], where: str) -> TransitionDefinition:
    _reject_unknown(data, _TRANSITION_KEYS, where)
    steps: dict[str, Any] = {
        f.attribute: _required_str(data, f.key, where) for f in TRANSITION_STEPS
    }
    return TransitionDefinition(
        name=_optional_str(data, "name", where),
        **steps,
        **_parsed_values(TRANSITION_FIELDS, data, where),
    )
