"""The conformance cases with a boolean or error result, as condition + context.

Each upstream ``test`` whose expected result is a ``bool_value`` or an
``eval_error`` becomes a :class:`Case`. Its bindings become the context: the values
a context can hold (int, double, string, bool, null, lists, maps with string keys)
as plain Python data; any other binding (uint, bytes, a protobuf message, a type)
is kept as ``None`` in :attr:`Case.context` with the reason in
:attr:`Case.unsupported_binding`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .textproto import parse

__all__ = ["FILES", "Case", "load_cases"]

TESTDATA = Path(__file__).with_name("testdata")

#: The upstream files used (tests/simple/testdata/<name>.textproto).
FILES = (
    "basic",
    "comparisons",
    "conversions",
    "fields",
    "fp_math",
    "integer_math",
    "lists",
    "logic",
    "macros",
    "string",
)


@dataclass(frozen=True)
class Case:
    """One conformance case: ``expected`` is ``True``, ``False`` or ``"error"``."""

    file: str
    section: str
    name: str
    expr: str
    expected: bool | str
    context: dict[str, Any] | None
    unsupported_binding: str = ""
    container: str = ""

    @property
    def id(self) -> str:
        return f"{self.file}/{self.section}/{self.name}"


class _Unsupported(Exception):
    pass


def _first(message: dict[str, list[Any]], name: str, default: Any = None) -> Any:
    values = message.get(name)
    return values[0] if values else default


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _value(message: dict[str, list[Any]]) -> Any:
    """A cel.expr.Value as the plain Python data a context holds."""
    if "int64_value" in message:
        return int(_first(message, "int64_value"))
    if "double_value" in message:
        return float(_first(message, "double_value"))
    if "string_value" in message:
        return _text(_first(message, "string_value"))
    if "bool_value" in message:
        return _first(message, "bool_value") == "true"
    if "null_value" in message:
        return None
    if "list_value" in message:
        items = _first(message, "list_value")
        return [_value(item) for item in items.get("values", [])]
    if "map_value" in message:
        result = {}
        for entry in _first(message, "map_value").get("entries", []):
            key = _value(_first(entry, "key"))
            if not isinstance(key, str):
                raise _Unsupported("a map key that is not a string")
            result[key] = _value(_first(entry, "value"))
        return result
    kind = next(iter(message), "an empty value")
    raise _Unsupported(kind.replace("_value", "") if kind.endswith("_value") else kind)


def _case(file: str, section: str, test: dict[str, list[Any]]) -> Case | None:
    if "value" in test:
        result = _first(test, "value")
        if "bool_value" not in result:
            return None
        expected: bool | str = _first(result, "bool_value") == "true"
    elif "eval_error" in test:
        expected = "error"
    else:
        return None
    context: dict[str, Any] | None = {}
    unsupported = ""
    for binding in test.get("bindings", []):
        name = _text(_first(binding, "key"))
        try:
            assert context is not None
            context[name] = _value(_first(_first(binding, "value"), "value", {}))
        except _Unsupported as error:
            context, unsupported = None, f"a {error} binding"
            break
    return Case(
        file=file,
        section=section,
        name=_text(_first(test, "name")),
        expr=_text(_first(test, "expr")),
        expected=expected,
        context=context,
        unsupported_binding=unsupported,
        container=_text(_first(test, "container", b"")),
    )


@functools.cache
def load_cases() -> tuple[Case, ...]:
    """Every case with a boolean or error result, in file order."""
    cases: list[Case] = []
    for file in FILES:
        document = parse((TESTDATA / f"{file}.textproto").read_text(encoding="utf-8"))
        for section in document.get("section", []):
            section_name = _text(_first(section, "name"))
            for test in section.get("test", []):
                case = _case(file, section_name, test)
                if case is not None:
                    cases.append(case)
    return tuple(cases)
