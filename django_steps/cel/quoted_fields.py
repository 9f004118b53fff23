"""Backtick-quoted field names (``a.`content-type` ``) for cel-python's parser.

Internal: :func:`django_steps.cel.compile_condition` applies it.

The CEL specification selects a field whose name is not an identifier with
backticks: ``headers.`content-type` `` or ``files.`report.pdf` ``, the name made of
letters, digits, ``_``, ``.``, ``-``, ``/`` and spaces. cel-python 0.5's grammar has
no such token, so before it parses a condition, :func:`rewrite` turns each
``.`name` `` outside string literals and comments into the index ``["name"]``, which
selects the same map entry (and which ``has()`` accepts on this backend). The name
can only hold the characters above, so it becomes a plain string literal: no
condition text can become anything but data. Any other backtick is left alone, for
the parser to refuse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Rewritten", "rewrite"]

#: ``.`name` `` (with optional spaces around the dot) as the specification writes it.
_QUOTED = re.compile(r"\.\s*`([A-Za-z0-9_./ -]+)`")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: What may come before a string literal's quote: nothing, or r, b, rb, br (any case).
_PREFIX = re.compile(r"(?i:r|b|rb|br)?")


@dataclass(frozen=True)
class Rewritten:
    """A condition text for cel-python, and where each rewrite moved the text."""

    text: str
    #: (offset in ``text`` just past a rewrite, characters added there).
    shifts: tuple[tuple[int, int], ...] = ()

    def original_column(self, line: int, column: int) -> int:
        """The column in the original text of ``line``/``column`` (1-based) of ``text``."""
        start = 0
        for _ in range(line - 1):
            start = self.text.index("\n", start) + 1
        offset = start + column - 1
        return column - sum(added for end, added in self.shifts if start <= end <= offset)


def rewrite(expression: str) -> Rewritten:
    """``expression`` with each backtick-quoted field name as an index, for cel-python."""
    if "`" not in expression:
        return Rewritten(expression)
    parts: list[str] = []
    shifts: list[tuple[int, int]] = []
    length = 0
    position = 0
    size = len(expression)
    while position < size:
        char = expression[position]
        if char == "/" and expression.startswith("//", position):
            end = expression.find("\n", position)
            end = size if end == -1 else end
        elif char.isalpha() or char == "_" or char in "\"'":
            word = _WORD.match(expression, position)
            end = word.end() if word else position
            prefix = expression[position:end]
            if end < size and expression[end] in "\"'" and _PREFIX.fullmatch(prefix):
                quote = _quote_at(expression, end)
                end = _string_end(expression, end + len(quote), quote, "r" in prefix.lower())
            elif end == position:  # a letter outside ASCII: not part of an identifier
                end = position + 1
        elif char == "." and (quoted := _QUOTED.match(expression, position)):
            replacement = f'["{quoted.group(1)}"]'
            parts.append(replacement)
            length += len(replacement)
            shifts.append((length, len(replacement) - (quoted.end() - position)))
            position = quoted.end()
            continue
        else:
            end = position + 1
        parts.append(expression[position:end])
        length += end - position
        position = end
    return Rewritten("".join(parts), tuple(shifts))


def _quote_at(expression: str, position: int) -> str:
    for quote in ("'''", '"""', "'", '"'):
        if expression.startswith(quote, position):
            return quote
    raise AssertionError("no quote here")  # pragma: no cover - callers check first


def _string_end(expression: str, position: int, quote: str, raw: bool) -> int:
    """The offset just past the string literal whose text starts at ``position``."""
    size = len(expression)
    while position < size:
        if not raw and expression[position] == "\\":
            position += 2
            continue
        if expression.startswith(quote, position):
            return position + len(quote)
        if len(quote) == 1 and expression[position] == "\n":
            return position  # unterminated: the parser reports it
        position += 1
    return size
