"""CEL conditions: limits, context conversion, safety checks and the backends that run them.

This package depends on nothing of django-steps but :mod:`django_steps.exceptions`,
and on no Django at all, so conditions can be compiled and checked anywhere.

Public modules: this package (the names in ``__all__``), :mod:`.variables` (declared
context variables) and :mod:`.backends` (the registry, to add a backend). Internal:
:mod:`.limits`, :mod:`.context`, :mod:`.safety`, :mod:`.cost` (each condition's
evaluation bound), :mod:`.quoted_fields` (backtick-quoted field names),
:mod:`.conditions` and the backend modules themselves, each imported only when its
backend is selected.
"""

from __future__ import annotations

from .backends import CelBackend, get_backend, register_backend
from .conditions import CompiledCondition, compile_condition, convert_context
from .context import ContextConverter
from .limits import DEFAULT_LIMITS, CelLimits

__all__ = [
    "DEFAULT_LIMITS",
    "CelBackend",
    "CelLimits",
    "CompiledCondition",
    "ContextConverter",
    "compile_condition",
    "convert_context",
    "get_backend",
    "register_backend",
]
