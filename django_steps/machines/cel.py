"""CEL conditions: compile once, evaluate against a converted context, fail closed.

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

import datetime
import decimal
import functools
import math
import operator
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import celpy
import celpy.evaluation
from celpy import celtypes
from celpy.celparser import CELParseError

from ..exceptions import ConditionEvaluationError, ConditionSyntaxError, ContextError
from .celpy_compiled import PreparedContext, UnsafeSourceError, transpile


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


def _check_text(expression: str, limits: CelLimits) -> None:
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
            expression=_shorten(expression),
            line=line,
            column=column,
        ) from None
    if len(expression) > limits.max_length:
        raise ConditionSyntaxError(
            f"Condition is {len(expression)} characters long; the limit is "
            f"{limits.max_length} (setting CONDITION_MAX_LENGTH).",
            expression=_shorten(expression),
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
                    expression=_shorten(expression),
                    line=line,
                    column=column,
                )


def _shorten(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True, eq=False)
class CompiledCondition:
    """A compiled condition; call :meth:`evaluate` with a converted context."""

    expression: str
    program: Any
    backend: CelBackend

    def evaluate(self, activation: Any) -> bool:
        """Evaluate against a context prepared by :meth:`CelBackend.prepare`.

        Returns ``True`` or ``False``; raises ``ConditionEvaluationError`` when the
        condition fails or yields something other than a bool.
        """
        return self.backend.evaluate(self, activation)


class CelBackend:
    """A CEL implementation. Subclasses compile texts and evaluate programs."""

    name = ""

    def parse(self, expression: str) -> Any:  # pragma: no cover - interface
        """Parse a condition text; ``ConditionSyntaxError`` with line and column.

        The result is what the AST safety checks read (a cel-python tree).
        """
        raise NotImplementedError

    def program(self, expression: str, ast: Any) -> Any:  # pragma: no cover - interface
        """Turn a parsed, checked condition (text and tree) into what :meth:`evaluate` runs."""
        raise NotImplementedError

    def prepare(self, context: Mapping[str, Any], limits: CelLimits = DEFAULT_LIMITS) -> Any:
        """Convert ``context_data`` once per update into the backend's activation."""
        raise NotImplementedError  # pragma: no cover - interface

    def evaluate(self, condition: CompiledCondition, activation: Any) -> bool:
        raise NotImplementedError  # pragma: no cover - interface


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

    :func:`~django_steps.machines.celpy_compiled.transpile` compiles a condition (and
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
                expression=_shorten(expression),
                line=error.line,
                column=error.column,
            ) from None
        except RecursionError:
            raise ConditionSyntaxError(
                "Condition is nested too deeply to parse.", expression=_shorten(expression)
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
        return _shorten(str(value), 100)
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
    return ConditionEvaluationError(_shorten(raw, 300), expression=expression)


class ContextConverter:
    """Explicit, limited conversion of plain Python data into a backend's values.

    The checks (key types, size, depth, 64-bit ints, finite decimals) and the value
    mapping are the same for every backend: Decimal becomes a double, a naive
    datetime is taken as UTC, a date becomes midnight UTC, a UUID its string. A
    backend subclasses this and builds its own value for each CEL type.
    """

    def __init__(self, limits: CelLimits):
        self.limits = limits
        self.size = 0
        self._max_bytes = limits.context_max_bytes
        self._max_depth = limits.context_max_depth

    # --- the backend's values (overridden) -----------------------------------------

    def make_bool(self, value: bool) -> Any:
        return value

    def make_int(self, value: int) -> Any:
        return value

    def make_double(self, value: float) -> Any:
        return value

    def make_string(self, value: str) -> Any:
        return value

    def make_timestamp(self, value: datetime.datetime) -> Any:
        return value

    def make_map(self, items: dict[Any, Any]) -> Any:
        return items

    def make_list(self, items: list[Any]) -> Any:
        return items

    # --- the shared walk -----------------------------------------------------------

    def convert_root(self, context: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(context, Mapping):
            raise ContextError(
                f"context_data must be a dict, not {type(context).__name__}.", path=""
            )
        return {
            self._key(key, ""): self.convert(value, str(key), 1) for key, value in context.items()
        }

    def _key(self, key: Any, path: str) -> str:
        if not isinstance(key, str):
            raise ContextError(
                f"context_data{_fmt(path)} has a key {key!r} of type {type(key).__name__}; "
                "keys must be strings.",
                path=path,
            )
        self._grow(len(key))
        return _storable(key, path)

    def _grow(self, amount: int) -> None:
        self.size += amount
        if self.size > self._max_bytes:
            raise ContextError(
                f"context_data is larger than {self._max_bytes} bytes (setting CONTEXT_MAX_BYTES)."
            )

    def convert(self, value: Any, path: str, depth: int) -> Any:
        if depth > self._max_depth:
            raise ContextError(
                f"context_data is nested deeper than {self._max_depth} levels "
                f"at {path!r} (setting CONTEXT_MAX_DEPTH).",
                path=path,
            )
        self._grow(8)
        # The common types first, by exact type: each takes the branch its isinstance()
        # below would, so only the time changes.
        kind = type(value)
        if kind is str:
            return self._string(value, path)
        if kind is dict:
            return self._map(value, path, depth)
        if kind is float:
            return self._double(value, path)
        if kind is list:
            return self._list(value, path, depth)
        if value is None:
            return None
        if isinstance(value, bool):
            return self.make_bool(value)
        if isinstance(value, int):
            if not -(2**63) <= value < 2**63:
                raise ContextError(f"context_data at {path!r}: {value} does not fit in 64 bits.")
            return self.make_int(value)
        if isinstance(value, float):
            return self._double(value, path)
        if isinstance(value, decimal.Decimal):
            if not value.is_finite():
                raise ContextError(f"context_data at {path!r}: {value} is not a finite number.")
            return self.make_double(float(value))
        if isinstance(value, str):
            return self._string(value, path)
        if isinstance(value, datetime.datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=datetime.timezone.utc)
            return self.make_timestamp(value)
        if isinstance(value, datetime.date):
            return self.make_timestamp(
                datetime.datetime(value.year, value.month, value.day, tzinfo=datetime.timezone.utc)
            )
        if isinstance(value, uuid.UUID):
            return self.make_string(str(value))
        if isinstance(value, Mapping):
            return self._map(value, path, depth)
        if isinstance(value, list | tuple):
            return self._list(value, path, depth)
        raise ContextError(
            f"context_data at {path!r} is a {type(value).__name__}; conditions accept dict, "
            "list, str, int, float, bool, None, Decimal, date, datetime and UUID values.",
            path=path,
        )

    def _double(self, value: float, path: str) -> Any:
        if not math.isfinite(value):  # JSON has no NaN or infinity: history can't keep it
            raise ContextError(f"context_data at {path!r}: {value} is not a finite number.")
        return self.make_double(value)

    def _string(self, value: str, path: str) -> Any:
        self._grow(len(value))
        return self.make_string(_storable(value, path))

    def _map(self, value: Mapping[Any, Any], path: str, depth: int) -> Any:
        make_string, key_of, convert = self.make_string, self._key, self.convert
        return self.make_map(
            {
                make_string(key_of(key, path)): convert(item, f"{path}.{key}", depth + 1)
                for key, item in value.items()
            }
        )

    def _list(self, value: list[Any] | tuple[Any, ...], path: str, depth: int) -> Any:
        convert = self.convert
        return self.make_list(
            [convert(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value)]
        )


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


def _storable(text: str, path: str) -> str:
    """``text`` if the history's JSON column can store it (PostgreSQL refuses these)."""
    if "\x00" in text:
        raise ContextError(
            f"context_data{_fmt(path)}: a text contains a NUL character (\\x00), which "
            "cannot be stored in the history.",
            path=path,
        )
    if text.isascii():  # no surrogate, so it encodes
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ContextError(
            f"context_data{_fmt(path)}: a text contains a lone surrogate "
            f"({text[error.start]!r}), which is not valid Unicode.",
            path=path,
        ) from None
    return text


def _fmt(path: str) -> str:
    return f" at {path!r}" if path else ""


def _cel_expr_backend() -> CelBackend:
    # Imported on first use: cel-expr-python is an optional extra (django-steps[fast-cel]).
    from .cel_expr import CelExprBackend

    return CelExprBackend()


_BACKEND_FACTORIES: dict[str, Callable[[], CelBackend]] = {"celpy": CelPythonBackend}
_backends: dict[str, CelBackend] = {}


def register_backend(name: str, factory: Callable[[], CelBackend]) -> None:
    """Make a CEL implementation selectable by name (setting ``CEL_BACKEND``)."""
    _BACKEND_FACTORIES[name] = factory
    _backends.pop(name, None)


def get_backend(name: str = "celpy") -> CelBackend:
    """The CEL backend called ``name``; ``LookupError`` naming the choices if unknown."""
    backend = _backends.get(name)
    if backend is None:
        try:
            factory = _BACKEND_FACTORIES[name]
        except KeyError:
            raise LookupError(
                f"Unknown CEL backend {name!r}; choose one of {sorted(_BACKEND_FACTORIES)}."
            ) from None
        backend = _backends[name] = factory()
    return backend


register_backend("cel-expr", _cel_expr_backend)


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
    _check_text(expression, limits)
    ast = cel.parse(expression)
    from .safety import check_condition_safety

    check_condition_safety(expression, ast, limits)
    return CompiledCondition(
        expression=expression, program=cel.program(expression, ast), backend=cel
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
