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

__all__ = [
    "DEFAULTS",
    "StepsSettings",
    "current_limits",
    "steps_settings",
]

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
    # The fields of each model that conditions may read as ``object``, by model label:
    # {"app_label.ModelName": ["field", ...]}. A model may instead define
    # ``workflow_context(self) -> dict``; without either, ``object`` holds only ``pk``.
    "OBJECT_FIELDS": {},
    # What deleting an object does to its workflow instances: "cancel" (each unfinished
    # one is cancelled, with a history row) or "delete" (all of them, with history).
    "ON_OBJECT_DELETE": "cancel",
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


def object_fields_for(model: type[Any]) -> tuple[str, ...]:
    """The fields ``DJANGO_STEPS["OBJECT_FIELDS"]`` lets conditions read of ``model``.

    The model is named by its label (``"app_label.ModelName"``, in any case); a model
    that is not named gets ``()``. Checked by the system check ``django_steps.E005``.
    """
    declared = steps_settings.OBJECT_FIELDS
    if not isinstance(declared, dict):
        return ()
    meta = model._meta
    for label, fields in declared.items():
        if isinstance(label, str) and label.lower() == meta.label_lower:
            return tuple(fields) if isinstance(fields, list | tuple) else ()
    return ()


def readable_object_fields(model: type[Any]) -> tuple[str, ...] | None:
    """The keys conditions can read of ``model``'s ``object``, when they are known.

    ``pk`` and the fields of ``OBJECT_FIELDS``; ``None`` when the model defines
    ``workflow_context()``, whose keys are known only once it is called.
    """
    if callable(getattr(model, "workflow_context", None)):
        return None
    return ("pk", *object_fields_for(model))


def _reload_on_change(*, setting: str, **kwargs: Any) -> None:
    if setting == "DJANGO_STEPS":
        steps_settings.reload()


setting_changed.connect(_reload_on_change, dispatch_uid="django_steps.conf.reload")
