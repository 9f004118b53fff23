"""What a condition sees: ``context_data`` and the five names django-steps gives it.

Beside the keys of ``context_data`` every condition may read ``object`` (the attached
object's declared fields), ``status`` (the status being set), ``actor`` (``null`` or
the user making the change), ``instance`` (the instance's id, step, status, start and
when its step was entered) and ``now`` (the time of the change).
:func:`condition_context` builds that mapping for the runner, :func:`explain` and the
testing helpers alike; only the names a step's conditions read are built, so a
workflow that reads none of them loads nothing. :class:`Surroundings` carries the
values (or the functions that build them on first use) from the caller: the engine
fills it from the database, the testing helpers from plain values.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from typing import Any

from ..cel.variables import RESERVED_NAMES
from ..exceptions import ContextError

#: The keys of ``actor``.
ACTOR_KEYS = ("id", "username", "groups", "is_staff", "is_superuser")
#: The keys of ``instance``.
INSTANCE_KEYS = (
    "id",
    "step",
    "status",
    "started_at",
    "step_entered_at",
    "due_at",
    "actors",
    "assignee",
)

__all__ = [
    "ACTOR_KEYS",
    "INSTANCE_KEYS",
    "RESERVED_NAMES",
    "Surroundings",
    "check_reserved_keys",
    "condition_context",
]


class Surroundings:
    """The values of ``object``, ``actor``, ``instance`` and ``now`` for one change.

    ``object`` is a mapping of the object's declared fields, ``actor`` a mapping with
    :data:`ACTOR_KEYS` or ``None``, ``instance`` a mapping of the instance's stored
    values (``id``, ``started_at``, ``step_entered_at``, ``due_at``, ``actors``,
    ``assignee``; the step and status come from the machine state). Each may instead be
    a function of no arguments building it: it is then called when a condition first
    reads the name, and only once. ``now`` is
    the time of the change (default: the time the context is built).

    ``has_perm`` answers whether the actor holds a Django permission; ``None`` means
    there is no actor, so every status rule refuses. ``system`` says the actor is
    :data:`~django_steps.actors.SYSTEM`, which passes every status rule.
    """

    __slots__ = ("_built", "_given", "has_perm", "now", "system")

    def __init__(
        self,
        *,
        object: Any = None,
        actor: Any = None,
        instance: Any = None,
        now: datetime.datetime | None = None,
        has_perm: Callable[[str], bool] | None = None,
        system: bool = False,
    ):
        self._given = {"object": object, "actor": actor, "instance": instance}
        self._built: dict[str, Any] = {}
        self.now = now
        self.has_perm = has_perm
        self.system = system

    def permits(self, permission: str) -> bool:
        """Whether the actor holds ``permission`` (never, without ``has_perm``)."""
        return self.has_perm is not None and bool(self.has_perm(permission))

    def value(self, name: str) -> Any:
        """The value of ``object``, ``actor`` or ``instance``, built on first use if lazy."""
        if name in self._built:
            return self._built[name]
        found = self._given[name]
        value = found() if callable(found) else found
        self._built[name] = value
        return value


NO_SURROUNDINGS = Surroundings()


def check_reserved_keys(context_data: Mapping[str, Any] | None) -> None:
    """Refuse ``context_data`` that uses one of :data:`RESERVED_NAMES` as a top-level key.

    Raises :class:`~django_steps.exceptions.ContextError` naming the key.
    """
    if not isinstance(context_data, Mapping) or RESERVED_NAMES.isdisjoint(context_data):
        return
    for name in sorted(RESERVED_NAMES):
        if name in context_data:
            raise ContextError(
                f"context_data cannot have the key {name!r}: conditions get {name!r} from "
                f"django-steps ({', '.join(sorted(RESERVED_NAMES))} are reserved). Rename the "
                "key, or read the value django-steps gives.",
                path=name,
            )


def condition_context(
    context_data: Mapping[str, Any] | None,
    *,
    reads: frozenset[str],
    status: str,
    step: str | None,
    current_status: str | None,
    surroundings: Surroundings | None,
) -> Mapping[str, Any] | None:
    """The mapping conditions are evaluated against: ``context_data`` plus what they read.

    ``reads`` are the reserved names the conditions read (see
    :func:`~django_steps.cel.variables.reserved_names_read`); the others are not
    built. ``status`` is the status being set, ``step`` and ``current_status`` where the
    instance is. With nothing to add, ``context_data`` itself is returned.
    """
    if not reads:
        return context_data
    given = surroundings or NO_SURROUNDINGS
    context: dict[str, Any] = dict(context_data or {})
    if "object" in reads:
        context["object"] = given.value("object") or {}
    if "status" in reads:
        context["status"] = status
    if "actor" in reads:
        context["actor"] = given.value("actor")
    if "instance" in reads:
        stored = given.value("instance") or {}
        context["instance"] = {
            "id": stored.get("id"),
            "step": step,
            "status": current_status,
            "started_at": stored.get("started_at"),
            "step_entered_at": stored.get("step_entered_at"),
            "due_at": stored.get("due_at"),
            "actors": dict(stored.get("actors") or {}),
            "assignee": stored.get("assignee"),
        }
    if "now" in reads:
        context["now"] = given.now or datetime.datetime.now(datetime.timezone.utc)
    return context
