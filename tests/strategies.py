"""Hypothesis strategies shared by the suite's property-based and fuzz tests.

- workflow definitions and operation sequences (:mod:`tests.test_properties`,
  :mod:`tests.test_transfer`): :func:`workflow_definitions`, :data:`xy_contexts`,
  :data:`operation_sequences`;
- hostile input (:mod:`tests.test_fuzz_inputs`): CEL-like texts
  (:data:`cel_like_texts`) and context data of any shape, including values conditions
  cannot use (:data:`hostile_contexts`);
- well-formed input for differential tests of the celpy transpiler
  (:mod:`tests.test_cel_celpy_transpiler`): conditions over the names of that module's
  context (:data:`celpy_expressions`) and plain data every backend converts
  (:data:`plain_values`).
"""

from __future__ import annotations

import collections
import datetime
import decimal
import enum
import json
import math
import uuid
from typing import Any

from hypothesis import strategies as st

from tests.testapp.models import Claim

# --- workflow definitions and what is done to their instances ---------------------------

XY_CONDITIONS = ("", "", "x > 3", "x <= 3", "x == 5", "x % 2 == 0", "y", "!y", "x > 6 || y")
STATUS_NAMES = ("Open", "Working", "Done", "Held", "Dropped", "Checked")


@st.composite
def workflow_definitions(draw: st.DrawFn) -> dict[str, Any]:
    """A valid workflow in the export format."""
    count = draw(st.integers(min_value=2, max_value=5))
    names = [f"Step {index}" for index in range(count)]
    # The last step is final; others may be too, but never the initial one.
    final = {count - 1} | {
        index for index in range(1, count - 1) if draw(st.booleans()) and draw(st.booleans())
    }
    steps = []
    for index, name in enumerate(names):
        is_final = index in final
        statuses: list[dict[str, Any]] = []
        if is_final and draw(st.booleans()):
            statuses.append({"name": "Done", "default": True, "completion": True})
        else:
            statuses.append({"name": "Open", "default": True})
            if draw(st.booleans()):
                statuses.append({"name": "Working"})
            statuses.append({"name": "Done", "completion": True})
        if not is_final:
            if draw(st.booleans()):
                statuses.append({"name": "Held", "on_hold": True})
            if draw(st.booleans()):
                statuses.append({"name": "Dropped", "cancellation": True})
        steps.append(
            {
                "name": name,
                "order": index + 1,
                "initial": index == 0,
                "final": is_final,
                "statuses": statuses,
            }
        )
    transitions: set[tuple[int, int]] = set()
    for index in range(count - 1):
        if index not in final:  # every non-final step leads on, so a final step is reachable
            transitions.add((index, draw(st.integers(min_value=index + 1, max_value=count - 1))))
    for index in range(1, count):  # every step is reachable from the initial step
        sources = [i for i in range(index) if i not in final]
        if not any(target == index for _, target in transitions):
            transitions.add((draw(st.sampled_from(sources)), index))
    extra = st.tuples(st.integers(0, count - 2), st.integers(1, count - 1))
    for source, target in draw(st.lists(extra, max_size=3)):
        if source < target and source not in final:
            transitions.add((source, target))
    return {
        "name": "Generated",
        "steps": steps,
        "transitions": [
            {
                "from": names[source],
                "to": names[target],
                "condition": draw(st.sampled_from(XY_CONDITIONS)),
                "priority": draw(st.integers(min_value=0, max_value=3)),
            }
            for source, target in sorted(transitions)
        ],
    }


#: ``context_data`` for the conditions of :data:`XY_CONDITIONS`.
xy_contexts = st.one_of(
    st.none(),
    st.fixed_dictionaries({"x": st.integers(0, 10)}),
    st.fixed_dictionaries({"x": st.integers(0, 10), "y": st.booleans()}),
)
operation_sequences = st.lists(
    st.one_of(
        st.tuples(st.just("status"), st.sampled_from((*STATUS_NAMES, "Unknown")), xy_contexts),
        st.tuples(st.just("complete"), st.none(), xy_contexts),
        st.tuples(st.sampled_from(("hold", "resume", "cancel")), st.none(), st.none()),
    ),
    max_size=15,
)


# --- hostile condition texts ------------------------------------------------------------

CONDITION_IDENTIFIERS = (
    "x",
    "y",
    "name",
    "ratio",
    "items",
    "claim",
    "claim.amount",
    "nothing",
    "missing",
)
_LITERALS = (
    "0",
    "-1",
    "1u",
    "0x7F",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551615u",
    "99999999999999999999999",
    "1.5",
    "1e308",
    "1e-320",
    "-0.0",
    "true",
    "false",
    "null",
    '""',
    "'\\u00e9\\U0001F600'",
    "b'\\xff\\x00'",
    'r"\\d+"',
    "[]",
    "{}",
)
_OPERATORS = ("+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "&&", "||", "in")
_FUNCTIONS = ("int", "uint", "double", "string", "bytes", "size", "type", "dyn", "has")
_METHODS = ("size()", 'contains("a")', 'startsWith("")', 'endsWith("a")', 'matches("^(a+)+$")')
MACROS = ("all", "exists", "exists_one", "map", "filter")

_leaves = st.one_of(
    st.sampled_from(CONDITION_IDENTIFIERS),
    st.sampled_from(_LITERALS),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats().map(lambda value: repr(value) if math.isfinite(value) else "1e999"),
    st.text(max_size=12).map(json.dumps),
)


def _extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(children, st.sampled_from(_OPERATORS), children).map(" ".join),
        st.tuples(st.sampled_from(("!", "-")), children).map("".join),
        children.map(lambda child: f"({child})"),
        st.tuples(children, children, children).map(lambda t: f"{t[0]} ? {t[1]} : {t[2]}"),
        st.lists(children, max_size=4).map(lambda items: f"[{', '.join(items)}]"),
        st.lists(st.tuples(children, children), max_size=3).map(
            lambda pairs: "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"
        ),
        st.tuples(st.sampled_from(_FUNCTIONS), children).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(children, st.sampled_from(_METHODS)).map(lambda t: f"{t[0]}.{t[1]}"),
        st.tuples(children, st.sampled_from(MACROS), children).map(
            lambda t: f"{t[0]}.{t[1]}(v, {t[2]})"
        ),
        st.tuples(children, children).map(lambda t: f"{t[0]}[{t[1]}]"),
        st.tuples(children, st.sampled_from(("a", "amount", "tags", "ñ"))).map(".".join),
        st.tuples(st.sampled_from(("duration", "timestamp")), children).map(
            lambda t: f"{t[0]}({t[1]})"
        ),
    )


cel_like_texts = st.recursive(_leaves, _extend, max_leaves=30)


# --- context data of any shape --------------------------------------------------------


class _Color(enum.IntEnum):
    RED = 1


class _Text(str):
    pass


_UNSUPPORTED = (
    object(),
    {1, 2},
    frozenset(),
    b"bytes",
    bytearray(b"x"),
    complex(1, 2),
    range(3),
    len,
    Claim,
    Ellipsis,
    datetime.timedelta(seconds=1),
    datetime.time(12, 0),
    memoryview(b"x"),
    iter([1]),
)
_ODD_BUT_PLAIN = (
    float("nan"),
    float("inf"),
    -float("inf"),
    decimal.Decimal("1e999999"),
    decimal.Decimal("-0"),
    2**63 - 1,
    -(2**63),
    _Color.RED,
    _Text("sub"),
    "\ud800",
    "\x00",
    datetime.datetime.min,
    datetime.datetime.max,
    datetime.date.min,
    datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=23))),
    uuid.UUID(int=0),
    collections.OrderedDict(a=1),
)
_BAD_SCALARS = (
    2**63,
    -(2**63) - 1,
    10**1000,
    decimal.Decimal("NaN"),
    decimal.Decimal("sNaN"),
    decimal.Decimal("Infinity"),
)

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(),
    st.decimals(),
    st.text(max_size=20),
    st.datetimes(timezones=st.one_of(st.none(), st.timezones())),
    st.dates(),
    st.uuids(),
    st.sampled_from(_UNSUPPORTED + _ODD_BUT_PLAIN + _BAD_SCALARS),
)
_keys = st.one_of(
    st.text(max_size=8),
    st.integers(),
    st.none(),
    st.booleans(),
    st.tuples(st.integers()),
    st.binary(max_size=3),
    st.floats(),
)
context_values = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(_keys, children, max_size=4),
    ),
    max_leaves=40,
)
hostile_contexts = st.one_of(
    st.dictionaries(_keys, context_values, max_size=6),
    st.dictionaries(st.sampled_from(("x", "y", "items", "claim")), context_values, max_size=4),
    context_values,
)


# --- well-formed conditions and data for the celpy transpiler ---------------------------

_CELPY_VALUES = st.sampled_from(
    [
        "count",
        "ratio",
        "name",
        "flag",
        "nothing",
        "tags",
        "nums",
        "seen",
        "claim",
        "claim.amount",
        "claim.risk",
        "claim.lines",
        "claim.lines[0].qty",
        "claim.nope",
        "package",
        "functions",
        "missing",
        "0",
        "1",
        "-2",
        "3u",
        "2.5",
        "0.0",
        "9223372036854775807",
        "'vip'",
        "''",
        "b'x'",
        "true",
        "false",
        "null",
        "[]",
        "[1, 'a']",
        "{'a': 1}",
        "timestamp('2024-03-01T12:30:00Z')",
        "duration('1h')",
    ]
)
_CELPY_OPERATORS = st.sampled_from(
    ["+", "-", "*", "/", "%", "<", "<=", ">", ">=", "==", "!=", "in", "&&", "||"]
)


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(children, _CELPY_OPERATORS, children).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        children.map(lambda c: f"!{c}"),
        children.map(lambda c: f"!!{c}"),
        st.tuples(children, _CELPY_OPERATORS, children, _CELPY_OPERATORS, children).map(" ".join),
        st.tuples(children, children).map(lambda t: f"has({t[0]}, {t[1]})"),
        st.tuples(children, children).map(lambda t: f"dyn({t[0]}, {t[1]})"),
        st.sampled_from(["has()", "dyn()", "size()", "[1].all(v)", "[1].map(v, v, v)"]),
        children.map(lambda c: f"-{c}"),
        st.tuples(children, children, children).map(lambda t: f"({t[0]} ? {t[1]} : {t[2]})"),
        st.tuples(children, children).map(lambda t: f"{t[0]}[{t[1]}]"),
        children.map(lambda c: f"size({c})"),
        children.map(lambda c: f"int({c})"),
        children.map(lambda c: f"string({c})"),
        children.map(lambda c: f"dyn({c})"),
        children.map(lambda c: f"{c}.startsWith('A')"),
        children.map(lambda c: f"[{c}, 1]"),
        children.map(lambda c: f"{{'k': {c}}}.k"),
        st.sampled_from(["all", "exists", "exists_one", "map", "filter"]).flatmap(
            lambda macro: st.tuples(children, children).map(
                lambda t: f"{t[0]}.{macro}(v, {t[1].replace('count', 'v')})"
            )
        ),
        st.sampled_from(["claim", "claim.lines[0]", "{'a': 1}", "name"]).map(
            lambda c: f"has({c}.qty)"
        ),
    )


celpy_expressions = st.recursive(_CELPY_VALUES, _combine, max_leaves=8)


plain_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
    | st.datetimes(timezones=st.just(datetime.timezone.utc)),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(max_size=5).filter(lambda k: "\x00" not in k), children, max_size=4
        )
    ),
    max_leaves=12,
)
