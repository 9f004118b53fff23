"""The ``DJANGO_STEPS`` settings, read when used so ``override_settings`` works.

:func:`current_limits` turns the condition and context settings into the
:class:`~django_steps.cel.CelLimits` that the CEL layer takes.

Settings live in one dict in the project's settings::

    DJANGO_STEPS = {"CONDITION_MAX_LENGTH": 2000}

and are read through :data:`steps_settings`, e.g. ``steps_settings.CONDITION_MAX_LENGTH``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed

from .cel import CelLimits
from .exceptions import ConfigurationError

DEFAULTS: dict[str, Any] = {
    # CEL implementation: "celpy" (cel-python, default) or "cel-expr" (cel-expr-python).
    "CEL_BACKEND": "celpy",
    # Longest condition text accepted, in characters.
    "CONDITION_MAX_LENGTH": 1000,
    # Deepest nesting of parentheses, brackets, braces and operators in a condition.
    "CONDITION_MAX_DEPTH": 30,
    # Most comprehension macros (all, exists, exists_one, map, filter) in one condition;
    # each one walks a whole list or map of the context.
    "CONDITION_MAX_COMPREHENSIONS": 4,
    # Largest context_data accepted, as its JSON size in bytes.
    "CONTEXT_MAX_BYTES": 65536,
    # Deepest nesting of lists and maps in context_data.
    "CONTEXT_MAX_DEPTH": 10,
    # How many compiled workflow machines each process keeps.
    "MACHINE_CACHE_SIZE": 128,
    # Longest time, in seconds, Graphviz may take to draw an SVG or PNG diagram; it is
    # then stopped (the admin shows the Mermaid text instead). None: no limit.
    "DIAGRAM_TIMEOUT": 5,
}


class StepsSettings:
    """Attribute access to ``settings.DJANGO_STEPS`` with defaults, cached until changed."""

    def __init__(self, defaults: dict[str, Any]):
        self._defaults = defaults
        self._cache: dict[str, Any] | None = None

    def _user_settings(self) -> dict[str, Any]:
        if self._cache is None:
            user = getattr(settings, "DJANGO_STEPS", {}) or {}
            if not isinstance(user, dict):
                raise ConfigurationError("The DJANGO_STEPS setting must be a dict.")
            self._cache = dict(user)
        return self._cache

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in self._defaults:
            raise AttributeError(f"Unknown django-steps setting: {name!r}")
        return self._user_settings().get(name, self._defaults[name])

    def unknown_keys(self) -> list[str]:
        """Keys of ``DJANGO_STEPS`` that are not django-steps settings (for system checks)."""
        return sorted(set(self._user_settings()) - set(self._defaults))

    def reload(self) -> None:
        self._cache = None


steps_settings = StepsSettings(DEFAULTS)


def current_limits() -> CelLimits:
    """The CEL limits of the ``DJANGO_STEPS`` settings."""
    return CelLimits(
        max_length=steps_settings.CONDITION_MAX_LENGTH,
        max_depth=steps_settings.CONDITION_MAX_DEPTH,
        max_comprehensions=steps_settings.CONDITION_MAX_COMPREHENSIONS,
        context_max_bytes=steps_settings.CONTEXT_MAX_BYTES,
        context_max_depth=steps_settings.CONTEXT_MAX_DEPTH,
    )


def _reload_on_change(*, setting: str, **kwargs: Any) -> None:
    if setting == "DJANGO_STEPS":
        steps_settings.reload()


setting_changed.connect(_reload_on_change, dispatch_uid="django_steps.conf.reload")
