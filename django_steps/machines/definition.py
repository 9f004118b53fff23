"""Plain, immutable workflow definitions, independent of the database.

A :class:`WorkflowDefinition` is what the compiler, the runner, the diagrams and
the testing helpers work on. It is built from database rows by
:func:`django_steps._engine.loading.definition_from_db` or from a plain dict by
:meth:`WorkflowDefinition.from_dict` (the same shape as the export format).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ..exceptions import DefinitionError


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
    """A step of a workflow with its statuses."""

    name: str
    order: int = 0
    is_initial: bool = False
    is_final: bool = False
    statuses: tuple[StatusDefinition, ...] = ()
    description: str = ""
    id: Any = None
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
        return self.name or f"{self.from_step} -> {self.to_step}"


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
        """The definition as plain data (the export format; ids are left out)."""
        return {
            "name": self.name,
            "description": self.description,
            **({"model": self.model} if self.model else {}),
            "context_variables": dict(self.context_variables),
            "steps": [
                {
                    "name": step.name,
                    "description": step.description,
                    "order": step.order,
                    "initial": step.is_initial,
                    "final": step.is_final,
                    **({"assignee_group": step.assignee_group} if step.assignee_group else {}),
                    "statuses": [
                        {
                            "name": status.name,
                            "description": status.description,
                            "default": status.is_default,
                            "completion": status.is_completion,
                            "cancellation": status.is_cancellation,
                            "on_hold": status.is_on_hold,
                            **({"permission": status.permission} if status.permission else {}),
                            **(
                                {"actor_condition": status.actor_condition}
                                if status.actor_condition
                                else {}
                            ),
                        }
                        for status in step.statuses
                    ],
                }
                for step in self.steps
            ],
            "transitions": [
                {
                    "name": transition.name,
                    "from": transition.from_step,
                    "to": transition.to_step,
                    "condition": transition.condition,
                    "priority": transition.priority,
                    "description": transition.description,
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


_WORKFLOW_KEYS = {
    "name",
    "description",
    "model",
    "context_variables",
    "steps",
    "transitions",
    "version",
}
_STEP_KEYS = {"name", "description", "order", "initial", "final", "assignee_group", "statuses"}
_STATUS_KEYS = {
    "name",
    "description",
    "default",
    "completion",
    "cancellation",
    "on_hold",
    "permission",
    "actor_condition",
}
_TRANSITION_KEYS = {"name", "from", "to", "condition", "priority", "description"}


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
        description=_optional_str(data, "description", where),
        order=_int(data, "order", where, 0),
        is_initial=_bool(data, "initial", where),
        is_final=_bool(data, "final", where),
        assignee_group=_optional_str(data, "assignee_group", where),
        statuses=statuses,
    )


def _status_from_dict(data: Mapping[str, Any], where: str) -> StatusDefinition:
    name = _required_str(data, "name", where)
    where = f"{where.rsplit(', ', 1)[0]}, status {name!r}"
    _reject_unknown(data, _STATUS_KEYS, where)
    return StatusDefinition(
        name=name,
        description=_optional_str(data, "description", where),
        is_default=_bool(data, "default", where),
        is_completion=_bool(data, "completion", where),
        is_cancellation=_bool(data, "cancellation", where),
        is_on_hold=_bool(data, "on_hold", where),
        permission=_optional_str(data, "permission", where),
        actor_condition=_optional_str(data, "actor_condition", where),
    )


def _transition_from_dict(data: Mapping[str, Any], where: str) -> TransitionDefinition:
    _reject_unknown(data, _TRANSITION_KEYS, where)
    return TransitionDefinition(
        from_step=_required_str(data, "from", where),
        to_step=_required_str(data, "to", where),
        condition=_optional_str(data, "condition", where),
        priority=_int(data, "priority", where, 0),
        name=_optional_str(data, "name", where),
        description=_optional_str(data, "description", where),
    )
