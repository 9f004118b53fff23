"""CEL conditions: compile once per text, evaluate against a converted context, fail closed.

Internal: use the names exported by :mod:`django_steps.cel`.

A condition is compiled by :func:`compile_condition` (cached per text, backend and
limits) into a :class:`CompiledCondition`. The context given to the services is
converted once per update by :func:`convert_context`, which accepts only plain data
(dict, list, tuple, str, int, float, bool, None, Decimal, date, datetime, UUID) and
raises :class:`~django_steps.exceptions.ContextError` for anything else. Evaluation
returns a Python ``bool`` or raises
:class:`~django_steps.exceptions.ConditionEvaluationError`: a condition that cannot
be evaluated never counts as true or false.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..exceptions import ContextError
from .backends import get_backend
from .cost import CostBound, cost_bound
from .limits import DEFAULT_LIMITS, CelLimits, check_text
from .safety import check_condition_safety

if TYPE_CHECKING:
    from .backends import CelBackend

__all__ = ["CompiledCondition", "compile_condition", "convert_context"]


@dataclass(frozen=True, eq=False)
class CompiledCondition:
    """A compiled condition; call :meth:`evaluate` with a converted context."""

    expression: str
    program: Any
    backend: CelBackend
    #: What the condition may cost on a context, when that can exceed the limits
    #: (:mod:`django_steps.cel.cost`); ``None`` for almost every condition.
    cost: CostBound | None = None

    def evaluate(self, activation: Any) -> bool:
        """Evaluate against a context prepared by :meth:`CelBackend.prepare`.

        Returns ``True`` or ``False``; raises ``ConditionEvaluationError`` when the
        condition fails, yields something other than a bool, or could exceed the
        evaluation limits on this context (checked before it runs).
        """
        if self.cost is not None:
            self.cost.check(self.expression, self.backend.context_sizes(activation))
        return self.backend.evaluate(self, activation)


@functools.lru_cache(maxsize=4096)
def compile_condition(
    expression: str, *, backend: str = "celpy", limits: CelLimits = DEFAULT_LIMITS
) -> CompiledCondition:
    """Compile a condition text, checking the limits first.

    Raises :class:`~django_steps.exceptions.ConditionSyntaxError` (with line and
    column when known) for a text that does not parse or breaks a limit. Results
    are cached, so compiling the same text again costs a dictionary look-up.
    """
    cel = get_backend(backend)
    check_text(expression, limits)
    ast = cel.parse(expression)
    check_condition_safety(expression, ast, limits)
    program = cel.program(expression, ast)
    return CompiledCondition(
        expression=expression,
        program=program,
        backend=cel,
        cost=cost_bound(ast, limits.context_max_bytes, cel.slowness(program)),
    )


def convert_context(
    context: Mapping[str, Any] | None, *, backend: str = "celpy", limits: CelLimits = DEFAULT_LIMITS
) -> Any:
    """Convert ``context_data`` for evaluation; ``ContextError`` names the bad value."""
    try:
        # ``None`` only: another falsy value ([], 0, "") is not a dict and is refused.
        return get_backend(backend).prepare({} if context is None else context, limits)
    except RecursionError:
        # Only reachable when CONTEXT_MAX_DEPTH is set above what Python can recurse.
        raise ContextError(
            f"context_data is nested too deeply to convert (CONTEXT_MAX_DEPTH is "
            f"{limits.context_max_depth})."
        ) from None
