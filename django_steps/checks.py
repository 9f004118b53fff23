"""System checks on the ``DJANGO_STEPS`` settings (ids ``django_steps.E00x``)."""

from __future__ import annotations

from typing import Any

from django.core import checks

from .cel import get_backend
from .cel.safety import MAX_TREE_DEPTH, TREE_LEVELS_PER_DEPTH
from .conf import DEFAULTS, steps_settings
from .exceptions import ConfigurationError


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
