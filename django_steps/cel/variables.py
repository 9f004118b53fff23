"""Declared context variables: the names and CEL types a workflow's conditions may use.

A workflow may declare its variables, e.g. ``{"claim": "map", "amount": "double"}``.
:func:`parse_declarations` checks such a declaration, :func:`variable_references`
finds the variables a condition reads (comprehension loop variables such as ``x``
in ``items.all(x, x > 1)`` are bound, not free), :func:`key_references` the keys it
reads of a variable (``object.amount``) and :func:`check_declared_context` checks
``context_data`` against the declaration before any condition is evaluated. The
names of :data:`RESERVED_NAMES` are given by django-steps itself, never declared.
"""

from __future__ import annotations

import ast
import datetime
import decimal
import functools
import keyword
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lark import Token, Tree

from ..exceptions import ContextError, DefinitionError
from .safety import COMPREHENSION_MACROS, call_parts, parse_tree

#: The names every condition sees beside the keys of ``context_data``: the attached
#: object's declared fields, the status being set, the actor, the instance and the time
#: of the change. ``context_data`` cannot use them as keys, nor a declaration.
RESERVED_NAMES = frozenset({"object", "status", "actor", "instance", "now"})

__all__ = [
    "CEL_TYPE_NAMES",
    "VariableReference",
    "check_declared_context",
    "declaration_errors",
    "parse_declarations",
    "variable_references",
]

#: The type names a declaration may use, as CEL spells them.
CEL_TYPE_NAMES = (
    "bool",
    "int",
    "uint",
    "double",
    "string",
    "bytes",
    "list",
    "map",
    "timestamp",
    "duration",
    "null",
    "dyn",
)

#: Identifiers a condition may use without declaring them: CEL's type names.
BUILTIN_IDENTIFIERS = frozenset(
    {"bool", "bytes", "double", "int", "uint", "string", "list", "map", "null_type", "type"}
)

_IDENTIFIER = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")
_RESERVED = frozenset(
    {
        "true",
        "false",
        "null",
        "in",
        "as",
        "break",
        "const",
        "continue",
        "else",
        "for",
        "function",
        "if",
        "import",
        "let",
        "loop",
        "package",
        "namespace",
        "return",
        "var",
        "void",
        "while",
    }
)


def declaration_errors(declarations: Any) -> list[str]:
    """Readable problems of a context variable declaration (empty when it is valid).

    A declaration maps CEL identifiers to one of :data:`CEL_TYPE_NAMES`. ``None`` and
    an empty mapping declare nothing (conditions may then use any variable).
    """
    if declarations is None:
        return []
    if not isinstance(declarations, Mapping):
        return [
            "Context variables must be a mapping of variable names to type names, e.g. "
            f'{{"claim": "map", "amount": "double"}}; got {type(declarations).__name__}.'
        ]
    errors = []
    for name, type_name in declarations.items():
        if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
            errors.append(
                f"Context variable {name!r} is not a valid name: use letters, digits and "
                "underscores, not starting with a digit."
            )
        elif name in _RESERVED or name in BUILTIN_IDENTIFIERS or keyword.iskeyword(name):
            errors.append(f"Context variable {name!r} is a reserved word in CEL; rename it.")
        elif name in RESERVED_NAMES:
            errors.append(
                f"Context variable {name!r} is a name django-steps gives every condition "
                f"({', '.join(sorted(RESERVED_NAMES))}); it cannot be declared. Rename it."
            )
        if not isinstance(type_name, str) or type_name not in CEL_TYPE_NAMES:
            errors.append(
                f"Context variable {name!r} has type {type_name!r}; choose one of "
                f"{', '.join(CEL_TYPE_NAMES)}."
            )
    return errors


def parse_declarations(declarations: Any) -> dict[str, str]:
    """A validated copy of a declaration; :class:`DefinitionError` listing every problem."""
    errors = declaration_errors(declarations)
    if errors:
        raise DefinitionError(" ".join(errors), problems=errors)
    return dict(declarations or {})


@dataclass(frozen=True)
class VariableReference:
    """A free variable read by a condition, with its 1-based position."""

    name: str
    line: int | None
    column: int | None


def variable_references(tree: Tree) -> list[VariableReference]:
    """The free variables a parsed condition reads, in order of appearance.

    Names bound by a comprehension macro (``x`` in ``items.all(x, x > 1)``) are not
    free inside that macro; CEL's type names (``int``, ``string``...) are not
    variables. Function names are not variables.
    """
    found: list[VariableReference] = []
    # Iterative walk: (node, names bound at that point).
    stack: list[tuple[Any, frozenset[str]]] = [(tree, frozenset())]
    while stack:
        node, bound = stack.pop()
        if not isinstance(node, Tree):
            continue
        if node.data in ("ident", "dot_ident"):
            token = node.children[0]
            assert isinstance(token, Token)
            if (
                node.data == "dot_ident" or token not in bound
            ) and token not in BUILTIN_IDENTIFIERS:
                found.append(VariableReference(str(token), token.line, token.column))
            continue
        if node.data == "member_object":
            # The message type name is not a variable; only its field values are read.
            stack.extend((child, bound) for child in reversed(node.children[1:]))
            continue
        function, receiver, arguments = call_parts(node)
        if node.data == "member_dot_arg" and function in COMPREHENSION_MACROS and arguments:
            loop_variable = _bare_identifier(arguments[0])
            inner = bound | {loop_variable} if loop_variable else bound
            stack.extend((argument, inner) for argument in reversed(arguments[1:]))
            if loop_variable is None:
                stack.append((arguments[0], bound))
            stack.append((receiver, bound))
            continue
        if function is not None:
            stack.extend((argument, bound) for argument in reversed(arguments))
            if receiver is not None:
                stack.append((receiver, bound))
            continue
        stack.extend((child, bound) for child in reversed(node.children))
    return found


def free_variables(tree: Tree) -> set[str]:
    """The names of the free variables a parsed condition reads."""
    return {reference.name for reference in variable_references(tree)}


@functools.lru_cache(maxsize=4096)
def reserved_names_read(expression: str) -> frozenset[str]:
    """The :data:`RESERVED_NAMES` a condition that parses reads (cached per text)."""
    if not any(name in expression for name in RESERVED_NAMES):
        return frozenset()  # no need to parse it again
    return frozenset(free_variables(parse_tree(expression)) & RESERVED_NAMES)


@dataclass(frozen=True)
class KeyReference:
    """A key read of a free variable (``object.amount``, ``instance["step"]``), 1-based."""

    name: str
    key: str
    line: int | None
    column: int | None


def key_references(tree: Tree, names: frozenset[str] = RESERVED_NAMES) -> list[KeyReference]:
    """The keys a parsed condition reads of the free variables in ``names``, in order.

    ``object.amount``, ``has(object.amount)`` and ``object["amount"]`` read the key
    ``amount`` of ``object``; a comprehension's loop variable of the same name is bound,
    so its keys are not reported. A computed index (``object[name]``) is not reported.
    """
    found: list[KeyReference] = []
    stack: list[tuple[Any, frozenset[str]]] = [(tree, frozenset())]
    while stack:
        node, bound = stack.pop()
        if not isinstance(node, Tree):
            continue
        if node.data in ("member_dot", "member_index"):
            variable = _bare_identifier(node.children[0])
            if variable in names and variable not in bound:
                key, token = _key_of(node)
                if key is not None:
                    found.append(KeyReference(variable, key, token.line, token.column))
        function, receiver, arguments = call_parts(node)
        if node.data == "member_dot_arg" and function in COMPREHENSION_MACROS and arguments:
            loop_variable = _bare_identifier(arguments[0])
            inner = bound | {loop_variable} if loop_variable else bound
            stack.extend((argument, inner) for argument in reversed(arguments[1:]))
            stack.append((receiver, bound))
            continue
        stack.extend((child, bound) for child in reversed(node.children))
    return found


def _key_of(node: Tree) -> tuple[str | None, Token]:
    """The key of ``v.key`` or ``v["key"]`` and the token to point at (key ``None``: computed)."""
    if node.data == "member_dot":
        token = node.children[1]
        assert isinstance(token, Token)
        return str(token), token
    literal = _string_literal(node.children[1])
    if literal is None:
        token = next(node.children[0].scan_values(lambda value: isinstance(value, Token)))
        return None, token
    return literal


def _string_literal(node: Any) -> tuple[str, Token] | None:
    """The value and token of a plain string literal (``"x"``, ``'x'``), else ``None``."""
    item: Any = node
    while isinstance(item, Tree) and len(item.children) == 1 and item.data != "literal":
        item = item.children[0]
    if not (isinstance(item, Tree) and item.data == "literal"):
        return None
    token = item.children[0]
    if not (isinstance(token, Token) and token.type == "STRING_LIT"):
        return None
    text = str(token)
    if text[:1] not in ("'", '"') or text[:3] in ('"""', "'''"):
        return None  # raw, bytes and triple-quoted literals are not checked
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None
    return (value, token) if isinstance(value, str) else None


def compared_literals(tree: Tree, name: str) -> list[tuple[str, int | None, int | None]]:
    """The string literals a condition compares the free variable ``name`` with.

    ``name == "x"``, ``"x" != name`` and ``name in ["x", "y"]`` give ``x`` (and ``y``),
    each with the literal's 1-based line and column.
    """
    found: list[tuple[str, int | None, int | None]] = []
    for node in tree.iter_subtrees_topdown():
        # ``a == b`` parses as relation(relation_eq(a), b): the operator wraps its left side.
        if node.data != "relation" or len(node.children) != 2:
            continue
        operator, right = node.children
        if not isinstance(operator, Tree) or not operator.children:
            continue
        left = operator.children[0]
        literals: list[Any] = []
        if operator.data in ("relation_eq", "relation_ne"):
            if _bare_identifier(left) == name:
                literals.append(right)
            elif _bare_identifier(right) == name:
                literals.append(left)
        elif operator.data == "relation_in" and _bare_identifier(left) == name:
            literals.extend(_list_items(right))
        for item in literals:
            literal = _string_literal(item)
            if literal is not None:
                found.append((literal[0], literal[1].line, literal[1].column))
    return found


def _list_items(node: Any) -> list[Tree]:
    item: Any = node
    while isinstance(item, Tree) and len(item.children) == 1 and item.data != "list_lit":
        item = item.children[0]
    if not (isinstance(item, Tree) and item.data == "list_lit" and item.children):
        return []
    (items,) = item.children
    return [child for child in items.children if isinstance(child, Tree)]


def _bare_identifier(node: Tree) -> str | None:
    item: Any = node
    while isinstance(item, Tree) and len(item.children) == 1 and item.data != "ident":
        item = item.children[0]
    if isinstance(item, Tree) and item.data == "ident":
        return str(item.children[0])
    return None


# --- context data ------------------------------------------------------------------


def _python_type_name(value: Any) -> str:
    return "None" if value is None else type(value).__name__


def _is_type(value: Any, type_name: str) -> bool:
    if type_name == "dyn":
        return True
    if type_name == "null":
        return value is None
    if type_name == "bool":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if type_name == "int":
        return isinstance(value, int)
    if type_name == "uint":
        return isinstance(value, int) and value >= 0
    if type_name == "double":
        return isinstance(value, float | int | decimal.Decimal)
    if type_name == "string":
        return isinstance(value, str | uuid.UUID)
    if type_name == "bytes":
        return isinstance(value, bytes)
    if type_name == "list":
        return isinstance(value, list | tuple)
    if type_name == "map":
        return isinstance(value, Mapping)
    if type_name == "timestamp":
        return isinstance(value, datetime.date)
    if type_name == "duration":
        return isinstance(value, datetime.timedelta)
    return False


_EXPECTED = {
    "bool": "True or False",
    "int": "an int",
    "uint": "a non-negative int",
    "double": "a float, int or Decimal",
    "string": "a str (or UUID)",
    "bytes": "bytes",
    "list": "a list or tuple",
    "map": "a dict",
    "timestamp": "a datetime or date",
    "duration": "a timedelta",
    "null": "None",
}


def check_declared_context(
    declarations: Mapping[str, str], context: Mapping[str, Any] | None, *, workflow: str = ""
) -> Mapping[str, Any] | None:
    """Check ``context_data`` against a declaration before any condition is evaluated.

    Variables that are declared must have a value of their type (a missing variable
    is left to the condition that reads it, which then fails closed). Undeclared keys
    are allowed: conditions cannot read them. Returns the context to evaluate:
    ``context`` itself, or a copy in which ints given for ``double`` variables are
    floats (CEL does not compare an int with a double). Raises
    :class:`~django_steps.exceptions.ContextError` naming the variable, the declared
    type and the type given.
    """
    if not declarations or context is None:
        return context
    if not isinstance(context, Mapping):
        raise ContextError(f"context_data must be a dict, not {type(context).__name__}.")
    coerced: dict[str, Any] | None = None
    for name, type_name in declarations.items():
        if name not in context:
            continue
        value = context[name]
        if not _is_type(value, type_name):
            where = f"Workflow {workflow!r}: " if workflow else ""
            raise ContextError(
                f"{where}context variable {name!r} is declared as {type_name} and must be "
                f"{_EXPECTED[type_name]}, but context_data gives a {_python_type_name(value)} "
                f"({_shorten_repr(value)}).",
                path=name,
            )
        if type_name == "double" and isinstance(value, int):
            if coerced is None:
                coerced = dict(context)
            coerced[name] = float(value)
    return context if coerced is None else coerced


def _shorten_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
