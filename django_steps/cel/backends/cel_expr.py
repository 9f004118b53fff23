"""The "cel-expr" CEL backend: Google's CEL C++ runtime through ``cel-expr-python``.

Internal: selected by name through :func:`django_steps.cel.get_backend`.

Selected with ``DJANGO_STEPS = {"CEL_BACKEND": "cel-expr"}`` and installed with the
``django-steps[fast-cel]`` extra (``cel-expr-python`` and ``protobuf``, which carries
timestamps). A condition is first parsed by cel-python, so the length, depth and AST
safety checks are the same for both backends, then compiled by the C++ runtime
without type checking (context variables are not declared; types are checked when
the condition runs, as with cel-python). Evaluation takes a few microseconds instead
of a few hundred.

The context goes through the same :class:`~django_steps.cel.context.ContextConverter`
walk as for cel-python (same limits, same errors, same value mapping), into plain
Python values, with timestamps as ``google.protobuf.Timestamp`` messages: the C++
runtime accepts a ``datetime`` only for a declared variable, a Timestamp anywhere.
"""

from __future__ import annotations

import datetime
import re
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...exceptions import ConditionEvaluationError, ConditionSyntaxError
from ..context import ContextConverter
from ..limits import DEFAULT_LIMITS, CelLimits, shorten
from . import CelBackend, get_backend

if TYPE_CHECKING:
    from ..conditions import CompiledCondition

INSTALL_HINT = "install it with: pip install 'django-steps[fast-cel]'"

# "INVALID_ARGUMENT: ERROR: <input>:1:4: Syntax error: ..." -> line, column, message.
_COMPILE_ERROR = re.compile(r"<input>:(\d+):(\d+):\s*(.*)")
# "UNKNOWN: No matching overloads ..." -> the message after the status code.
_STATUS_PREFIX = re.compile(r"^[A-Z_]+:\s*")
_UNDEFINED = re.compile(r'No value with name "([^"]*)" found in Activation')


class _CelExprConverter(ContextConverter):
    """Context values as plain Python data, timestamps as protobuf Timestamps."""

    def __init__(self, limits: CelLimits, timestamp_class: Any):
        super().__init__(limits)
        self.timestamp_class = timestamp_class

    def make_timestamp(self, value: datetime.datetime) -> Any:
        timestamp = self.timestamp_class()
        timestamp.FromDatetime(value)
        return timestamp


class _Prepared:
    """A context prepared for cel-expr: the runtime's activation and the values' sizes."""

    __slots__ = ("activation", "sizes")

    def __init__(self, activation: Any, sizes: Mapping[str, int]) -> None:
        self.activation = activation
        self.sizes = sizes


class CelExprBackend(CelBackend):
    """cel-expr-python: conditions compiled once by the C++ runtime, evaluated natively."""

    name = "cel-expr"

    def __init__(self) -> None:
        try:
            from cel_expr_python import cel
        except ImportError as error:
            raise ImportError(
                f"The CEL backend 'cel-expr' needs the cel-expr-python package ({error}); "
                f"{INSTALL_HINT}."
            ) from error
        try:
            from google.protobuf import timestamp_pb2
        except ImportError as error:
            raise ImportError(
                "The CEL backend 'cel-expr' needs the protobuf package for timestamps "
                f"({error}); {INSTALL_HINT}."
            ) from error
        self._cel = cel
        self._environment = cel.NewEnv()
        # Compiling is rare (once per condition text) and the binding does not document
        # it as thread-safe, so it is serialised; evaluating compiled programs is.
        self._compile_lock = threading.Lock()
        self._timestamp_class = timestamp_pb2.Timestamp
        self._bool_type = cel.Type.BOOL
        self._error_type = cel.Type.ERROR

    def parse(self, expression: str) -> Any:
        # cel-python's parser, so both backends accept the same texts and the AST
        # safety checks (django_steps.cel.safety) read the same tree.
        return get_backend("celpy").parse(expression)

    def program(self, expression: str, ast: Any) -> Any:
        try:
            with self._compile_lock:
                return self._environment.compile(expression, disable_check=True)
        except RuntimeError as error:
            line, column, message = _compile_error_parts(str(error))
            where = f" at line {line}, column {column}" if line is not None else ""
            raise ConditionSyntaxError(
                f"Condition does not compile{where}: {message}",
                expression=shorten(expression),
                line=line,
                column=column,
            ) from None

    def prepare(self, context: Mapping[str, Any], limits: CelLimits = DEFAULT_LIMITS) -> Any:
        converter = _CelExprConverter(limits, self._timestamp_class)
        values = converter.convert_root(context)
        return _Prepared(self._environment.Activation(values), converter.sizes)

    def context_sizes(self, activation: Any) -> Mapping[str, int]:
        return activation.sizes

    def evaluate(self, condition: CompiledCondition, activation: Any) -> bool:
        try:
            result = condition.program.eval(activation.activation)
        except MemoryError:
            raise ConditionEvaluationError(
                "the condition ran out of memory", expression=condition.expression
            ) from None
        except (RuntimeError, TypeError, ValueError, ArithmeticError) as error:
            # RuntimeError includes RecursionError.
            raise ConditionEvaluationError(
                shorten(_first_line(str(error)), 300), expression=condition.expression
            ) from None
        value = result.value()
        if value is True or value is False:
            return value
        result_type = result.type()
        if result_type == self._error_type:
            raise ConditionEvaluationError(
                _evaluation_message(str(value)), expression=condition.expression
            )
        raise ConditionEvaluationError(
            f"the condition gave {_type_phrase(result_type.name())} {value!s}, not a bool",
            expression=condition.expression,
        )


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "error"


def _compile_error_parts(text: str) -> tuple[int | None, int | None, str]:
    match = _COMPILE_ERROR.search(text)
    if match is None:
        return None, None, shorten(_STATUS_PREFIX.sub("", _first_line(text)), 300)
    message = match.group(3).split("\n", 1)[0].strip()
    return int(match.group(1)), int(match.group(2)), shorten(message, 300)


def _evaluation_message(text: str) -> str:
    """One readable line, in the words cel-python's messages use where they overlap."""
    message = _STATUS_PREFIX.sub("", _first_line(text))
    undefined = _UNDEFINED.search(message)
    if undefined:
        return f"undefined variable {undefined.group(1)!r}"
    if message.startswith("No matching overloads found"):
        detail = message[len("No matching overloads found") :].lstrip(" :")
        message = f"no such overload: {_operands(detail)}" if detail else "no such overload"
    return shorten(message, 300)


_BINARY = re.compile(r"_(\W{1,2})_\(([\w.]+), ([\w.]+)\)\Z")
_CPP_TYPE_NAMES = {"int64": "int", "uint64": "uint"}


def _operands(detail: str) -> str:
    """``_+_(int64, string)`` as CEL writes it: ``int + string``."""
    match = _BINARY.match(detail)
    detail = re.sub(r"\b(u?int64)\b", lambda name: _CPP_TYPE_NAMES[name.group(1)], detail)
    if match is None:
        return detail
    left, right = (_CPP_TYPE_NAMES.get(name, name) for name in match.group(2, 3))
    return f"{left} {match.group(1)} {right}"


def _type_phrase(type_name: str) -> str:
    name = type_name.split("<", 1)[0].lower()
    phrases = {
        "int": "an int",
        "uint": "a uint",
        "double": "a double",
        "string": "a string",
        "list": "a list",
        "map": "a map",
        "bytes": "bytes",
        "null_type": "null",
        "timestamp": "a timestamp",
        "duration": "a duration",
    }
    return phrases.get(name, f"a {name}")
