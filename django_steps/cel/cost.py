"""A bound on what one evaluation of a condition costs, checked against each context.

Internal: :func:`django_steps.cel.compile_condition` computes the bound.

A condition's cost depends on the context: ``l.all(x, l == l)`` compares 64 million
elements when ``l`` holds 8,000 and four when it holds two. :func:`cost_bound` reads
the parse tree once, when the condition is compiled, and gives a :class:`CostBound`:
two polynomials in the sizes of the context's top-level values (as the context
converter counts them: a string's length, 8 per value), one bounding the units
``+`` can build (characters, bytes, 8 per list element), one bounding the work
(one unit per operator, function or field evaluated, plus one per 8 units of the
values ``==``, ``!=``, ``in`` and the orderings compare). Both grow with each
comprehension: its body counts once per element of its list, at most one element per
8 units.

If a condition's bound on the largest accepted context (every top-level value at
``CONTEXT_MAX_BYTES``) is within ``EVALUATION_MAX_BUILT`` and ``EVALUATION_MAX_WORK``
(:mod:`.limits`), as for almost every condition, nothing is checked at evaluation.
Otherwise the bound is computed for each context before the condition runs (a few
microseconds), and a context that could take the condition over either limit fails it closed with a
``ConditionEvaluationError`` naming the limit, on every backend alike (cel-expr
has no way to stop an evaluation once started, and keeps every temporary value until
it ends).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lark import Tree

from ..exceptions import ConditionEvaluationError
from .limits import EVALUATION_MAX_BUILT, EVALUATION_MAX_WORK
from .safety import COMPREHENSION_MACROS, call_parts

__all__ = ["CostBound", "condition_cost", "cost_bound"]


#: Functions whose result is a bool, a number or a timestamp whatever their arguments.
_SMALL_RESULTS = frozenset(
    {
        "size", "contains", "startsWith", "endsWith", "matches", "has", "int", "uint",
        "double", "bool", "type", "timestamp", "duration", "all", "exists", "exists_one",
        "getDate", "getDayOfMonth", "getDayOfWeek", "getDayOfYear", "getFullYear",
        "getHours", "getMilliseconds", "getMinutes", "getMonth", "getSeconds",
    }
)  # fmt: skip

#: Functions that read the whole of their string arguments.
_SCANS = frozenset({"contains", "startsWith", "endsWith", "matches"})

_COMPARISONS = frozenset(
    {"relation_eq", "relation_ne", "relation_in", "relation_lt", "relation_le", "relation_gt",
     "relation_ge"}
)  # fmt: skip

#: Nodes with one child that still evaluate something.
_EVALUATED = frozenset(
    {"member_dot", "member_dot_arg", "ident_arg", "dot_ident", "dot_ident_arg", "list_lit",
     "map_lit", "unary_not", "unary_neg"}
)  # fmt: skip

#: A polynomial in the sizes of top-level context values: {(names...): coefficient}.
Polynomial = dict[tuple[str, ...], float]


def _const(value: float) -> Polynomial:
    return {(): value} if value else {}


def _add(*polynomials: Polynomial) -> Polynomial:
    total: Polynomial = {}
    for polynomial in polynomials:
        for term, coefficient in polynomial.items():
            total[term] = total.get(term, 0) + coefficient
    return total


def _scale(polynomial: Polynomial, factor: float) -> Polynomial:
    return {term: coefficient * factor for term, coefficient in polynomial.items()}


def _multiply(left: Polynomial, right: Polynomial) -> Polynomial:
    product: Polynomial = {}
    for left_term, left_coefficient in left.items():
        for right_term, right_coefficient in right.items():
            term = tuple(sorted(left_term + right_term))
            product[term] = product.get(term, 0) + left_coefficient * right_coefficient
    return product


def _value(polynomial: Polynomial, sizes: Mapping[str, int], default: int | None) -> float:
    total = 0.0
    for term, coefficient in polynomial.items():
        product = coefficient
        for name in term:
            product *= sizes.get(name, 0) if default is None else default
        total += product
    return total


@dataclass(frozen=True)
class CostBound:
    """What a condition may build and do, as polynomials in the top-level sizes.

    ``slowness`` divides the work limit: cel-python's interpreter, which runs the few
    constructs the transpiler leaves out, takes about 30 times as long per step.
    """

    built: Polynomial
    work: Polynomial
    slowness: int = 1

    @property
    def work_limit(self) -> int:
        return EVALUATION_MAX_WORK // self.slowness

    def check(self, expression: str, sizes: Mapping[str, int]) -> None:
        """Raise ``ConditionEvaluationError`` if this context could exceed a limit."""
        built = self.built_on(sizes)
        if built > EVALUATION_MAX_BUILT:
            raise ConditionEvaluationError(
                f"on this context the condition could build {int(built)} units of strings "
                f"or lists with +, more than the limit of {EVALUATION_MAX_BUILT}; + inside a "
                "macro copies its operands once per element",
                expression=expression,
            )
        work = self.work_on(sizes)
        if work > self.work_limit:
            raise ConditionEvaluationError(
                f"on this context the condition could take {int(work)} evaluation steps, "
                f"more than the limit of {self.work_limit}; a macro repeats its body (and the "
                "comparisons of lists in it) once per element",
                expression=expression,
            )

    def built_on(self, sizes: Mapping[str, int]) -> float:
        """The bound of what ``+`` builds on a context with these top-level sizes."""
        return _value(self.built, sizes, None)

    def work_on(self, sizes: Mapping[str, int]) -> float:
        """The bound of the work on a context with these top-level sizes."""
        return _value(self.work, sizes, None)

    def within_limits(self, context_max_bytes: int) -> bool:
        """Whether every context of at most ``context_max_bytes`` is within the limits."""
        return (
            _value(self.built, {}, context_max_bytes) <= EVALUATION_MAX_BUILT
            and _value(self.work, {}, context_max_bytes) <= self.work_limit
        )


#: (amortized, fixed) size of a value: what the macro variable contributes summed
#: over all elements, and the rest, per evaluation of the node.
_Size = tuple[Polynomial, Polynomial]
#: The macro a node is in: its variable, iterations and the variable's size.
_Scope = tuple[str, Polynomial, _Size] | None


def cost_bound(tree: Tree, context_max_bytes: int, slowness: int = 1) -> CostBound | None:
    """The bound of a parsed condition; ``None`` when the largest context is within limits."""
    bound = condition_cost(tree, slowness)
    return None if bound.within_limits(context_max_bytes) else bound


def condition_cost(tree: Tree, slowness: int = 1) -> CostBound:
    """The cost polynomials of a parsed condition (see the module docstring)."""
    built: list[Polynomial] = []
    work: list[Polynomial] = []

    def repeated(amortized: Polynomial, fixed: Polynomial, scope: _Scope) -> Polynomial:
        return _add(amortized, _multiply(scope[1], fixed) if scope is not None else fixed)

    def bound(node: Any, scope: _Scope) -> _Size:
        if not isinstance(node, Tree):
            return {}, {}
        children = [child for child in node.children if isinstance(child, Tree)]
        if len(children) != 1 or node.data in _EVALUATED:
            # One step per node that evaluates something (not the grammar's wrappers).
            work.append(repeated({}, _const(1), scope))
        if node.data in ("ident", "dot_ident"):
            if node.data == "ident" and scope is not None and str(node.children[0]) == scope[0]:
                return scope[2]
            return {}, {(str(node.children[0]),): 1}
        if node.data == "literal":
            return {}, _const(max(8, len(str(node.children[0]))))
        name, receiver, arguments = call_parts(node)
        if node.data == "member_dot_arg" and name in COMPREHENSION_MACROS and receiver is not None:
            variable = _macro_variable(arguments)
            if variable is not None and len(arguments) == 2:
                return macro(str(name), receiver, variable, arguments[1], scope)
        parts = [bound(child, scope) for child in children]
        amortized = _add(*(part[0] for part in parts))
        fixed = _add(*(part[1] for part in parts))
        if node.data == "addition" and len(children) == 2 and children[0].data == "addition_add":
            built.append(repeated(amortized, fixed, scope))
            return amortized, fixed
        if node.data == "relation" and len(children) == 2 and children[0].data in _COMPARISONS:
            work.append(repeated(_scale(amortized, 1 / 8), _scale(fixed, 1 / 8), scope))
            return {}, _const(8)
        if node.data in ("list_lit", "map_lit", "exprlist", "mapinits"):
            return amortized, _add(fixed, _const(8))
        if node.data in ("member_dot_arg", "ident_arg", "dot_ident_arg"):
            if name in _SCANS:  # each reads its strings once
                work.append(repeated(_scale(amortized, 1 / 8), _scale(fixed, 1 / 8), scope))
            if name in _SMALL_RESULTS:
                return {}, _const(8)
            if name == "string":  # a number or a timestamp as text: at most 32 characters
                return amortized, _add(fixed, _const(32))
        if len(parts) == 1 or node.data in (
            "member_dot",
            "member_index",
            "member_dot_arg",
            "ident_arg",
            "dot_ident_arg",
            "expr",
        ):
            # A part of a value, a function of its arguments, or either branch of ?: is
            # no larger than the values it is made of.
            return amortized, fixed
        return {}, _const(8)

    def macro(name: str, receiver: Tree, variable: str, body: Tree, scope: _Scope) -> _Size:
        over = bound(receiver, scope)
        size = _add(*over)
        items = _literal_items(receiver)
        # The variable takes each element once: over all elements, its sizes sum to
        # the size of the list.
        element: _Size = (size, {})
        if items is not None:
            iterations = _const(max(1, len(items)))
        else:
            iterations = _add(_scale(size, 1 / 8), _const(1))
        inner = bound(body, (variable, iterations, element))
        if name == "map":
            return inner[0], _multiply(iterations, inner[1])
        if name == "filter":
            return over
        return {}, _const(8)

    bound(tree, None)
    return CostBound(built=_add(*built), work=_add(*work), slowness=slowness)


def _macro_variable(arguments: list[Tree]) -> str | None:
    if not arguments:
        return None
    item: Any = arguments[0]
    while isinstance(item, Tree) and len(item.children) == 1 and item.data != "ident":
        item = item.children[0]
    if isinstance(item, Tree) and item.data == "ident":
        return str(item.children[0])
    return None


def _literal_items(node: Tree) -> list[Tree] | None:
    """The items of a list literal (the keys of a map literal) a subtree consists of."""
    item: Any = node
    while (
        isinstance(item, Tree)
        and len(item.children) == 1
        and item.data not in ("list_lit", "map_lit")
    ):
        item = item.children[0]
    if not isinstance(item, Tree) or item.data not in ("list_lit", "map_lit"):
        return None
    inner = item.children[0] if item.children else None
    if not isinstance(inner, Tree):
        return []
    values = [child for child in inner.children if isinstance(child, Tree)]
    return values if item.data == "list_lit" else values[0::2]
