"""Checks on a parsed condition that keep hostile texts from hurting the server.

Internal: these checks run inside :func:`django_steps.cel.compile_condition`.

:func:`check_condition_safety` runs on every condition when it is compiled (and so
when it is saved), after the length and bracket-depth checks of
:func:`django_steps.cel.compile_condition`. It walks cel-python's lark
parse tree without recursion and refuses, with line and column:

- control, bidirectional-override and other invisible format characters (Unicode
  category Cf: zero-width space and joiners, soft hyphen, tag characters), in
  string literals too: text that displays differently from what is evaluated
  (``role != "adm\u200bin"`` displays as ``role != "admin"``);
- a parse tree deeper than the evaluator can handle (long ``a.b.c...`` or
  ``x[0][0]...`` chains, which the bracket count does not see);
- a comprehension macro (``all``, ``exists``, ``exists_one``, ``map``, ``filter``)
  inside the arguments of another one (the cost would be the product of the list
  sizes), more of them than ``CONDITION_MAX_COMPREHENSIONS`` (each walks a whole
  list; cel-python takes about 0.1 ms per element), and ``+`` inside ``map()`` (its
  results are all kept, so concatenation there multiplies memory);
- ``duration()`` or ``timestamp()`` applied to anything but a short, well-formed
  string literal: cel-python 0.5.0 parses durations with a regular expression that
  backtracks exponentially, so the text they parse must be checked here, once.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterator
from typing import Any

from lark import Token, Tree

from ..exceptions import ConditionSyntaxError
from .limits import DEFAULT_LIMITS, CelLimits, shorten
from .quoted_fields import rewrite

#: Methods that CEL expands into comprehensions over a list or map.
COMPREHENSION_MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})

#: Parse-tree levels allowed per level of ``CONDITION_MAX_DEPTH``. One bracket level
#: costs about eleven tree levels in cel-python's grammar.
TREE_LEVELS_PER_DEPTH = 12

#: Deepest parse tree accepted whatever the settings: cel-python's evaluator recurses
#: about four Python frames per level and fails past roughly 500 levels.
MAX_TREE_DEPTH = 400

#: Longest string accepted by ``duration()`` and ``timestamp()``.
MAX_TIME_LITERAL_LENGTH = 64

_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)

# Unambiguous (each repetition starts with a digit or a dot and ends with a unit),
# so matching is linear, unlike cel-python's own pattern.
_DURATION = re.compile(r"[-+]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:h|ms|m|s|us|µs|ns))+")
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def tree_depth_limit(limits: CelLimits) -> int:
    """The deepest parse tree accepted under ``limits``."""
    return min(MAX_TREE_DEPTH, limits.max_depth * TREE_LEVELS_PER_DEPTH)


def check_condition_safety(
    expression: str, ast: Any = None, limits: CelLimits = DEFAULT_LIMITS
) -> None:
    """Raise ``ConditionSyntaxError`` for constructs that are too costly to evaluate.

    ``ast`` is cel-python's parse tree of ``expression``; when it is something else
    (another backend's program), the text is parsed with cel-python's parser so the
    same rules apply whatever the backend. The length and bracket-depth limits are
    enforced before parsing by :func:`django_steps.cel.compile_condition`.
    """
    _check_characters(expression)
    tree = ast if isinstance(ast, Tree) else parse_tree(expression)
    _check_tree_depth(expression, tree, tree_depth_limit(limits))
    comprehensions = 0
    for node in tree.iter_subtrees_topdown():
        name, receiver, arguments = call_parts(node)
        if node.data == "member_dot_arg" and name in COMPREHENSION_MACROS:
            comprehensions += 1
            if comprehensions > limits.max_comprehensions:
                raise _fail(
                    expression,
                    f"Condition uses more than {limits.max_comprehensions} comprehension "
                    "macros (all, exists, exists_one, map, filter); each one walks a whole "
                    "list or map (setting CONDITION_MAX_COMPREHENSIONS)",
                    node.children[1],
                )
            _check_macro_nesting(expression, node)
        if name in ("duration", "timestamp"):
            _check_time_call(expression, node, name, receiver, arguments)


@functools.cache
def _parser() -> Any:
    from celpy.celparser import CELParser

    return CELParser()


def parse_tree(expression: str) -> Tree:
    """cel-python's parse tree of ``expression``; ``ConditionSyntaxError`` if it fails."""
    from celpy.celparser import CELParseError

    rewritten = rewrite(expression)
    try:
        return _parser().parse(rewritten.text)
    except CELParseError as error:
        column = error.column
        if error.line is not None and column is not None:
            column = rewritten.original_column(error.line, column)
        raise ConditionSyntaxError(
            f"Condition does not parse at line {error.line}, column {column}.",
            expression=shorten(expression),
            line=error.line,
            column=column,
        ) from None


def position(node: Tree | Token) -> tuple[int | None, int | None]:
    """1-based line and column of a parse-tree node, when known."""
    if isinstance(node, Token):
        return node.line, node.column
    for token in _tokens(node):
        return token.line, token.column
    return None, None


def call_parts(node: Tree) -> tuple[str | None, Tree | None, list[Tree]]:
    """For a function or method call node: its name, receiver and arguments.

    ``f(a)`` and ``.f(a)`` have no receiver; ``r.f(a)`` has ``r``. Other nodes give
    ``(None, None, [])``.
    """
    if node.data in ("ident_arg", "dot_ident_arg"):
        name, *rest = node.children
        return str(name), None, _arguments(rest)
    if node.data == "member_dot_arg":
        receiver, name, *rest = node.children
        return str(name), receiver, _arguments(rest)
    return None, None, []


def _arguments(rest: list[Any]) -> list[Tree]:
    if rest and isinstance(rest[0], Tree) and rest[0].data == "exprlist":
        return [child for child in rest[0].children if isinstance(child, Tree)]
    return []


def _tokens(node: Tree) -> Iterator[Token]:
    stack: list[Any] = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, Token):
            yield item
        elif isinstance(item, Tree):
            stack.extend(reversed(item.children))


def _fail(expression: str, message: str, node: Tree | Token | None) -> ConditionSyntaxError:
    line, column = position(node) if node is not None else (None, None)
    where = f" at line {line}, column {column}" if line is not None else ""
    return ConditionSyntaxError(
        f"{message}{where}.", expression=shorten(expression), line=line, column=column
    )


def _check_characters(expression: str) -> None:
    line, column = 1, 0
    for char in expression:
        column += 1
        if char == "\n":
            line, column = line + 1, 0
            continue
        category = unicodedata.category(char)
        if category == "Cf" and char not in _BIDI_CONTROLS:
            raise ConditionSyntaxError(
                f"Condition contains the invisible format character U+{ord(char):04X} "
                f"({unicodedata.name(char, 'unnamed')}) at line {line}, column {column}; remove "
                f"it, or write it as the escape {_escape(char)} if it is meant (it makes "
                "the text display differently from what is evaluated).",
                expression=shorten(expression),
                line=line,
                column=column,
            )
        if char in _BIDI_CONTROLS or (category == "Cc" and char not in "\t\r\f"):
            raise ConditionSyntaxError(
                f"Condition contains the invisible control character U+{ord(char):04X} at "
                f"line {line}, column {column}; remove it (it can make the text display "
                "differently from what is evaluated).",
                expression=shorten(expression),
                line=line,
                column=column,
            )


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _check_tree_depth(expression: str, tree: Tree, limit: int) -> None:
    stack: list[tuple[Any, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            raise _fail(
                expression,
                f"Condition is nested too deeply: its parse tree is more than {limit} levels "
                "deep (long chains such as a.b.c... or x[0][0]... count as nesting; "
                "setting CONDITION_MAX_DEPTH)",
                node,
            )
        if isinstance(node, Tree):
            stack.extend((child, depth + 1) for child in node.children)


def _check_macro_nesting(expression: str, node: Tree) -> None:
    name, _, arguments = call_parts(node)
    for argument in arguments:
        for inner in argument.iter_subtrees():
            if inner.data != "member_dot_arg":
                continue
            inner_name = inner.children[1]
            if str(inner_name) in COMPREHENSION_MACROS:
                raise _fail(
                    expression,
                    f"Condition nests the macro {inner_name!s}() inside {name}(); "
                    "comprehensions cannot be nested (their cost would multiply)",
                    inner_name,
                )
    if name == "map":
        for argument in arguments[1:]:
            for inner in argument.iter_subtrees():
                if inner.data == "addition_add":
                    raise _fail(
                        expression,
                        "Condition uses + inside map(): map() keeps one result per element, "
                        "so concatenating strings or lists there can use memory far beyond the "
                        "size of the context; test the sum inside all() or exists() instead",
                        inner,
                    )


def _check_time_call(
    expression: str, node: Tree, name: str, receiver: Tree | None, arguments: list[Tree]
) -> None:
    values = ([receiver] if receiver is not None else []) + arguments
    if len(values) != 1:
        raise _fail(expression, f"{name}() takes exactly one string literal", node)
    token = string_literal(values[0])
    if token is None:
        raise _fail(
            expression,
            f"{name}() accepts only a string literal, e.g. "
            + ('duration("1h30m")' if name == "duration" else 'timestamp("2024-01-31T00:00:00Z")')
            + "; compare with context values instead of converting them",
            node,
        )
    text = token[1:-1] if token.startswith(('"', "'")) else token[2:-1]
    pattern = _DURATION if name == "duration" else _TIMESTAMP
    if (
        len(text) > MAX_TIME_LITERAL_LENGTH
        or "\\" in text
        or not pattern.fullmatch(text)
        or not _converts(name, text)
    ):
        example = '"1h30m" or "90s"' if name == "duration" else '"2024-01-31T00:00:00Z"'
        raise _fail(
            expression,
            f"{name}() cannot use {shorten(text, 40)!r}: expected a string like {example}",
            token,
        )


def _converts(name: str, text: str) -> bool:
    """Whether cel-python accepts the (already pattern-checked, short) literal."""
    from celpy import celtypes

    try:
        if name == "duration":
            celtypes.DurationType(text)
        else:
            celtypes.TimestampType(text)
    except (ValueError, TypeError, OverflowError, ArithmeticError):
        return False
    return True


def string_literal(node: Tree) -> Token | None:
    """The single-quoted or double-quoted string literal a subtree consists of, if any.

    Follows single-child chains (``expr`` -> ... -> ``literal``); a raw string
    (``r"..."``) counts, triple-quoted and bytes literals do not.
    """
    item: Any = node
    while isinstance(item, Tree) and len(item.children) == 1:
        item = item.children[0]
    if isinstance(item, Token) and item.type == "STRING_LIT":
        return item
    return None
