"""A reader for the protobuf text format, enough for cel-spec's conformance files.

It returns nested dicts: every field maps to a list of its values (a field may
repeat), a message value is a dict, a scalar is a ``str`` (strings keep their bytes
in a ``bytes`` object), a number or an enum name as written. No schema is used.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["parse"]

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<punct>[{}:<>,;\[\]])
  | (?P<word>[-+]?[A-Za-z0-9_.+/-]+)
    """,
    re.VERBOSE,
)
_SIMPLE_ESCAPES = {
    "n": b"\n",
    "t": b"\t",
    "r": b"\r",
    "\\": b"\\",
    "'": b"'",
    '"': b'"',
    "a": b"\a",
    "b": b"\b",
    "f": b"\f",
    "v": b"\v",
    "?": b"?",
}


def _unescape(body: str) -> bytes:
    out = bytearray()
    i = 0
    while i < len(body):
        char = body[i]
        if char != "\\":
            out += char.encode("utf-8")
            i += 1
            continue
        kind = body[i + 1]
        if kind in _SIMPLE_ESCAPES:
            out += _SIMPLE_ESCAPES[kind]
            i += 2
        elif kind in "01234567":
            digits = re.match(r"[0-7]{1,3}", body[i + 1 :]).group()  # type: ignore[union-attr]
            out.append(int(digits, 8))
            i += 1 + len(digits)
        elif kind in "xX":
            digits = re.match(r"[0-9a-fA-F]{1,2}", body[i + 2 :]).group()  # type: ignore[union-attr]
            out.append(int(digits, 16))
            i += 2 + len(digits)
        elif kind in "uU":
            width = 4 if kind == "u" else 8
            out += chr(int(body[i + 2 : i + 2 + width], 16)).encode("utf-8", "surrogatepass")
            i += 2 + width
        else:
            raise ValueError(f"unknown escape \\{kind}")
    return bytes(out)


def _tokens(text: str) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise ValueError(f"cannot read {text[position : position + 20]!r}")
        position = match.end()
        kind = match.lastgroup
        assert kind is not None
        if kind == "space":
            continue
        value = match.group()
        if kind == "string":
            tokens.append(("string", _unescape(value[1:-1])))
        else:
            tokens.append((kind, value))
    return tokens


def parse(text: str) -> dict[str, list[Any]]:
    """The message written in ``text``."""
    tokens = _tokens(text)
    message, end = _message(tokens, 0, None)
    if end != len(tokens):
        raise ValueError("text after the message")
    return message


def _message(
    tokens: list[tuple[str, Any]], i: int, closing: str | None
) -> tuple[dict[str, Any], int]:
    fields: dict[str, list[Any]] = {}
    while i < len(tokens):
        kind, value = tokens[i]
        if closing is not None and kind == "punct" and value == closing:
            return fields, i + 1
        if kind == "punct" and value in ",;":
            i += 1
            continue
        if kind == "punct" and value == "[":  # an extension or Any type URL
            end = next(j for j in range(i, len(tokens)) if tokens[j] == ("punct", "]"))
            name = "[" + "".join(str(t[1]) for t in tokens[i + 1 : end]) + "]"
            i = end + 1
        elif kind == "word":
            name = value
            i += 1
        else:
            raise ValueError(f"expected a field name, got {value!r}")
        if tokens[i] == ("punct", ":"):
            i += 1
        kind, value = tokens[i]
        if kind == "punct" and value in "{<":
            item, i = _message(tokens, i + 1, "}" if value == "{" else ">")
        elif kind == "string":
            item = value
            i += 1
            while i < len(tokens) and tokens[i][0] == "string":  # adjacent strings concatenate
                item += tokens[i][1]
                i += 1
        else:
            item = value
            i += 1
        fields.setdefault(name, []).append(item)
    if closing is not None:
        raise ValueError("unterminated message")
    return fields, i
