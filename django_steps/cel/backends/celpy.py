"""The "celpy" CEL backend (the default): cel-python, each condition transpiled once.

Internal: selected by name through :func:`django_steps.cel.get_backend`.

Equality, ordering, ``in``, the logical operators and the macros follow the CEL
specification, which cel-python 0.5 does not on several points; every evaluation
runs on a budget. Both are in :mod:`.celpy_functions`.
"""

from __future__ import annotations

import datetime
import re
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import celpy
import celpy.evaluation
from celpy import celtypes
from celpy.celparser import CELParseError
from celpy.evaluation import Activation, Evaluator

from ...exceptions import ConditionEvaluationError, ConditionSyntaxError
from ..context import ContextConverter
from ..limits import DEFAULT_LIMITS, CelLimits, shorten
from ..quoted_fields import rewrite
from . import CelBackend
from .celpy_functions import (
    FUNCTIONS,
    BudgetExceeded,
    cel_type_name,
    end_budget,
    run_macro,
    start_budget,
)
from .celpy_transpiler import (
    _MACROS,
    OPERATOR_SYMBOLS,
    PreparedContext,
    UnsafeSourceError,
    nested_activation,
    transpile,
)

if TYPE_CHECKING:
    from ..conditions import CompiledCondition

__all__ = ["CelPythonBackend"]


class CelPythonBackend(CelBackend):
    """cel-python (``celpy``), each condition transpiled to a Python function once.

    :func:`~django_steps.cel.backends.celpy_transpiler.transpile` compiles a condition (and
    checks the code it generates); the few constructs it leaves out run with
    cel-python's interpreter. Both are thread-safe, use the operators of
    :mod:`.celpy_functions` and give the same results.
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
        # Backtick-quoted field names become indexes cel-python's grammar can read.
        rewritten = rewrite(expression)
        try:
            ast = environment.compile(rewritten.text)
        except CELParseError as error:
            message = str(error.args[0]).splitlines()[0] if error.args else "syntax error"
            where = ""
            column = error.column
            if error.line is not None and column is not None:
                column = rewritten.original_column(error.line, column)
                where = f" at line {error.line}, column {column}"
                if rewritten.shifts:  # cel-python shows the line it read: show the original
                    message = expression.splitlines()[error.line - 1].strip()
            raise ConditionSyntaxError(
                f"Condition does not parse{where}: {message}",
                expression=shorten(expression),
                line=error.line,
                column=column,
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
            program = transpile(environment, ast, FUNCTIONS)
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
            program = _InterpretedProgram(environment, ast)
        return program

    def prepare(self, context: Mapping[str, Any], limits: CelLimits = DEFAULT_LIMITS) -> Any:
        converter = _CelPyConverter(limits)
        return PreparedContext(converter.convert_root(context), converter.sizes)

    def context_sizes(self, activation: Any) -> Mapping[str, int]:
        return activation.sizes

    def slowness(self, program: Any) -> int:
        # cel-python's interpreter takes about 30 times as long per step (measured).
        return 30 if isinstance(program, _InterpretedProgram) else 1

    def evaluate(self, condition: CompiledCondition, activation: Any) -> bool:
        previous = start_budget()
        try:
            result = condition.program.evaluate(activation)
        except celpy.CELEvalError as error:
            raise _evaluation_error(condition.expression, error) from None
        except BudgetExceeded as error:
            raise ConditionEvaluationError(str(error), expression=condition.expression) from None
        except RecursionError:
            raise ConditionEvaluationError(
                "evaluation nested too deeply", expression=condition.expression
            ) from None
        except MemoryError:
            raise ConditionEvaluationError(
                "the condition ran out of memory", expression=condition.expression
            ) from None
        except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as error:
            # cel-python lets some Python errors escape (e.g. on unusual overloads).
            raise ConditionEvaluationError(
                _readable(f"{type(error).__name__}: {error}"), expression=condition.expression
            ) from None
        finally:
            end_budget(previous)
        if isinstance(result, celpy.CELEvalError):
            raise _evaluation_error(condition.expression, result)
        if not isinstance(result, celtypes.BoolType):
            raise ConditionEvaluationError(
                f"the condition gave {_cel_type_name(result)} {_shown(result)}, not a bool",
                expression=condition.expression,
            )
        return bool(result)


class _MacroEvaluator(Evaluator):
    """cel-python's interpreter for a macro's body: each element binds its variable in a
    child activation instead of a copy of the whole context."""

    def sub_evaluator(self, ast: Any) -> Evaluator:
        return _MacroEvaluator(ast, activation=self.activation)

    def set_activation(self, values: Any) -> Evaluator:
        ((name, value),) = values.items()
        self.activation = nested_activation(self.base_activation, name, value)
        return self

    def member_dot_arg(self, tree: Any) -> Any:
        name = str(tree.children[1])
        if name not in _MACROS:
            return super().member_dot_arg(tree)
        # The interpreter's own body evaluator (errors as values), run as the generated
        # code runs macros: the specification's rules, on the budget.
        return run_macro(name, self.visit(tree.children[0]), self.build_ss_macro_eval(tree))


class _Evaluator(_MacroEvaluator):
    """cel-python's interpreter with the macros of :func:`run_macro`."""

    def set_activation(self, values: Any) -> Evaluator:
        return Evaluator.set_activation(self, values)

    def sub_evaluator(self, ast: Any) -> Evaluator:
        return _MacroEvaluator(ast, activation=self.activation)


class _InterpretedProgram:
    """A condition the transpiler leaves out, run by cel-python's interpreter."""

    def __init__(self, environment: celpy.Environment, ast: Any) -> None:
        self._environment = environment
        self._ast = ast

    def evaluate(self, context: Mapping[str, Any]) -> Any:
        activation = Activation(
            package=self._environment.package,
            annotations=self._environment.annotations,
            functions=FUNCTIONS,
        )
        return _Evaluator(ast=self._ast, activation=activation).evaluate(dict(context))


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
    return ConditionEvaluationError(_readable(raw), expression=expression)


#: "found no matching overload for 'relation_lt' applied to '(<class ...>, ...)'"
_INTERPRETER_OVERLOAD = re.compile(
    r"found no matching overload for '?([\w_|&?:!\[\]-]+)'? applied to '\((.*)\)'"
)
_CLASS = re.compile(r"<class 'celpy\.celtypes\.(\w+)'>")
_REPR = re.compile(r"\b(?:Int|Uint|Double|String|Bool|Bytes)Type\(((?:[^()]|\([^()]*\))*)\)")
_INTERPRETER_NODES = {
    "relation_lt": "<",
    "relation_le": "<=",
    "relation_gt": ">",
    "relation_ge": ">=",
    "relation_eq": "==",
    "relation_ne": "!=",
    "relation_in": "in",
    "addition_add": "+",
    "addition_sub": "-",
    "multiplication_mul": "*",
    "multiplication_div": "/",
    "multiplication_mod": "%",
    "unary_not": "!",
    "unary_neg": "-",
}
_CLASS_NAMES = {
    getattr(celtypes, name).__name__: cel_type_name(getattr(celtypes, name)(*arguments))
    for name, arguments in (
        ("BoolType", (False,)),
        ("IntType", (0,)),
        ("UintType", (0,)),
        ("DoubleType", (0.0,)),
        ("StringType", ("",)),
        ("BytesType", (b"",)),
        ("ListType", ()),
        ("MapType", ()),
    )
}


def _readable(message: str) -> str:
    """A message in CEL's words: operators and type names, no cel-python class names."""

    def overload(match: re.Match[str]) -> str:
        node = match.group(1)
        symbol = _INTERPRETER_NODES.get(node) or OPERATOR_SYMBOLS.get(node, node)
        types = [_class_name(part.strip()) for part in match.group(2).split(",") if part.strip()]
        if len(types) == 2:
            return f"no such overload: {types[0]} {symbol} {types[1]}"
        return f"no such overload: {symbol}({', '.join(types)})"

    message = _INTERPRETER_OVERLOAD.sub(overload, message)
    message = _CLASS.sub(lambda match: _CLASS_NAMES.get(match.group(1), match.group(1)), message)
    message = _REPR.sub(r"\1", message)
    return shorten(message, 300)


def _class_name(text: str) -> str:
    match = _CLASS.fullmatch(text)
    if match is None:
        return "null_type" if text == "<class 'NoneType'>" else text
    return _CLASS_NAMES.get(match.group(1), match.group(1))


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
