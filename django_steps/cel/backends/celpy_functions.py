"""CEL's operators and macros for cel-python, as the specification defines them, on a budget.

Internal: the celpy backend (:mod:`django_steps.cel.backends.celpy`) uses these.

cel-python 0.5 departs from the CEL specification in ways that matter to a guard
(each case below is a cel-spec conformance case, see docs/cel.md):

- equality is not heterogeneous: ``1 == 1u``, ``1 != null``, ``[1.0, 2] == [1u, 2]``
  raise "no such overload" instead of giving a bool, so ``claim.amount != null``
  fails closed when ``amount`` is an int;
- int and uint do not compare, and int or uint against double compares exactly
  where the specification compares as doubles (``9223372036854775807 <
  9223372036854775808.0`` is false in CEL);
- ``in`` walks any iterable: ``"a" in "xa"`` is true (CEL: no such overload), and
  ``1 in [true]`` is true (CEL: false);
- ``x / 0.0`` is always infinity (CEL: NaN for ``0.0 / 0.0``, -infinity for a
  negative dividend);
- ``&&``, ``||`` and the ``all``/``exists`` macros copy both operands' text into a new
  error when both fail, so the message doubles with each error combined (28 failing
  list elements took 4 GB); non-bool operands are passed through as if they were
  bools, and ``exists_one`` counts any truthy value (``["false"].exists_one(v, v)``
  is true);
- ``string()`` of a list or map gives its Python ``repr`` (CEL: no such overload).

The functions here replace cel-python's for those operators, in both the
transpiled code and the interpreter (they are given to the activation as its
functions; :func:`run_macro` runs the macros for both). Error values keep a short
message in CEL's words and nothing of the operands.

Every evaluation also counts what it spends (:class:`Budget`), in the units of
:mod:`django_steps.cel.cost`: one per macro iteration and per element compared, one
per character or byte and 8 per list element ``+`` builds. That bound is checked
before a condition runs, so the count stays within it; it is a second line of
defence, should a construct cost more than the bound foresees: past
``EVALUATION_MAX_BUILT + EVALUATION_MAX_WORK`` units the evaluation stops with
:class:`BudgetExceeded`, which the backend turns into a ``ConditionEvaluationError``
(the guard fails closed).
"""

from __future__ import annotations

import math
import operator
import threading
from collections.abc import Callable, Iterable
from typing import Any, cast

from celpy import celtypes
from celpy.evaluation import CELEvalError

from ..limits import EVALUATION_MAX_BUILT, EVALUATION_MAX_WORK

__all__ = [
    "FUNCTIONS",
    "Budget",
    "BudgetExceeded",
    "cel_type_name",
    "end_budget",
    "no_overload",
    "run_macro",
    "start_budget",
]


class BudgetExceeded(BaseException):
    """An evaluation went over its budget.

    A ``BaseException``: cel-python and the generated code turn ``Exception``\\ s
    into CEL error values, which ``||`` or ``all()`` may absorb; running out of
    budget must end the whole evaluation instead.
    """


class Budget:
    """What one evaluation may still spend (units; see the module docstring)."""

    __slots__ = ("remaining",)

    def __init__(self, units: int = EVALUATION_MAX_BUILT + EVALUATION_MAX_WORK) -> None:
        self.remaining = units

    def spend(self, units: int) -> None:
        self.remaining -= units
        if self.remaining < 0:
            raise BudgetExceeded(
                "the condition went over its evaluation budget of "
                f"{EVALUATION_MAX_BUILT + EVALUATION_MAX_WORK} units (elements compared, "
                "strings and lists built)"
            )


class _State(threading.local):
    budget: Budget | None = None


#: The budget of the evaluation running in this thread. An evaluation never awaits,
#: so coroutines sharing a thread cannot interleave inside one.
_state = _State()


def start_budget() -> Budget | None:
    """Give the evaluation about to run in this thread a fresh budget; returns the previous.

    Pass the result to :func:`end_budget` when the evaluation ends.
    """
    previous = _state.budget
    _state.budget = Budget()
    return previous


def end_budget(previous: Budget | None) -> None:
    _state.budget = previous


def _spend(units: int) -> None:
    budget = _state.budget
    if budget is not None:
        budget.spend(units)


_TYPE_NAMES: dict[type, str] = {
    celtypes.BoolType: "bool",
    celtypes.IntType: "int",
    celtypes.UintType: "uint",
    celtypes.DoubleType: "double",
    celtypes.StringType: "string",
    celtypes.BytesType: "bytes",
    celtypes.ListType: "list",
    celtypes.MapType: "map",
    celtypes.TimestampType: "google.protobuf.Timestamp",
    celtypes.DurationType: "google.protobuf.Duration",
    type(None): "null_type",
}


def cel_type_name(value: Any) -> str:
    """The CEL name of a value's type (``int``, ``string``, ``list``, ``null_type`` ...)."""
    name = _TYPE_NAMES.get(type(value))
    if name is not None:
        return name
    for cel_type, cel_name in _TYPE_NAMES.items():
        if isinstance(value, cel_type):
            return cel_name
    if isinstance(value, CELEvalError):
        return "error"
    if isinstance(value, type):
        return "type"
    return type(value).__name__


def no_overload(symbol: str, *operands: Any) -> CELEvalError:
    """A short "no such overload" error naming the operator and the operand types."""
    types = [cel_type_name(operand) for operand in operands]
    if symbol == "_[_]" and len(types) == 2:
        shown = f"{types[0]}[{types[1]}]"
    elif len(types) == 2 and (symbol == "in" or not symbol.isidentifier()):
        shown = f"{types[0]} {symbol} {types[1]}"
    else:
        shown = f"{symbol}({', '.join(types)})"
    return CELEvalError(f"no such overload: {shown}", TypeError, None)


# --- numbers --------------------------------------------------------------------------

_INTEGERS = (celtypes.IntType, celtypes.UintType)
_NUMBERS = (celtypes.IntType, celtypes.UintType, celtypes.DoubleType)
_INT64_MAX_AS_DOUBLE = float(2**63)
_UINT64_MAX_AS_DOUBLE = float(2**64)


def _is_number(value: Any) -> bool:
    return isinstance(value, _NUMBERS) and not isinstance(value, celtypes.BoolType)


def _compare_numbers(left: Any, right: Any) -> int | None:
    """-1, 0 or 1 as CEL orders two numbers of any of int, uint and double; None for NaN.

    Integers compare exactly; an integer and a double compare as doubles unless the
    double lies beyond the integer type's range (the rule of cel-go and cel-cpp).
    """
    if isinstance(left, celtypes.DoubleType) and isinstance(right, celtypes.DoubleType):
        if math.isnan(left) or math.isnan(right):
            return None
        return (left > right) - (left < right)
    if isinstance(left, celtypes.DoubleType):
        flipped = _compare_numbers(right, left)
        return None if flipped is None else -flipped
    if not isinstance(right, celtypes.DoubleType):
        return (int(left) > int(right)) - (int(left) < int(right))
    double = float(right)
    if math.isnan(double):
        return None
    if isinstance(left, celtypes.UintType):
        if double < 0:
            return 1
        if double > _UINT64_MAX_AS_DOUBLE:
            return -1
    else:
        if double < -_INT64_MAX_AS_DOUBLE:
            return 1
        if double > _INT64_MAX_AS_DOUBLE:
            return -1
    as_double = float(left)
    return (as_double > double) - (as_double < double)


# --- equality and ordering ------------------------------------------------------------

_SIMPLE = frozenset(
    {
        celtypes.BoolType,
        celtypes.IntType,
        celtypes.UintType,
        celtypes.StringType,
        celtypes.BytesType,
    }
)


_SIMPLE_EQUALS: dict[type, Callable[[Any, Any], Any]] = {
    celtypes.BoolType: int.__eq__,
    celtypes.IntType: int.__eq__,
    celtypes.UintType: int.__eq__,
    celtypes.StringType: str.__eq__,
    celtypes.BytesType: bytes.__eq__,
}


def _key(value: Any) -> Any:
    """A dict key under which CEL-equal map keys (``1``, ``1u``, ``1.0``) coincide."""
    if _is_number(value):
        return ("number", float(value) if isinstance(value, celtypes.DoubleType) else int(value))
    return (cel_type_name(value), value)


def _equal(left: Any, right: Any) -> bool:
    """CEL's heterogeneous equality of two values (neither an error)."""
    kind = type(left)
    if kind is type(right) and kind in _SIMPLE:
        return bool(_SIMPLE_EQUALS[kind](left, right))
    if _is_number(left) and _is_number(right):
        return _compare_numbers(left, right) == 0
    if isinstance(left, celtypes.ListType) and isinstance(right, celtypes.ListType):
        if len(left) != len(right):
            return False
        _spend(len(left))
        return all(_equal(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, celtypes.MapType) and isinstance(right, celtypes.MapType):
        if len(left) != len(right):
            return False
        _spend(len(left) + len(right))
        others = {_key(key): value for key, value in right.items()}
        for key, value in left.items():
            other = others.get(_key(key), _MISSING)
            if other is _MISSING or not _equal(value, other):
                return False
        return True
    if left is None or right is None:
        return left is None and right is None
    if cel_type_name(left) != cel_type_name(right):
        return False
    try:
        return bool(left == right)
    except TypeError:
        return False


_MISSING = object()


_BOOL = celtypes.BoolType
#: The types whose values of one type compare as their Python base values.
_BASES: dict[type, type] = {
    celtypes.IntType: int,
    celtypes.UintType: int,
    celtypes.DoubleType: float,
    celtypes.StringType: str,
}
_BASE_EQUALS: dict[type, Callable[[Any, Any], Any]] = {
    celtypes.IntType: int.__eq__,
    celtypes.UintType: int.__eq__,
    celtypes.DoubleType: float.__eq__,
    celtypes.StringType: str.__eq__,
}
_TRUE = celtypes.BoolType(True)
_FALSE = celtypes.BoolType(False)


def _equals(left: Any, right: Any) -> Any:
    kind = type(left)
    if kind is type(right) and kind in _BASE_EQUALS:
        # Two values of one of these types: their base type's equality (NaN != NaN).
        return int.__new__(_BOOL, _BASE_EQUALS[kind](left, right) is True)
    if isinstance(left, CELEvalError):
        return left
    if isinstance(right, CELEvalError):
        return right
    return celtypes.BoolType(_equal(left, right))


def _not_equals(left: Any, right: Any) -> Any:
    kind = type(left)
    if kind is type(right) and kind in _BASE_EQUALS:
        return int.__new__(_BOOL, _BASE_EQUALS[kind](left, right) is not True)
    if isinstance(left, CELEvalError):
        return left
    if isinstance(right, CELEvalError):
        return right
    return celtypes.BoolType(not _equal(left, right))


_ORDERED = (
    celtypes.StringType,
    celtypes.BytesType,
    celtypes.BoolType,
    celtypes.TimestampType,
    celtypes.DurationType,
)


def _ordering(symbol: str, test: Callable[[int], bool], name: str) -> Callable[[Any, Any], Any]:
    """``symbol`` as CEL orders values; ``name`` is its Python method (``lt`` ...)."""
    fast = {kind: getattr(base, f"__{name}__") for kind, base in _BASES.items()}

    def compare(left: Any, right: Any) -> Any:
        kind = type(left)
        if kind is type(right) and kind in fast:
            # The base type's comparison (false for NaN, as CEL's).
            return int.__new__(_BOOL, fast[kind](left, right) is True)
        if isinstance(left, CELEvalError):
            return left
        if isinstance(right, CELEvalError):
            return right
        if _is_number(left) and _is_number(right):
            order = _compare_numbers(left, right)
            return celtypes.BoolType(order is not None and test(order))
        if kind is type(right) and isinstance(left, _ORDERED):
            # The Python base type's own comparison (bool as int, bytes, str, ...).
            order = (left > right) - (left < right)
            return celtypes.BoolType(test(order))
        return no_overload(symbol, left, right)

    return compare


def _contains(item: Any, container: Any) -> Any:
    """``item in container``: list membership by CEL equality, map keys likewise."""
    if isinstance(item, CELEvalError):
        return item
    if isinstance(container, CELEvalError):
        return container
    if isinstance(container, celtypes.ListType):
        _spend(len(container))
        kind = type(item)
        same = _BASE_EQUALS.get(kind)
        if same is not None:
            for member in container:
                if type(member) is kind:
                    if same(item, member) is True:
                        return _TRUE
                elif _equal(item, member):
                    return _TRUE
            return _FALSE
        return celtypes.BoolType(any(_equal(item, member) for member in container))
    if isinstance(container, celtypes.MapType):
        if type(item) is celtypes.StringType:  # a string key equals only a string
            return celtypes.BoolType(dict.__contains__(container, item))
        _spend(len(container))
        wanted = _key(item)
        return celtypes.BoolType(any(_key(key) == wanted for key in container))
    return no_overload("in", item, container)


# --- logic ----------------------------------------------------------------------------


def _is_bool(value: Any) -> bool:
    return isinstance(value, celtypes.BoolType)


def _as_error(symbol: str, value: Any) -> CELEvalError:
    return value if isinstance(value, CELEvalError) else no_overload(symbol, value)


def _and(left: Any, right: Any) -> Any:
    """``&&``: false if either side is false, else an error if either is not a bool."""
    if type(left) is _BOOL is type(right):
        return left if not left else right
    if _is_bool(left) and _is_bool(right):
        return celtypes.BoolType(bool(left) and bool(right))
    if (_is_bool(left) and not left) or (_is_bool(right) and not right):
        return celtypes.BoolType(False)
    return _as_error("&&", right if _is_bool(left) else left)


def _or(left: Any, right: Any) -> Any:
    """``||``: true if either side is true, else an error if either is not a bool."""
    if type(left) is _BOOL is type(right):
        return left if left else right
    if _is_bool(left) and _is_bool(right):
        return celtypes.BoolType(bool(left) or bool(right))
    if (_is_bool(left) and left) or (_is_bool(right) and right):
        return celtypes.BoolType(True)
    return _as_error("||", right if _is_bool(left) else left)


def _not(value: Any) -> Any:
    if isinstance(value, CELEvalError):
        return value
    if _is_bool(value):
        return celtypes.BoolType(not value)
    return no_overload("!", value)


def _conditional(condition: Any, when_true: Any, when_false: Any) -> Any:
    if isinstance(condition, CELEvalError):
        return condition
    if not _is_bool(condition):
        return no_overload("_?_:_", condition)
    return when_true if condition else when_false


# --- values that grow -----------------------------------------------------------------


def _add(left: Any, right: Any) -> Any:
    if isinstance(left, CELEvalError):
        return left
    if isinstance(right, CELEvalError):
        return right
    if isinstance(left, celtypes.ListType) and isinstance(right, celtypes.ListType):
        _spend(8 * (len(left) + len(right)))
        return celtypes.ListType(list.__add__(left, right))
    if type(left) is type(right) is celtypes.StringType:
        _spend(len(left) + len(right))
        return celtypes.StringType(str.__add__(left, right))
    if type(left) is type(right) is celtypes.BytesType:
        _spend(len(left) + len(right))
        return celtypes.BytesType(bytes.__add__(left, right))
    return operator.add(left, right)


def _divide(left: Any, right: Any) -> Any:
    if isinstance(left, celtypes.DoubleType) and isinstance(right, celtypes.DoubleType):
        if right == 0.0:
            if left == 0.0 or math.isnan(left):
                return celtypes.DoubleType(math.nan)
            sign = math.copysign(1.0, left) * math.copysign(1.0, right)
            return celtypes.DoubleType(math.copysign(math.inf, sign))
        return celtypes.DoubleType(float(left) / float(right))
    return operator.truediv(left, right)


_STRINGABLE = (
    celtypes.StringType,
    celtypes.IntType,
    celtypes.UintType,
    celtypes.DoubleType,
    celtypes.BoolType,
    celtypes.BytesType,
    celtypes.TimestampType,
    celtypes.DurationType,
)


def _string(value: Any) -> Any:
    """``string()``: only the conversions CEL defines (not lists, maps or null)."""
    if isinstance(value, CELEvalError):
        return value
    if not isinstance(value, _STRINGABLE):
        return no_overload("string", value)
    if isinstance(value, celtypes.BoolType):
        return celtypes.StringType("true" if value else "false")
    return celtypes.StringType(cast(Any, value))


# --- macros ---------------------------------------------------------------------------


def run_macro(macro: str, values: Any, each: Callable[[Any], Any]) -> Any:
    """``values.<macro>(v, body)`` with ``each(value)`` evaluating the body for one value.

    ``all`` and ``exists`` give their answer as soon as one element decides it, so an
    error on another element does not matter (the specification's rule); otherwise
    the first error (or non-bool) is the result. ``exists_one``, ``filter`` and ``map``
    end with the first error. ``each`` may return an error value or raise
    ``CELEvalError``. Every element costs one unit of the budget.
    """
    if isinstance(values, CELEvalError):
        return values
    if not isinstance(values, celtypes.ListType | celtypes.MapType):
        return no_overload(macro, values)
    budget = _state.budget

    def results() -> Iterable[Any]:
        for value in values:
            if budget is not None:
                budget.spend(1)
            try:
                yield value, each(value)
            except CELEvalError as error:
                yield value, error

    if macro in ("all", "exists"):
        deciding = macro == "exists"
        failure: Any = None
        for _, result in results():
            if _is_bool(result):
                if bool(result) is deciding:
                    return celtypes.BoolType(deciding)
            elif failure is None:
                failure = _as_error(macro, result)
        return failure if failure is not None else celtypes.BoolType(not deciding)
    if macro == "exists_one":
        count = 0
        for _, result in results():
            if not _is_bool(result):
                return _as_error(macro, result)
            count += bool(result)
        return celtypes.BoolType(count == 1)
    kept: list[Any] = []
    for value, result in results():
        if isinstance(result, CELEvalError):
            return result
        if macro == "map":
            kept.append(result)
        elif not _is_bool(result):
            return no_overload(macro, result)
        elif result:
            kept.append(value)
    return celtypes.ListType(kept)


#: The functions given to every cel-python activation (see the module docstring).
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "_==_": _equals,
    "_!=_": _not_equals,
    "_<_": _ordering("<", lambda order: order < 0, "lt"),
    "_<=_": _ordering("<=", lambda order: order <= 0, "le"),
    "_>_": _ordering(">", lambda order: order > 0, "gt"),
    "_>=_": _ordering(">=", lambda order: order >= 0, "ge"),
    "_in_": _contains,
    "_&&_": _and,
    "_||_": _or,
    "!_": _not,
    "_?_:_": _conditional,
    "_+_": _add,
    "_/_": _divide,
    "string": _string,
}
