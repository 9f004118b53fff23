"""The values conditions see of a stored instance: its object, the actor, the instance.

:func:`surroundings_for` is what every database surface (the services, the strict
engine, ``explain``, ``describe_instance``, the admin) gives the runner; the runner
builds the context from it with
:func:`django_steps.machines.context.condition_context`, reading only the names a
step's conditions use, so the object is loaded only when a condition reads
``object`` (one query, none when the caller's instance already holds it).

Internal (see :mod:`django_steps._engine`).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from typing import Any

from django.db import models

from ..actors import is_system
from ..conf import object_fields_for
from ..exceptions import ContextError
from ..machines.context import Surroundings
from ..models import WorkflowInstance


def object_values(obj: models.Model | None) -> dict[str, Any]:
    """What conditions see as ``object``: ``pk`` and the fields ``obj``'s model declares.

    A model declares them with a method ``workflow_context(self) -> dict`` or in
    ``DJANGO_STEPS["OBJECT_FIELDS"]``; a foreign key gives the related object's key.
    Undeclared fields are never read. ``None`` (the object was deleted) gives ``{}``.
    """
    if obj is None:
        return {}
    method = getattr(obj, "workflow_context", None)
    if callable(method):
        declared = method()
        if not isinstance(declared, Mapping):
            raise ContextError(
                f"{type(obj).__name__}.workflow_context() must return a dict, not "
                f"{type(declared).__name__}.",
                path="object",
            )
        return {"pk": obj.pk, **declared}
    values: dict[str, Any] = {"pk": obj.pk}
    meta = obj._meta
    for name in object_fields_for(type(obj)):
        values[name] = meta.get_field(name).value_from_object(obj)  # type: ignore[union-attr]
    return values


def actor_values(actor: Any) -> dict[str, Any] | None:
    """What conditions see as ``actor``: ``None``, or its id, username, group names and flags.

    An anonymous user is no actor. The group names cost one query unless the user's
    groups are prefetched.
    """
    if actor is None or not getattr(actor, "is_authenticated", True):
        return None
    get_username = getattr(actor, "get_username", None)
    groups = getattr(actor, "groups", None)
    return {
        "id": getattr(actor, "pk", None),
        "username": get_username() if callable(get_username) else "",
        "groups": sorted(group.name for group in groups.all()) if groups is not None else [],
        "is_staff": bool(getattr(actor, "is_staff", False)),
        "is_superuser": bool(getattr(actor, "is_superuser", False)),
    }


def instance_values(instance: WorkflowInstance) -> dict[str, Any]:
    """The stored values of ``instance`` (its step and status come from the machine state)."""
    return {
        "id": instance.pk,
        "started_at": instance.started_at,
        "step_entered_at": instance.step_entered_at,
        "due_at": instance.due_at,
        "actors": instance.actors or {},
        "assignee": instance.assignee_id,
    }


_CONTENT_OBJECT = WorkflowInstance._meta.get_field("content_object")


def content_object_of(instance: WorkflowInstance, *others: WorkflowInstance) -> Any:
    """The instance's object: the one already loaded on ``instance`` or ``others``, else loaded.

    A cached object counts only if it is the instance's own (same model and key).
    Loading costs one query (the content type comes from Django's cache).
    """
    for candidate in (instance, *others):
        if _CONTENT_OBJECT.is_cached(candidate):
            obj = _CONTENT_OBJECT.get_cached_value(candidate)
            if (
                obj is not None
                and candidate.content_type_id == instance.content_type_id
                and str(obj.pk) == instance.object_id
            ):
                return obj
    return instance.content_object


def surroundings_for(
    instance: WorkflowInstance,
    *,
    actor: Any = None,
    now: datetime.datetime | None = None,
    loaded: WorkflowInstance | None = None,
) -> Surroundings:
    """The values of ``object``, ``actor``, ``instance`` and ``now`` for a change of ``instance``.

    Nothing is read until a condition uses the name. ``loaded`` is another Python
    object of the same instance (the caller's, when ``instance`` is the locked row)
    whose already loaded object is used instead of a query.
    """
    others = (loaded,) if loaded is not None else ()
    return Surroundings(
        object=lambda: object_values(content_object_of(instance, *others)),
        actor=lambda: actor_values(actor),
        instance=lambda: instance_values(instance),
        now=now,
        has_perm=(
            None
            if actor is None or not getattr(actor, "is_authenticated", True)
            else lambda permission: actor_may(
                actor, permission, lambda: content_object_of(instance, *others)
            )
        ),
        system=is_system(actor),
    )


def actor_may(actor: Any, permission: str, content_object: Callable[[], Any]) -> bool:
    """``actor.has_perm(permission)``, else ``actor.has_perm(permission, content_object())``.

    The object is loaded (one query, unless already loaded) only when the model-wide
    check fails, so object-level backends (django-guardian, django-rules) are asked
    with it.
    """
    has_perm = getattr(actor, "has_perm", None)
    if not callable(has_perm):
        return False
    if has_perm(permission):
        return True
    obj = content_object()
    return obj is not None and bool(has_perm(permission, obj))
