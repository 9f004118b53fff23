"""Limits on condition texts and context data, and the checks of a text against them.

Internal: use :class:`django_steps.cel.CelLimits` and the ``DJANGO_STEPS`` settings.

The parser and the evaluators recurse once per nesting level, so the length and depth
of a condition are bounded here, in linear time, before any parser sees the text.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..exceptions import ConditionSyntaxError

__all__ = [
    "DEFAULT_LIMITS",
    "EVALUATION_MAX_BUILT",
    "EVALUATION_MAX_WORK",
    "CelLimits",
    "check_text",
    "shorten",
]

#: Units (characters, bytes, 8 per list element) the ``+`` of one evaluation may
#: build: at most about 64 MB of memory in either backend (django_steps.cel.cost).
EVALUATION_MAX_BUILT = 16_000_000

#: Steps one evaluation may take: one per operator, function or field evaluated,
#: plus one per element ``==``, ``in`` and the orderings compare (django_steps.cel.cost;
#: docs/cel.md, "Bounds", has the times measured).
EVALUATION_MAX_WORK = 400_000


@dataclass(frozen=True)
class CelLimits:
    """Limits applied to condition texts and context data.

    The defaults are those of the ``DJANGO_STEPS`` settings of the same names.
    """

    max_length: int = 1000
    max_depth: int = 30
    context_max_bytes: int = 65536
    context_max_depth: int = 10
    max_comprehensions: int = 4


DEFAULT_LIMITS = CelLimits()

_OPENING = "([{"
_CLOSING = ")]}"


def check_text(expression: str, limits: CelLimits) -> None:
    """Reject texts over the length or nesting limits before the parser sees them.

    The parser and evaluator recurse once per nesting level, so the depth is bounded
    here, in linear time, instead of relying on a ``RecursionError`` deep inside them.
    """
    try:
        expression.encode("utf-8")
    except UnicodeEncodeError as error:
        # A lone surrogate cannot be stored (PostgreSQL) nor compiled (cel-expr).
        line = expression.count("\n", 0, error.start) + 1
        column = error.start - expression.rfind("\n", 0, error.start)
        raise ConditionSyntaxError(
            f"Condition has an invalid character (lone surrogate "
            f"{expression[error.start]!r}) at line {line}, column {column}.",
            expression=shorten(expression),
            line=line,
            column=column,
        ) from None
    if len(expression) > limits.max_length:
        raise ConditionSyntaxError(
            f"Condition is {len(expression)} characters long; the limit is "
            f"{limits.max_length} (setting CONDITION_MAX_LENGTH).",
            expression=shorten(expression),
        )
    depth = 0
    deepest = 0
    unary_run = 0
    quote: str | None = None
    escaped = False
    line, column = 1, 0
    for char in expression:
        column += 1
        if char == "\n":
            line, column = line + 1, 0
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = None
            continue
        if char in "\"'":
            quote = char
        elif char in _OPENING:
            depth += 1
        elif char in _CLOSING:
            depth -= 1
        if char in "!-":
            unary_run += 1
        elif not char.isspace():
            unary_run = 0
        level = depth + unary_run
        if level > deepest:
            deepest = level
            if deepest > limits.max_depth:
                raise ConditionSyntaxError(
                    f"Condition is nested more than {limits.max_depth} levels deep at line "
                    f"{line}, column {column} (setting CONDITION_MAX_DEPTH).",
                    expression=shorten(expression),
                    line=line,
                    column=column,
                )


def shorten(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
