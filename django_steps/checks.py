"""System checks on the ``DJANGO_STEPS`` settings.

Registered with Django's check framework under the tag ``django_steps``, so
``manage.py check`` reports them: ``django_steps.E001`` (not a dict), ``E002`` (unknown
key), ``E003`` (a limit that is not a positive integer), ``E004`` (unusable
``CEL_BACKEND``) and the warning ``W001`` (a ``CONDITION_MAX_DEPTH`` cel-python cannot
honour). The documentation's system checks reference says how to fix each.
"""

from __future__ import annotations

from typing import Any

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
    """E001: not a dict; E002: unknown keys; E003: bad values; E004: backend; W001: depth."""
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
