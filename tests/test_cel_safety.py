"""Hostile and costly condition texts are refused quickly, with line and column.

"Quickly" is bounded by the work done, not by the clock (``tests/cel_work.py``).
"""

from __future__ import annotations

import importlib.util
import re
import sys
import unicodedata
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from django_steps.cel import CelLimits, compile_condition, convert_context
from django_steps.cel.quoted_fields import rewrite
from django_steps.cel.safety import (
    MAX_TREE_DEPTH,
    check_condition_safety,
    parse_tree,
    tree_depth_limit,
)
from django_steps.cel.variables import free_variables
from django_steps.exceptions import ConditionSyntaxError
from tests.cel_work import compile_work

#: Limits that let huge texts through the length check, to show the other checks.
UNLIMITED_LENGTH = CelLimits(max_length=10_000_000)


DEFAULT = CelLimits()

#: The safety rules read cel-python's parse tree whatever the backend, so they hold for all.
BACKENDS = [
    "celpy",
    pytest.param(
        "cel-expr",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("cel_expr_python") is None,
            reason="cel-expr-python is not installed",
        ),
    ),
]


def refused(
    text: str,
    limits: CelLimits = DEFAULT,
    match: str | None = None,
    backend: str = "celpy",
    parses: int | None = None,
) -> ConditionSyntaxError:
    """Compile ``text`` expecting a refusal, quickly: bounded by the work done.

    The refusal must come before any program is built and after at most one parse,
    and without a parse for a text over the length limit (``tests/cel_work.py``).
    With ``parses``, exactly that many parses.
    """
    compile_condition.cache_clear()
    with (
        compile_work(backend) as work,
        pytest.raises(ConditionSyntaxError, match=match) as excinfo,
    ):
        compile_condition(text, limits=limits, backend=backend)
    assert work.programs == 0, "a program was built before the refusal"
    assert work.parses <= 1, f"parsed {work.parses} times"
    if len(text) > limits.max_length:
        assert work.parses == 0, "a text over the length limit was parsed"
    if parses is not None:
        assert work.parses == parses
    return excinfo.value


HOSTILE: dict[str, Callable[[], str]] = {
    "5000 nested parentheses": lambda: "(" * 5000 + "1" + ")" * 5000 + " == 1",
    "5000 nested lists": lambda: "[" * 5000 + "1" + "]" * 5000 + " == [1]",
    "5000 nested maps": lambda: '{"a": ' * 5000 + "1" + "}" * 5000 + " == {}",
    "5000 negations": lambda: "!" * 5000 + "true",
    "5000 minus signs": lambda: "-" * 5000 + "1 == 1",
    "alternating unary operators": lambda: "!-" * 2500 + "1",
    "1 MB string": lambda: '"' + "a" * 1_000_000 + '" == x',
    "1 MB of spaces": lambda: " " * 1_000_000 + "true",
    "1 MB comment": lambda: "true // " + "x" * 1_000_000,
    "unterminated 1 MB string": lambda: '"' + "a" * 1_000_000,
    "long member chain": lambda: "a" + ".b" * 5000 + " == 1",
    "long index chain": lambda: "x" + "[0]" * 5000 + " == 1",
    "long addition": lambda: "1" + " + 1" * 5000 + " == 1",
    "long and-chain": lambda: "true" + " && true" * 5000,
    "nested ternaries": lambda: "true ? " * 2000 + "1" + " : 2" * 2000 + " == 1",
    "1000-char emoji string": lambda: '"' + "\U0001f600" * 1000 + '" == x',
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("make", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_text_is_refused_quickly_under_default_limits(make, backend):
    refused(make(), backend=backend)


@pytest.mark.parametrize(
    ("text", "parses"),
    [
        # Refused by the nesting count, before parsing.
        ("(" * 5000 + "1" + ")" * 5000 + " == 1", 0),
        ("!" * 5000 + "true", 0),
        ("-" * 5000 + "1 == 1", 0),
        # Chains that brackets do not show: refused by the parse-tree depth.
        ("a" + ".b" * 1000 + " == 1", 1),
        ("x" + "[0]" * 1000 + " == 1", 1),
        ("1" + " + 1" * 1000 + " == 1", 1),
    ],
    ids=["parentheses", "negations", "minus", "members", "indexes", "additions"],
)
def test_deep_text_is_refused_quickly_even_without_a_length_limit(text, parses):
    error = refused(text, UNLIMITED_LENGTH, match="nested", parses=parses)
    assert error.line == 1
    assert error.column is not None


def test_the_length_limit_names_its_setting():
    error = refused("x" * 1001, match="1001 characters long; the limit is 1000")
    assert "CONDITION_MAX_LENGTH" in str(error)


def test_a_condition_at_the_length_limit_compiles():
    text = "x == " + '"' + "a" * 993 + '"'
    assert len(text) == 1000
    assert compile_condition(text).evaluate(convert_context({"x": "a" * 993})) is True


def test_the_depth_limit_names_its_setting_and_position():
    error = refused("(" * 31 + "1" + ")" * 31 + " == 1", match="more than 30 levels")
    assert "CONDITION_MAX_DEPTH" in str(error)
    assert (error.line, error.column) == (1, 31)


def test_nesting_within_the_depth_limit_compiles_and_evaluates():
    text = "(" * 30 + "1" + ")" * 30 + " == 1"
    assert compile_condition(text).evaluate(convert_context({})) is True
    lists = "[" * 29 + "1" + "]" * 29 + " != []"
    assert compile_condition(lists).evaluate(convert_context({})) is True


def test_parse_tree_depth_limit_follows_the_setting_up_to_a_hard_ceiling():
    assert tree_depth_limit(CelLimits(max_depth=30)) == 360
    assert tree_depth_limit(CelLimits(max_depth=1000)) == MAX_TREE_DEPTH
    chain = "a" + ".b" * 100 + " == 1"
    compile_condition(chain, limits=CelLimits(max_depth=30))  # about 200 levels: fine
    refused(chain, CelLimits(max_depth=10), match="parse tree is more than 120 levels")


# --- comprehension macros -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "inner", "outer", "column"),
    [
        ("a.all(x, b.exists(y, y == x))", "exists", "all", 12),
        ("a.exists(x, x.items.all(y, y > 0))", "all", "exists", 21),
        ("a.map(x, b.filter(y, y > x)).size() > 0", "filter", "map", 12),
        ("a.filter(x, b.exists_one(y, y == x)).size() > 0", "exists_one", "filter", 15),
        ("a.exists_one(x, b.map(y, y).size() > 0)", "map", "exists_one", 19),
        ("a.all(x, x > 0 && (b.exists(y, y == x)))", "exists", "all", 22),
        ("a.map(x, x, b.all(y, y > x))", "all", "map", 15),
    ],
)
@pytest.mark.parametrize("backend", BACKENDS)
def test_nested_comprehension_macros_are_refused(text, inner, outer, column, backend):
    error = refused(
        text, match=f"nests the macro {inner}\\(\\) inside {outer}\\(\\)", backend=backend
    )
    assert (error.line, error.column) == (1, column)


def test_nested_macro_on_a_later_line_reports_that_line():
    error = refused("a.all(x,\n  x.exists(y, y > 1))")
    assert (error.line, error.column) == (2, 5)


@pytest.mark.parametrize(
    ("text", "column"),
    [
        ("l.map(x, s + s).size() > 0", 10),
        ("l.map(x, [s] + [s]).size() > 0", 11),
        ("l.map(x, x > 0, x + 1).size() > 0", 17),
        ("l.map(x, size(x + s)).size() > 0", 15),
    ],
)
def test_concatenation_inside_map_is_refused(text, column):
    # 3,500 elements times 120 KB each: 437 MB kept for one evaluation in cel-python.
    error = refused(text, match=r"uses \+ inside map\(\)")
    assert (error.line, error.column) == (1, column)


def test_sums_stay_allowed_where_results_are_not_kept():
    compiled = compile_condition("l.exists(x, x + 1 > 2) && l.map(x, x * 2).size() == 2")
    assert compiled.evaluate(convert_context({"l": [1, 2]})) is True


@pytest.mark.parametrize(
    "text",
    [
        "a.all(x, x > 0) && b.exists(y, y == 1)",
        "a.map(x, x * 2).filter(y, y > 2).size() == 1",
        "a.filter(x, x > 1).all(y, y > 1)",
        "has(m.a) && m.a.exists(k, k == 'x')",
    ],
)
def test_sequential_and_chained_macros_are_fine(text):
    compiled = compile_condition(text)
    context = convert_context({"a": [1, 2], "b": [1], "m": {"a": ["x"]}})
    assert isinstance(compiled.evaluate(context), bool)


def test_more_comprehensions_than_the_limit_are_refused_at_the_first_extra_one():
    four = " && ".join(f"l{i}.all(x, x > 0)" for i in range(4))
    compile_condition(four)
    error = refused(four + " && l4.exists(x, x > 0)", match="more than 4 comprehension macros")
    assert "CONDITION_MAX_COMPREHENSIONS" in str(error)
    assert error.column == len(four) + 8
    refused("a.all(x, x > 0) && b.all(x, x > 0)", CelLimits(max_comprehensions=1))


# --- duration() and timestamp() -----------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "duration(x) > duration('1s')",
        "x.duration() > duration('1s')",
        "timestamp(x) > timestamp('2024-01-01T00:00:00Z')",
        "duration('1' + 's') > duration('0s')",
        "duration(string(x)) > duration('1s')",
        "timestamp(1700000000) > timestamp('2024-01-01T00:00:00Z')",
        "duration() == duration('1s')",
        "duration('1s', '2s') == duration('1s')",
        "duration(b'1s') == duration('1s')",
    ],
)
def test_duration_and_timestamp_need_one_string_literal(text):
    refused(text, match=r"(accepts only a string literal|takes exactly one string literal)")


@pytest.mark.parametrize(
    "literal",
    [
        # cel-python 0.5.0's own pattern backtracks exponentially on these.
        "a" * 40 + "!",
        "1a" * 30 + "!",
        "1" + "0" * 50 + "s",  # well-formed, but out of range
        "1" + "0" * 5000 + "s",
        "1x",
        "-",
        "1.5.5s",
        "1s\\n",
    ],
)
@pytest.mark.parametrize("backend", BACKENDS)
def test_crafted_duration_literals_are_refused_quickly(literal, backend):
    error = refused(f'duration("{literal}") > duration("0s")', UNLIMITED_LENGTH, backend=backend)
    assert "duration() cannot use" in str(error)
    assert (error.line, error.column) == (1, 10)


def test_a_1mb_duration_literal_is_refused_by_length_first():
    refused('duration("1' + "0" * 1_000_000 + 's") > duration("0s")', match="characters long")


@pytest.mark.parametrize(
    "literal",
    ["2024-01-31", "yesterday", "2024-13-45T00:00:00Z", "2024-01-31T00:00:00" + "0" * 100 + "Z"],
)
def test_malformed_timestamp_literals_are_refused(literal):
    refused(f'timestamp("{literal}") < now', match="timestamp\\(\\) cannot use")


@pytest.mark.parametrize(
    ("text", "context", "expected"),
    [
        ('elapsed > duration("1h30m")', {"elapsed": 0}, None),
        ('duration("90s") == duration("1m30s")', {}, True),
        ('"2h".duration() > duration("1h")', {}, True),
        ('duration("-1.5h") < duration("0s")', {}, True),
        ('duration("250ms") < duration("1s")', {}, True),
        ("timestamp('2024-01-31T10:00:00+02:00') < timestamp('2024-01-31T09:00:00Z')", {}, True),
        ('timestamp(r"2024-01-31T00:00:00.123456Z") > timestamp("2024-01-30T00:00:00Z")', {}, True),
    ],
)
def test_well_formed_duration_and_timestamp_literals_compile(text, context, expected):
    compiled = compile_condition(text)
    if expected is not None:
        assert compiled.evaluate(convert_context(context)) is expected


def test_timestamp_literal_compares_with_a_context_datetime():
    import datetime

    compiled = compile_condition('submitted < timestamp("2024-01-31T00:00:00Z")')
    early = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    assert compiled.evaluate(convert_context({"submitted": early})) is True


# --- unicode tricks ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ('x == "admin\u202e"', "U+202E"),  # right-to-left override (Trojan Source)
        ('x == "a\u2066" && true', "U+2066"),  # first-strong isolate
        ('x == "\u200fa"', "U+200F"),
        ('x == "a\x00"', "U+0000"),
        ('x == "a" // \u202e comment', "U+202E"),
    ],
)
def test_invisible_control_characters_are_refused(text, code):
    error = refused(text, match=re.escape(code))
    assert error.line == 1


def test_control_character_position_counts_lines():
    error = refused('x == 1 &&\n  y == "\u202e"')
    assert (error.line, error.column) == (2, 9)


@pytest.mark.parametrize(
    "text",
    [
        "\uff58 == 1",  # fullwidth x: not an identifier
        "x \uff1d\uff1d 1",  # fullwidth equals signs
        "x\u200b == 1",  # zero-width space inside an identifier
        "\u0445 == 1",  # Cyrillic ha, looks like x
    ],
)
def test_lookalike_characters_outside_strings_do_not_parse(text):
    refused(text, match="does not parse")


def test_unicode_inside_strings_is_accepted():
    compiled = compile_condition('name == "Zoë 😀 中"')
    assert compiled.evaluate(convert_context({"name": "Zoë 😀 中"})) is True


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("text", "code", "column"),
    [
        ('role != "adm\u200bin"', "U+200B (ZERO WIDTH SPACE)", 13),  # displays as "admin"
        ('name == "a\u200db"', "U+200D (ZERO WIDTH JOINER)", 11),
        ('name == "a\u200cb"', "U+200C (ZERO WIDTH NON-JOINER)", 11),
        ('name == "co\u00adop"', "U+00AD (SOFT HYPHEN)", 12),
        ('name == "x\U000e0041"', "U+E0041 (TAG LATIN CAPITAL LETTER A)", 11),
        ('name == "\ufeffx"', "U+FEFF (ZERO WIDTH NO-BREAK SPACE)", 10),
        ("x == 1 // a comment with \u2060", "U+2060 (WORD JOINER)", 26),
    ],
)
def test_invisible_format_characters_are_refused_with_their_position(text, code, column, backend):
    # Unicode category Cf: invisible, so the text displays as something else.
    error = refused(text, match=re.escape(code), backend=backend)
    assert (error.line, error.column) == (1, column)
    assert "escape" in str(error)


def test_every_format_character_is_refused_and_its_escape_accepted():
    format_characters = [
        chr(code) for code in range(sys.maxunicode + 1) if unicodedata.category(chr(code)) == "Cf"
    ]
    assert len(format_characters) > 100
    for char in format_characters:
        with pytest.raises(ConditionSyntaxError, match=f"U\\+{ord(char):04X}"):
            compile_condition(f'name == "{char}"')
    escape = "\\u200b"
    assert compile_condition(f'name == "a{escape}b"').evaluate(
        convert_context({"name": "a\u200bb"})
    )


# --- the checks on their own ------------------------------------------------------------


def test_safety_parses_the_text_when_given_another_backends_program():
    with pytest.raises(ConditionSyntaxError, match="nests the macro"):
        check_condition_safety("a.all(x, x.all(y, y))", object())


def test_parse_tree_reports_where_a_text_does_not_parse():
    with pytest.raises(ConditionSyntaxError, match="does not parse at line 1, column 3"):
        parse_tree("x >")


def test_free_variables_leave_out_bound_loop_variables_and_type_names():
    tree = parse_tree(
        "claim.items.all(x, x.amount > limit) && type(count) == int && "
        "x > 1 && .root.a == 1 && m.map(k, v, k == v) == [] && has(doc.f)"
    )
    assert free_variables(tree) == {"claim", "limit", "count", "x", "root", "m", "v", "doc"}


def test_message_type_names_are_not_variables_but_field_values_are():
    assert free_variables(parse_tree("pkg.Msg{amount: value, flag: true} == other")) == {
        "value",
        "other",
    }


# --- backtick-quoted field names ---------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('headers.`content-type` == "application/pdf"', True),
        ("has(headers.`content-type`) && !has(headers.`x-missing`)", True),
        ("files.`report 2024/q1.pdf` > 3", True),
        ('headers . `content-type`.startsWith("application")', True),
        # Inside strings and comments, backticks stay text.
        ('"a.`b`" == "a." + "`b`"', True),
        ("r'.`b`'.size() == 4 // .`c`", True),
    ],
)
def test_backtick_quoted_field_names(backend, text, expected):
    context = {"headers": {"content-type": "application/pdf"}, "files": {"report 2024/q1.pdf": 4}}
    compiled = compile_condition(text, backend=backend)
    assert compiled.evaluate(convert_context(context, backend=backend)) is expected


def test_a_parse_error_after_a_quoted_field_has_the_original_column():
    error = refused("headers.`content-type` == ")
    assert (error.line, error.column) == (1, 24)
    assert '["content-type"]' not in str(error)


@given(text=st.text(max_size=60))
@settings(max_examples=300, deadline=None)
def test_rewriting_quoted_fields_ends_and_touches_only_them(text):
    rewritten = rewrite(text)
    if ".`" not in text and ". `" not in text:
        assert rewritten.text == text
    assert rewritten.text.count("`") <= text.count("`")
