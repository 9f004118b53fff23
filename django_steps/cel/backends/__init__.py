"""CEL implementations ("backends") and the registry that selects one by name.

One module per backend: :mod:`.celpy` (cel-python, the default) with its transpiler
:mod:`.celpy_transpiler`, and :mod:`.cel_expr` (Google's C++ runtime, the
``django-steps[fast-cel]`` extra). Each is imported only when selected.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import TYPE_CHECKING, Any

from ..limits import DEFAULT_LIMITS, CelLimits

if TYPE_CHECKING:
    from ..conditions import CompiledCondition

__all__ = ["CelBackend", "get_backend", "register_backend"]


class CelBackend:
    """A CEL implementation. Subclasses compile texts and evaluate programs."""

    name = ""

    def parse(self, expression: str) -> Any:  # pragma: no cover - interface
        """Parse a condition text; ``ConditionSyntaxError`` with line and column.

        The result is what the AST safety checks read (a cel-python tree).
        """
        raise NotImplementedError

    def program(self, expression: str, ast: Any) -> Any:  # pragma: no cover - interface
        """Turn a parsed, checked condition (text and tree) into what :meth:`evaluate` runs."""
        raise NotImplementedError

    def prepare(self, context: Mapping[str, Any], limits: CelLimits = DEFAULT_LIMITS) -> Any:
        """Convert ``context_data`` once per update into the backend's activation."""
        raise NotImplementedError  # pragma: no cover - interface

    def evaluate(self, condition: CompiledCondition, activation: Any) -> bool:
        raise NotImplementedError  # pragma: no cover - interface

    def slowness(self, program: Any) -> int:
        """How many times slower per step than the fastest way this backend runs conditions."""
        return 1

    def context_sizes(self, activation: Any) -> Mapping[str, int]:
        """The size of each top-level value of a prepared context (what the limits count)."""
        raise NotImplementedError  # pragma: no cover - interface


def _imported(path: str) -> Callable[[], CelBackend]:
    """A factory that imports ``module:Class`` when the backend is first selected."""

    def factory() -> CelBackend:
        module_name, class_name = path.split(":")
        backend_class: type[CelBackend] = getattr(import_module(module_name), class_name)
        return backend_class()

    return factory


# A backend's module (and the CEL library behind it) is imported when the backend is
# first used, not when Django starts: importing cel-python costs every process 40-55 ms.
_BACKEND_FACTORIES: dict[str, Callable[[], CelBackend]] = {
    "celpy": _imported("django_steps.cel.backends.celpy:CelPythonBackend"),
    "cel-expr": _imported("django_steps.cel.backends.cel_expr:CelExprBackend"),
}
_backends: dict[str, CelBackend] = {}


def register_backend(name: str, factory: Callable[[], CelBackend]) -> None:
    """Make a CEL implementation selectable by name (setting ``CEL_BACKEND``)."""
    _BACKEND_FACTORIES[name] = factory
    _backends.pop(name, None)


def get_backend(name: str = "celpy") -> CelBackend:
    """The CEL backend called ``name``; ``LookupError`` naming the choices if unknown."""
    backend = _backends.get(name)
    if backend is None:
        try:
            factory = _BACKEND_FACTORIES[name]
        except KeyError:
            raise LookupError(
                f"Unknown CEL backend {name!r}; choose one of {sorted(_BACKEND_FACTORIES)}."
            ) from None
        backend = _backends[name] = factory()
    return backend
