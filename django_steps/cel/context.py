"""Explicit, limited conversion of plain Python data into a CEL backend's values.

Internal: use :func:`django_steps.cel.convert_context`.

Every backend converts the context through the same walk (:class:`ContextConverter`):
the same limits, the same errors naming the path at fault, the same value mapping.
"""

from __future__ import annotations

import datetime
import decimal
import math
import uuid
from collections.abc import Mapping
from typing import Any

from ..exceptions import ContextError
from .limits import CelLimits

__all__ = ["ContextConverter"]


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
        #: Each top-level value's size, filled by :meth:`convert_root`.
        self.sizes: dict[str, int] = {}
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
        """The converted top-level values; ``sizes`` gets each one's size.

        A value's size is what the limit ``context_max_bytes`` counts for it: its
        strings' lengths and 8 per value (:mod:`django_steps.cel.cost` reads it).
        """
        if not isinstance(context, Mapping):
            raise ContextError(
                f"context_data must be a dict, not {type(context).__name__}.", path=""
            )
        converted: dict[str, Any] = {}
        sizes = self.sizes
        for key, value in context.items():
            name = self._key(key, "")
            before = self.size
            converted[name] = self.convert(value, name, 1)
            sizes[name] = self.size - before
        return converted

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
