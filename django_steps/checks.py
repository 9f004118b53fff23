"""System checks on the ``DJANGO_STEPS`` settings (ids ``django_steps.E00x``/``W00x``)."""

from __future__ import annotations

from typing import Any

from django.core import checks

from .cel import get_backend
from .cel.safety import MAX_TREE_DEPTH, TREE_LEVELS_PER_DEPTH
from .conf import DEFAULTS, steps_settings
from .exceptions import ConfigurationError


@checks.register("django_steps")
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E001: not a dict; E002: unknown keys; E003: bad values; E004: backend;
    E005: ON_OBJECT_DELETE; W001: depth."""
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
                id="django_steps.E005",
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
