"""System checks on the ``DJANGO_STEPS`` settings.

Registered with Django's check framework under the tag ``django_steps``, so
``manage.py check`` reports them: ``django_steps.E001`` (not a dict), ``E002`` (unknown
key), ``E003`` (a limit that is not a positive integer), ``E004`` (unusable
``CEL_BACKEND``), ``E005`` (``OBJECT_FIELDS`` names an unknown model or field) and the
warnings ``W001`` (a ``CONDITION_MAX_DEPTH`` cel-python cannot honour) and ``W002`` (a
model declared by ``OBJECT_FIELDS`` that also has ``workflow_context()``), and ``E006``
(an ``ON_OBJECT_DELETE`` that is neither ``"cancel"`` nor ``"delete"``). The
documentation's system checks reference says how to fix each.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core import checks

from .cel import get_backend
from .cel.safety import MAX_TREE_DEPTH, TREE_LEVELS_PER_DEPTH
from .conf import DEFAULTS, steps_settings
from .exceptions import ConfigurationError

__all__ = [
    "check_settings",
]


@checks.register("django_steps")
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E001: not a dict; E002: unknown keys; E003: bad values; E004: backend;
    E006: ON_OBJECT_DELETE; W001: depth."""
    try:
        unknown = steps_settings.unknown_keys()
    except ConfigurationError as error:
        return [checks.Error(str(error), id="django_steps.E001")]
    messages: list[checks.CheckMessage] = []
    if unknown:
        messages.append(
            checks.Error(
                f"Unknown DJANGO_STEPS setting(s): {', '.join(unknown)}.",
                hint=f"Known settings: {', '.join(sorted(DEFAULTS))}.",
                id="django_steps.E002",
            )
        )
    for name in (
        "CONDITION_MAX_LENGTH",
        "CONDITION_MAX_DEPTH",
        "CONDITION_MAX_COMPREHENSIONS",
        "CONTEXT_MAX_BYTES",
        "CONTEXT_MAX_DEPTH",
        "MACHINE_CACHE_SIZE",
    ):
        value = getattr(steps_settings, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            messages.append(
                checks.Error(
                    f"DJANGO_STEPS[{name!r}] must be a positive integer, not {value!r}.",
                    id="django_steps.E003",
                )
            )
    timeout = steps_settings.DIAGRAM_TIMEOUT
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0
    ):
        messages.append(
            checks.Error(
                f"DJANGO_STEPS['DIAGRAM_TIMEOUT'] must be a positive number of seconds or "
                f"None, not {timeout!r}.",
                id="django_steps.E003",
            )
        )
    depth = steps_settings.CONDITION_MAX_DEPTH

    honoured = MAX_TREE_DEPTH // TREE_LEVELS_PER_DEPTH
    if isinstance(depth, int) and not isinstance(depth, bool) and depth > honoured:
        messages.append(
            checks.Warning(
                f"DJANGO_STEPS['CONDITION_MAX_DEPTH'] is {depth}, but conditions nested more "
                f"than about {honoured} levels are still refused: cel-python cannot evaluate "
                f"parse trees deeper than {MAX_TREE_DEPTH} levels.",
                hint=f"Use a value of at most {honoured}.",
                id="django_steps.W001",
            )
        )
    on_delete = steps_settings.ON_OBJECT_DELETE
    if on_delete not in ("cancel", "delete"):
        messages.append(
            checks.Error(
                f"DJANGO_STEPS['ON_OBJECT_DELETE'] must be 'cancel' or 'delete', not "
                f"{on_delete!r}.",
                hint="'cancel' keeps the instances of a deleted object as cancelled; "
                "'delete' removes them with their history.",
                id="django_steps.E006",
            )
        )
    backend = steps_settings.CEL_BACKEND

    try:
        get_backend(backend)
    except (LookupError, ImportError) as error:
        messages.append(
            checks.Error(
                f"DJANGO_STEPS['CEL_BACKEND'] is unusable: {error}", id="django_steps.E004"
            )
        )
    return messages


@checks.register("django_steps")
def check_object_fields(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E005: ``OBJECT_FIELDS`` names an unknown model or field; W002: also a method.

    Each entry must name an installed model by its label and list concrete fields of
    it (a foreign key gives the related object's key; many-to-many fields are refused).
    """
    try:
        declared = steps_settings.OBJECT_FIELDS
    except ConfigurationError:
        return []  # reported as E001
    example = 'e.g. {"orders.Order": ["amount", "is_high_risk"]}'
    if not isinstance(declared, dict):
        return [
            checks.Error(
                "DJANGO_STEPS['OBJECT_FIELDS'] must map model labels to lists of field "
                f"names, {example}; got {type(declared).__name__}.",
                id="django_steps.E005",
            )
        ]
    messages: list[checks.CheckMessage] = []
    for label, fields in declared.items():
        where = f"DJANGO_STEPS['OBJECT_FIELDS'][{label!r}]"
        try:
            model = apps.get_model(label) if isinstance(label, str) else None
        except (LookupError, ValueError):
            model = None
        if model is None:
            messages.append(
                checks.Error(
                    f"{where}: {label!r} is not an installed model.",
                    hint=f"Name models by their label, {example}.",
                    id="django_steps.E005",
                )
            )
            continue
        if not isinstance(fields, list | tuple) or not all(isinstance(f, str) for f in fields):
            messages.append(
                checks.Error(
                    f"{where} must be a list of field names, not {fields!r}.",
                    id="django_steps.E005",
                )
            )
            continue
        usable = {
            field.name
            for field in model._meta.get_fields()
            if getattr(field, "concrete", False) and not field.many_to_many
        }
        for name in fields:
            if name not in usable:
                messages.append(
                    checks.Error(
                        f"{where}: {model._meta.label} has no field {name!r} that conditions "
                        "can read.",
                        hint=f"Its fields: {', '.join(sorted(usable))}.",
                        obj=model,
                        id="django_steps.E005",
                    )
                )
        if callable(getattr(model, "workflow_context", None)):
            messages.append(
                checks.Warning(
                    f"{where} is ignored: {model._meta.label} defines workflow_context(), "
                    "which gives conditions its object instead.",
                    hint="Remove one of the two declarations.",
                    obj=model,
                    id="django_steps.W002",
                )
            )
    return messages
