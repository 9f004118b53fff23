"""The "celpy" CEL backend (the default): cel-python, each condition transpiled once.

Internal: selected by name through :func:`django_steps.cel.get_backend`.

Comparisons between int, uint and double follow the CEL specification, which
cel-python 0.5 does not (its issue 114); see :func:`_numeric_comparison`.
"""

from __future__ import annotations

import datetime
import operator
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import celpy
import celpy.evaluation
from celpy import celtypes
from celpy.celparser import CELParseError

from ...exceptions import ConditionEvaluationError, ConditionSyntaxError
from ..context import ContextConverter
from ..limits import DEFAULT_LIMITS, CelLimits, shorten
from . import CelBackend
from .celpy_transpiler import PreparedContext, UnsafeSourceError, transpile

if TYPE_CHECKING:
    from ..conditions import CompiledCondition

__all__ = ["CelPythonBackend"]


_NUMBERS = (celtypes.IntType, celtypes.UintType, celtypes.DoubleType)
_SAME_TYPE_SHORTCUT = frozenset(
    {celtypes.IntType, celtypes.UintType, celtypes.DoubleType, celtypes.StringType}
)


def _numeric_comparison(compare: Callable[[Any, Any], Any]) -> Callable[..., Any]:
    """A CEL comparison that also compares an int or uint with a double.

    The CEL specification orders and equates numbers across int, uint and double;
    cel-python 0.5 raises "no such overload" instead (its issue 114), so
    ``claim.amount > 10000`` failed when ``amount`` came from a ``Decimal``. Python
    compares int and float exactly, so the promotion loses nothing.
    """
    # Otherwise cel-python's own comparison: its bool_lt and the others build
    # ``boolean(operator.lt)`` (copying metadata with functools.wraps) on every call,
    # so the same wrapper is built once here.
    original = celpy.evaluation.boolean(compare)

    def comparison(left: Any, right: Any) -> Any:
        kind = type(left)
        if kind is type(right) and kind in _SAME_TYPE_SHORTCUT:
            # What ``original`` gives for two values of one of these types (their
            # operators return a bool or raise), without its checks for error values.
            return int.__new__(celtypes.BoolType, bool(compare(left, right)))
        if (
            isinstance(left, _NUMBERS)
            and isinstance(right, _NUMBERS)
            and isinstance(left, celtypes.DoubleType) != isinstance(right, celtypes.DoubleType)
        ):
            return celtypes.BoolType(compare(_plain_number(left), _plain_number(right)))
        return original(left, right)

    return comparison


def _plain_number(value: Any) -> int | float:
    return float(value) if isinstance(value, celtypes.DoubleType) else int(value)


_CROSS_TYPE_COMPARISONS = {
    name: _numeric_comparison(compare)
    for name, compare in (
        ("_<_", operator.lt),
        ("_<=_", operator.le),
        ("_>_", operator.gt),
        ("_>=_", operator.ge),
        ("_==_", operator.eq),
        ("_!=_", operator.ne),
    )
}


class CelPythonBackend(CelBackend):
    """cel-python (``celpy``), each condition transpiled to a Python function once.

    :func:`~django_steps.cel.backends.celpy_transpiler.transpile` compiles a condition (and
    checks the code it generates); the few constructs it leaves out run with
    cel-python's interpreter. Both are thread-safe and give the same results.
    Comparisons between int, uint and double follow the CEL specification (see
    :func:`_numeric_comparison`), as in the cel-expr backend.
    """

    name = "celpy"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._environment: celpy.Environment | None = None

    @property
    def environment(self) -> celpy.Environment:
        # celpy.Environment() raises the interpreter's recursion limit as a side effect,
        # so it is built once, on first use, never at import time.
        if self._environment is None:
            with self._lock:
                if self._environment is None:
                    self._environment = celpy.Environment()
        return self._environment

    def parse(self, expression: str) -> Any:
        environment = self.environment
        try:
            ast = environment.compile(expression)
        except CELParseError as error:
            message = str(error.args[0]).splitlines()[0] if error.args else "syntax error"
            where = ""
            if error.line is not None:
                where = f" at line {error.line}, column {error.column}"
            raise ConditionSyntaxError(
                f"Condition does not parse{where}: {message}",
                expression=shorten(expression),
                line=error.line,
                column=error.column,
            ) from None
        except RecursionError:
            raise ConditionSyntaxError(
                "Condition is nested too deeply to parse.", expression=shorten(expression)
            ) from None
        return ast

    def program(self, expression: str, ast: Any) -> Any:
        environment = self.environment
        program: Any
        try:
            program = transpile(environment, ast, _CROSS_TYPE_COMPARISONS)
        except (
            SyntaxError,  # Python's parser nests less deeply than the condition's tree
            RecursionError,
            UnsafeSourceError,
            celpy.evaluation.CELSyntaxError,
            celpy.evaluation.CELUnsupportedError,
        ):
            # The interpreter runs it without generating code, as it always did.
            program = None
        if program is None:
            program = environment.program(ast, functions=_CROSS_TYPE_COMPARISONS)
        return program

    def prepare(self, context: Mapping[str, Any], limits: CelLimits = DEFAULT_LIMITS) -> Any:
        return PreparedContext(_CelPyConverter(limits).convert_root(context))

    def evaluate(self, condition: CompiledCondition, activation: Any) -> bool:
        try:
            result = condition.program.evaluate(activation)
        except celpy.CELEvalError as error:
            raise _evaluation_error(condition.expression, error) from None
        except RecursionError:
            raise ConditionEvaluationError(
                "evaluation nested too deeply", expression=condition.expression
            ) from None
        except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as error:
            # cel-python lets some Python errors escape (e.g. on unusual overloads).
            raise ConditionEvaluationError(
                f"{type(error).__name__}: {error}", expression=condition.expression
            ) from None
        if isinstance(result, celpy.CELEvalError):
            raise _evaluation_error(condition.expression, result)
        if not isinstance(result, celtypes.BoolType):
            raise ConditionEvaluationError(
                f"the condition gave {_cel_type_name(result)} {_shown(result)}, not a bool",
                expression=condition.expression,
            )
        return bool(result)


def _shown(value: Any) -> str:
    """A short text for a result, even one cel-python cannot print.

    cel-python's ``str`` fails (``IndexError`` in its tree dump) on values holding an
    evaluation error, e.g. the map built by ``{x: x + []}``.
    """
    try:
        return shorten(str(value), 100)
    except Exception:
        return "(a value that cannot be shown)"


def _cel_type_name(value: Any) -> str:
    names = {
        celtypes.IntType: "an int",
        celtypes.UintType: "a uint",
        celtypes.DoubleType: "a double",
        celtypes.StringType: "a string",
        celtypes.ListType: "a list",
        celtypes.MapType: "a map",
        celtypes.BytesType: "bytes",
    }
    for cel_type, name in names.items():
        if isinstance(value, cel_type):
            return name
    return "null" if value is None else f"a {type(value).__name__}"


def _evaluation_error(expression: str, error: Exception) -> ConditionEvaluationError:
    """cel-python's messages embed the whole activation; keep the first clause only."""
    raw = str(error.args[0]) if error.args else type(error).__name__
    raw = raw.split(" (in activation", 1)[0]
    raw = raw.replace("undeclared reference to", "undefined variable")
    if "no matching overload" in raw and len(error.args) > 2 and error.args[2]:
        detail = str(error.args[2][0]) if isinstance(error.args[2], tuple) else str(error.args[2])
        raw = f"no matching overload: {detail}"
    return ConditionEvaluationError(shorten(raw, 300), expression=expression)


class _CelPyConverter(ContextConverter):
    """Context values as cel-python's ``celtypes``.

    The values are built as the ``celtypes`` constructors build them from these
    arguments (the walk only passes a bool, an int within 64 bits, a finite float, a
    str, an aware datetime, a dict or a list), without the checks those constructors
    run for other arguments: ``IntType(1)`` alone copies a wrapper's metadata with
    functools.wraps. The tests compare both ways for each constructor.
    """

    def make_bool(self, value: bool) -> Any:
        return int.__new__(celtypes.BoolType, value)

    def make_int(self, value: int) -> Any:
        return int.__new__(celtypes.IntType, int(value))

    def make_double(self, value: float) -> Any:
        return float.__new__(celtypes.DoubleType, value)

    def make_string(self, value: str) -> Any:
        return str.__new__(celtypes.StringType, value)

    def make_timestamp(self, value: datetime.datetime) -> Any:
        return celtypes.TimestampType(value)

    def make_map(self, items: dict[Any, Any]) -> Any:
        mapping = celtypes.MapType()
        dict.update(mapping, items)
        return mapping

    def make_list(self, items: list[Any]) -> Any:
        return celtypes.ListType(items)
