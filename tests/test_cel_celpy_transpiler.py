"""The celpy backend's transpiled conditions: same answers as the interpreter, no injection.

The celpy backend compiles each condition to Python source (cel-python's transpiler,
hardened in :mod:`django_steps.cel.backends.celpy_transpiler`) and runs it. These tests
check that no condition text reaches that source as code, that the generated code
holds no state shared between threads, and that random conditions give the same
result or the same failure as cel-python's interpreter.
"""

from __future__ import annotations

import datetime
import os
import sys
import threading
from typing import Any

import celpy
import pytest
from celpy.celparser import CELParser
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from django_steps.cel import (
    CelLimits,
    CompiledCondition,
    compile_condition,
    convert_context,
    get_backend,
)
from django_steps.cel.backends import celpy as celpy_module
from django_steps.cel.backends import celpy_transpiler as celpy_compiled
from django_steps.cel.backends.celpy import CelPythonBackend, _InterpretedProgram
from django_steps.cel.backends.celpy_transpiler import (
    PreparedContext,
    TranspiledProgram,
    UnsafeSourceError,
    _check_source,
    transpile,
)
from django_steps.cel.safety import check_condition_safety
from django_steps.exceptions import ConditionError, ConditionEvaluationError, ConditionSyntaxError
from tests.strategies import celpy_expressions, plain_values

CONTEXT: dict[str, Any] = {
    "count": 3,
    "ratio": 0.5,
    "name": "Ada",
    "flag": True,
    "nothing": None,
    "tags": ["urgent", "vip"],
    "nums": [1, 2, 3],
    "seen": datetime.datetime(2024, 3, 1, 12, 30, tzinfo=datetime.timezone.utc),
    "claim": {"amount": 12500.0, "risk": False, "lines": [{"qty": 2}, {"qty": 5}], "meta": {}},
    # Names of the Activation's own attributes: the stock transpiler read those instead.
    "package": "box",
    "functions": 2,
    "identifiers": ["a"],
    "get": 1,
    "clone": "c",
    "__class__": 7,
}

FUZZ = settings(
    max_examples=int(os.environ.get("DJANGO_STEPS_HYPOTHESIS_EXAMPLES") or 300),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.fixture(autouse=True, scope="module")
def celpy_environment() -> None:
    """Build cel-python's environment (it raises the recursion limit) before hypothesis runs."""
    get_backend("celpy").environment  # noqa: B018 - built on first access


def celpy_backend() -> CelPythonBackend:
    backend = get_backend("celpy")
    assert isinstance(backend, CelPythonBackend)
    return backend


def outcome(condition: CompiledCondition, context: dict[str, Any] = CONTEXT) -> Any:
    """The condition's bool, or the kind of failure, through the backend's evaluate()."""
    return outcome_in(condition, convert_context(context))


def outcome_in(condition: CompiledCondition, prepared: Any) -> Any:
    """:func:`outcome` with a context already converted (possibly used by other conditions)."""
    try:
        return condition.evaluate(prepared)
    except ConditionEvaluationError:
        return "error"


def both_ways(expression: str) -> tuple[CompiledCondition, CompiledCondition]:
    """The condition run by cel-python's interpreter and by the transpiled code."""
    backend = celpy_backend()
    tree = backend.parse(expression)
    interpreted = _InterpretedProgram(backend.environment, tree)
    transpiled = backend.program(expression, tree)
    return (
        CompiledCondition(expression, interpreted, backend),
        CompiledCondition(expression, transpiled, backend),
    )


# --- the backend uses it -----------------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        "claim.amount > 10000 && !claim.risk",
        "count > 2.5",  # the operators passed as functions= to transpile()
        "'vip' in tags || claim.amount < 50.0",
        "claim.lines.exists(line, line.qty > 4)",
        "has(claim.amount) ? name.startsWith('A') : false",
        "{'a': 1}['a'] == 1 && size(nums) == 3",
    ],
)
def test_typical_conditions_are_transpiled(expression):
    condition = compile_condition(expression)
    assert isinstance(condition.program, TranspiledProgram)
    assert condition.evaluate(convert_context(CONTEXT)) is True


def test_functions_given_to_program_are_called():
    backend = celpy_backend()
    calls: list[tuple[Any, Any]] = []

    def greater(left: Any, right: Any) -> Any:
        calls.append((left, right))
        return celpy.celtypes.BoolType(True)

    program = transpile(backend.environment, backend.parse("1 > 2"), {"_>_": greater})
    assert program is not None
    assert program.evaluate({}) == celpy.celtypes.BoolType(True)
    assert calls == [(1, 2)]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("package == 'box'", True),
        ("functions == 2", True),
        ("identifiers[0] == 'a'", True),
        ("get == 1 && clone == 'c'", True),
        ("__class__ == 7", True),
        ("claim.meta.package == 1", "error"),
        ("has(claim.meta.identifiers)", False),
    ],
)
def test_variables_named_like_activation_attributes(expression, expected):
    interpreted, transpiled = both_ways(expression)
    assert isinstance(transpiled.program, TranspiledProgram)
    assert outcome(transpiled) == outcome(interpreted) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("007 == 7", True),  # valid CEL, a SyntaxError as Python source
        ("0x1F == 31 && 3u == uint(3)", True),
        ("!has(claim.nope) && has(claim.risk)", True),
        ("[3, 1].min() == 1", True),  # cel-python's extension: interpreted
        ("{'a': 1, 'a': 2}.size() == 1", "error"),
        ("18446744073709551616 > 0", "error"),
        ("count / 0 == 1 || true", True),
        ("claim.nope == 1 || true", True),
        ("name.x == 1", "error"),
    ],
)
def test_corner_cases_match_the_interpreter(expression, expected):
    interpreted, transpiled = both_ways(expression)
    assert outcome(transpiled) == outcome(interpreted) == expected


def test_constructs_left_to_the_interpreter():
    assert not isinstance(compile_condition("[3, 1].min() == 1").program, TranspiledProgram)
    assert not isinstance(compile_condition(".count == 3").program, TranspiledProgram)
    assert compile_condition(".count == 3").evaluate(convert_context(CONTEXT)) is True


def test_deepest_accepted_chains_are_transpiled():
    # The tree-depth limit keeps chains below the 200 parentheses Python's parser takes.
    limits = CelLimits(max_length=10000, max_depth=40)
    for expression in ("claim" + ".meta" * 190 + " == 1", "nums" + "[0]" * 190 + " == 1"):
        condition = compile_condition(expression, limits=limits)
        assert isinstance(condition.program, TranspiledProgram)
        interpreted = _InterpretedProgram(
            celpy_backend().environment, celpy_backend().parse(expression)
        )
        expected = outcome(CompiledCondition(expression, interpreted, celpy_backend()))
        assert outcome(condition) == expected == "error"


def test_code_refused_by_the_source_check_is_interpreted(monkeypatch):
    def refuse(source: str) -> None:
        raise UnsafeSourceError("refused")

    monkeypatch.setattr(celpy_compiled, "_check_source", refuse)
    backend = celpy_backend()
    program = backend.program("count == 3", backend.parse("count == 3"))
    assert not isinstance(program, TranspiledProgram)
    assert CompiledCondition("count == 3", program, backend).evaluate(convert_context(CONTEXT))


@pytest.mark.parametrize(
    ("message", "expression"),
    [
        ("undefined variable 'missing'", "missing > 1"),
        ("no such overload: int \\+ string", "count + name == 'x'"),
        ("divide by zero", "count % 0 == 1"),
        ("no such member in mapping: 'nope'", "claim.nope == 1"),
        ("overflow", "9223372036854775807 + 1 > 0"),
        ("the condition gave an int 3, not a bool", "count"),
    ],
)
def test_evaluation_errors_name_the_expression(message, expression):
    condition = compile_condition(expression)
    assert isinstance(condition.program, TranspiledProgram)
    with pytest.raises(ConditionEvaluationError, match=message) as caught:
        condition.evaluate(convert_context(CONTEXT))
    assert caught.value.expression == expression


# --- no condition text becomes code ------------------------------------------------

#: Texts aimed at the generated source: quotes, backslashes, line breaks (including
#: those str.splitlines() honours), triple quotes, escapes that decode to quotes.
PAYLOADS = [
    "'); import os; os._exit(3) #",
    '"""); celpy.INJECTED = 1 #',
    "'''\nceply.INJECTED = 1\n'''",
    "\\'); celpy.INJECTED = 1 #",
    "line\nbreak\r\nand\u2028separator\u2029and\x85next\x0bvt\x0cff\x1cfs",
    "\\\\'); celpy.INJECTED = 1 #",
    "${n}${exprlist}$$",
    "ex_1 = lambda activation: 1",
    "é😀",
]


def cel_string(text: str, quote: str = "'") -> str:
    """``text`` as a CEL string literal, with CEL escapes."""
    escaped = text.replace("\\", "\\\\").replace(quote, "\\" + quote)
    escaped = escaped.replace("\n", "\\n").replace("\r", "\\r")
    return quote + "".join(_cel_escape(char) for char in escaped) + quote


def _cel_escape(char: str) -> str:
    if char.isprintable() or char in "\\":
        return char
    return f"\\u{ord(char):04x}" if ord(char) < 0x10000 else f"\\U{ord(char):08x}"


def assert_not_injected() -> None:
    assert not hasattr(celpy, "INJECTED")
    assert not hasattr(celpy.evaluation, "INJECTED")


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("quote", ["'", '"'])
def test_string_literals_stay_data(payload, quote):
    expression = f"name + {cel_string(payload, quote)} == {cel_string('Ada' + payload, quote)}"
    condition = compile_condition(expression, limits=CelLimits(max_length=5000))
    assert isinstance(condition.program, TranspiledProgram)
    assert condition.evaluate(convert_context(CONTEXT)) is True
    assert_not_injected()


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        (r"r'a\n' == 'a\\n'", True),
        ("name == '''Ada'''", True),
        ('name == """Ada"""', True),
        # cel-python drops a line break inside a triple-quoted string (both runners).
        ("'ab' == '''a\nb'''", True),
        (r"""b'\x27); celpy.INJECTED = 1 #' == b"'); celpy.INJECTED = 1 #" """, True),
        (r"""b'''\'''' == b"'" """, True),
        (r"name == '\x41da' && name == '\u0041da' && name == '\101da'", True),
        (r"""'\'' + '\\' + '\"' == "'\\\"" """, True),
        ("{'); celpy.INJECTED = 1 #': 1}['); celpy.INJECTED = 1 #'] == 1", True),
        (r"['\\', '\''].exists(__import__, __import__ == '\'')", True),
        ("claim.__class__ == 1 || claim.__globals__ == 1 || true", True),
        ("claim.__class__ == 1", "error"),
    ],
)
def test_quoting_literals_and_names_stay_data(expression, expected):
    interpreted, transpiled = both_ways(expression)
    assert isinstance(transpiled.program, TranspiledProgram)
    assert outcome(transpiled) == outcome(interpreted) == expected
    assert_not_injected()


def test_names_reach_no_python_attributes():
    # Dunder names are CEL identifiers: they look up the context, never Python objects.
    expression = "__class__.__init__.__globals__ == 1"
    interpreted, transpiled = both_ways(expression)
    assert isinstance(transpiled.program, TranspiledProgram)
    assert outcome(transpiled) == outcome(interpreted) == "error"
    source = transpiled.program.source
    assert "'__globals__'" in source
    assert ".__globals__" not in source


@settings(FUZZ)
@given(
    text=st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40
    )
)
@example(text="'''")
@example(text='\\"; x')
def test_any_string_literal_round_trips(text):
    expression = f"value == {cel_string(text)}"
    try:
        condition = compile_condition(expression, limits=CelLimits(max_length=5000))
    except ConditionSyntaxError:
        # Control characters are refused by the safety checks, before any code exists.
        assume(False)
    assert isinstance(condition.program, TranspiledProgram)
    assert condition.evaluate(convert_context({"value": text})) is True
    assert_not_injected()


@settings(FUZZ)
@given(name=st.from_regex(r"[_a-zA-Z][_a-zA-Z0-9]{0,12}", fullmatch=True))
def test_any_identifier_is_a_variable(name):
    reserved = {"true", "false", "null", "in", "has", "dyn", "m"}
    assume(name not in reserved)
    expression = f"{name} == 'v' && m.{name} == 'w' && [1].all({name}, {name} == 1)"
    condition = compile_condition(expression)
    assert isinstance(condition.program, TranspiledProgram)
    assert condition.evaluate(convert_context({name: "v", "m": {name: "w"}})) is True


@pytest.mark.parametrize(
    "source",
    [
        "def condition(base_activation):\n    return __import__('os')\n",
        "def condition(base_activation):\n    return base_activation.__class__\n",
        "def condition(base_activation):\n    return celpy.evaluation.exec\n",
        "def condition(base_activation):\n    return _functions['x']\n",
        "def condition(base_activation):\n    return _variable(base_activation, 'a b')\n",
        "def condition(base_activation):\n    import os\n    return os\n",
        "def condition(base_activation):\n    return [c for c in celpy]\n",
        "def condition(base_activation):\n    return 1.5\n",
        "def other(base_activation):\n    return 1\n",
        "def condition(base_activation):\n    celpy.evaluation.result = _map\n    return 1\n",
        "def condition(base_activation):\n    _functions = 1\n    return 1\n",
        "def condition(base_activation):\n    return _map(items=1)\n",
        "def condition(base_activation):\n    return (lambda x: x)(1)\n",
        "def condition(base_activation):\n    def condition(activation):\n        return 1\n",
        "def condition(base_activation):\n    return 1\ndef condition(activation):\n    return 1\n",
        "x = 1\ndef condition(base_activation):\n    return 1\n",
    ],
)
def test_source_check_refuses_anything_unexpected(source):
    with pytest.raises(UnsafeSourceError):
        _check_source(source)


# --- thread safety -----------------------------------------------------------------


def test_threads_evaluating_one_condition_see_their_own_context():
    condition = compile_condition("claim.lines.exists(line, line.qty == count) && name != ''")
    assert isinstance(condition.program, TranspiledProgram)
    contexts = [
        convert_context({"count": n, "name": "n", "claim": {"lines": [{"qty": n}]}})
        for n in range(8)
    ]
    other = convert_context({"count": 1, "name": "n", "claim": {"lines": [{"qty": 2}]}})
    failures: list[str] = []
    barrier = threading.Barrier(4)

    def work(index: int) -> None:
        barrier.wait()
        for turn in range(1000):
            if turn % 2:
                if condition.evaluate(other) is not False:
                    failures.append(f"thread {index} turn {turn}: true for a mismatch")
            elif condition.evaluate(contexts[(index + turn) % 8]) is not True:
                failures.append(f"thread {index} turn {turn}: false for a match")

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        threads = [threading.Thread(target=work, args=(index,)) for index in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert failures == []


def test_dotted_context_names_do_not_leak_into_later_evaluations():
    condition = compile_condition("has(google.protobuf.leak) || count == 1")
    assert isinstance(condition.program, TranspiledProgram)
    dotted = {"google.protobuf.leak": 1, "count": 2}
    assert condition.evaluate(convert_context(dotted)) is True
    assert condition.evaluate(convert_context({"count": 2})) is False


# --- cel-python's one parser per process -------------------------------------------


@pytest.mark.parametrize("first_tree_class", ["lark", "transpiler"])
def test_transpiling_does_not_depend_on_who_made_the_parser(monkeypatch, first_tree_class):
    # cel-python builds one parser per process, with the tree class of the first
    # CELParser(); the stock CompiledRunner then failed with "'Tree' object has no
    # attribute 'checked_exception'" when an interpreted Environment came first.
    monkeypatch.setattr(CELParser, "CEL_PARSER", None)
    if first_tree_class == "lark":
        CELParser()
    else:
        celpy.Environment(runner_class=celpy.CompiledRunner)
    backend = CelPythonBackend()
    expression = "count > 2 && claim.lines.all(line, line.qty > 1)"
    tree = backend.parse(expression)
    check_condition_safety(expression, tree)
    program = backend.program(expression, tree)
    assert isinstance(program, TranspiledProgram)
    assert program.evaluate(convert_context(CONTEXT)) == celpy.celtypes.BoolType(True)
    # The tree the safety checks read stays unannotated, and the interpreter can run it.
    assert getattr(tree, "transpiled", "ex_0(activation)") == "ex_0(activation)"
    interpreted = _InterpretedProgram(backend.environment, tree)
    assert interpreted.evaluate(convert_context(CONTEXT)) == celpy.celtypes.BoolType(True)


# --- random conditions: the same answer as the interpreter -------------------------

#: Run before and after each random condition on the same prepared context.
SHARING = "nums.all(v, v > 0) && [count].exists(name, name == 3) && name == 'Ada'"


@settings(FUZZ)
@given(expression=celpy_expressions)
@example(expression="(claim.lines.exists(v, v.qty > 4) || (1 / 0 > 1))")
@example(expression="[1, 2].map(v, v * 2)[1] == 4")
@example(expression="(nums.filter(v, v > 1) == [2, 3])")
def test_random_conditions_match_the_interpreter(expression):
    try:
        interpreted, transpiled = both_ways(expression)
        check_condition_safety(expression, celpy_backend().parse(expression))
    except ConditionError:
        assume(False)
    if not any(marker in expression for marker in ("has(", "dyn(", "(v)", "(v, v, v)")):
        assert isinstance(transpiled.program, TranspiledProgram)
    expected = outcome(interpreted)
    assert outcome(transpiled) == expected
    # Again on a context whose activation other conditions (a macro first) built and used.
    sharing = compile_condition(SHARING)
    assert isinstance(sharing.program, TranspiledProgram)
    prepared = convert_context(CONTEXT)
    assert outcome_in(sharing, prepared) is True
    assert outcome_in(transpiled, prepared) == expected
    assert outcome_in(sharing, prepared) is True
    assert outcome_in(transpiled, prepared) == expected


# --- one activation per prepared context -------------------------------------------


def test_conditions_of_one_change_share_the_activation(monkeypatch):
    built: list[Any] = []
    original = TranspiledProgram._activation

    def counting(self: TranspiledProgram, context: Any) -> Any:
        activation = original(self, context)
        built.append(activation)
        return activation

    monkeypatch.setattr(TranspiledProgram, "_activation", counting)
    first = compile_condition("claim.amount > 100.0 && 'vip' in tags")
    second = compile_condition("name == 'Ada' || count > 100")
    prepared = convert_context(CONTEXT)
    assert isinstance(prepared, PreparedContext)
    assert first.evaluate(prepared) is True
    assert second.evaluate(prepared) is True
    assert len(built) == 1
    assert first.evaluate(convert_context(CONTEXT)) is True
    assert len(built) == 2


def test_a_shared_activation_is_not_changed_by_evaluation():
    # A macro binds its variable (here named like context keys) in a clone only.
    prepared = convert_context(CONTEXT)
    conditions = [
        compile_condition("nums.all(count, count > 0) && tags.exists(name, name == 'vip')"),
        compile_condition("[claim].map(count, count.amount)[0] == 12500.0"),
        compile_condition("count == 3 && name == 'Ada' && claim.lines.size() == 2"),
    ]
    assert all(isinstance(condition.program, TranspiledProgram) for condition in conditions)
    assert conditions[2].evaluate(prepared) is True
    assert prepared.activation is not None
    activation = prepared.activation[2]
    before = {
        name: (referent.value, referent.container)
        for name, referent in activation.identifiers.items()
    }
    for _ in range(2):
        for condition in conditions:
            assert condition.evaluate(prepared) is True
    after = {
        name: (referent.value, referent.container)
        for name, referent in activation.identifiers.items()
    }
    assert after == before
    assert prepared.activation[2] is activation


def test_a_prepared_context_is_the_converted_dict():
    prepared = convert_context({"count": 3})
    assert prepared == {"count": celpy.celtypes.IntType(3)}
    # The interpreter reads it as a plain mapping.
    assert compile_condition(".count == 3").evaluate(prepared) is True


def test_context_names_that_cannot_load_fail_every_condition():
    prepared = convert_context({"not a name": 1})
    for expression in ("1 == 1", "2 == 2"):
        with pytest.raises(ConditionEvaluationError, match="Invalid name"):
            compile_condition(expression).evaluate(prepared)


# --- local equivalents of cel-python's helpers: the same results and failures ---------


def _behaviour(function: Any, *arguments: Any) -> Any:
    """What ``function`` returns or raises, comparable between two implementations."""
    try:
        value = function(*arguments)
    except Exception as error:
        return ("raised", type(error), error.args)
    if isinstance(value, celpy.CELEvalError):
        return ("error", value.args)
    return ("value", type(value), value)


SAMPLE_VALUES = [
    celpy.celtypes.IntType(1),
    celpy.celtypes.UintType(1),
    celpy.celtypes.DoubleType(1.0),
    celpy.celtypes.DoubleType(2.5),
    celpy.celtypes.StringType("a"),
    celpy.celtypes.BoolType(True),
    celpy.celtypes.BytesType(b"a"),
    None,
    celpy.celtypes.ListType([celpy.celtypes.IntType(1), celpy.celtypes.StringType("a")]),
    celpy.celtypes.ListType([celpy.celtypes.StringType("a"), celpy.celtypes.IntType(1)]),
    celpy.celtypes.ListType([celpy.celtypes.UintType(2)]),
    celpy.celtypes.ListType([]),
    celpy.celtypes.MapType({celpy.celtypes.StringType("a"): celpy.celtypes.IntType(1)}),
    celpy.CELEvalError("earlier", TypeError, ("x",)),
]


class _OddKeyError(KeyError):
    """A subclass cel-python's result() has no message for."""


@pytest.mark.parametrize(
    "error",
    [
        ValueError("v"),
        KeyError("k"),
        KeyError(),
        TypeError("t"),
        ZeroDivisionError("z"),
        OverflowError("o"),
        IndexError("i"),
        NameError("n", "more"),
        NameError(),
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad"),
        _OddKeyError("odd"),
        RuntimeError("r"),
    ],
)
def test_result_matches_cel_python(error):
    def failing(activation: Any) -> Any:
        raise error

    assert _behaviour(celpy_compiled._result, None, failing) == _behaviour(
        celpy.evaluation.result, None, failing
    )
    value = celpy.celtypes.IntType(3)
    assert celpy_compiled._result(None, lambda activation: value) is value


def test_generated_code_reaches_only_result_through_celpy():
    condition = compile_condition("count > 1 || has(claim.amount)")
    assert isinstance(condition.program, TranspiledProgram)
    assert "celpy.evaluation.result(" in condition.program.source
    assert vars(celpy_compiled._CELPY) == {"evaluation": celpy_compiled._CELPY.evaluation}
    assert vars(celpy_compiled._CELPY.evaluation) == {"result": celpy_compiled._result}
    with pytest.raises(UnsafeSourceError):
        _check_source("def condition(base_activation):\n    return celpy.celtypes\n")


# --- the context converter builds what the celtypes constructors build ---------------


def _typed(value: Any) -> Any:
    """``value`` with the type of every part, for comparisons that see types."""
    if isinstance(value, dict):
        return (type(value), [(_typed(key), _typed(item)) for key, item in value.items()])
    if isinstance(value, list):
        return (type(value), [_typed(item) for item in value])
    return (type(value), value)


def _reference(value: Any) -> Any:
    """The celtypes value of plain data, through the celtypes constructors."""
    types = celpy.celtypes
    if value is None:
        return None
    if isinstance(value, bool):
        return types.BoolType(value)
    if isinstance(value, int):
        return types.IntType(value)
    if isinstance(value, float):
        return types.DoubleType(value)
    if isinstance(value, str):
        return types.StringType(value)
    if isinstance(value, datetime.datetime):
        return types.TimestampType(value)
    if isinstance(value, dict):
        return types.MapType({types.StringType(k): _reference(v) for k, v in value.items()})
    return types.ListType([_reference(item) for item in value])


@settings(FUZZ)
@given(
    context=st.dictionaries(st.from_regex(r"[a-z]{1,6}", fullmatch=True), plain_values, max_size=4)
)
def test_converted_context_matches_the_celtypes_constructors(context):
    try:
        prepared = convert_context(context, limits=CelLimits(context_max_depth=50))
    except ConditionError:
        assume(False)
    expected = {key: _reference(value) for key, value in context.items()}
    assert _typed(dict(prepared)) == _typed(expected)


@pytest.mark.parametrize(
    ("make", "constructor", "values"),
    [
        ("make_bool", "BoolType", [True, False]),
        ("make_int", "IntType", [0, -1, 2**63 - 1, -(2**63)]),
        ("make_double", "DoubleType", [0.0, -0.0, 1.5, 1e308]),
        ("make_string", "StringType", ["", "a", "é😀"]),
        ("make_map", "MapType", [{}, {"a": 1}]),
        ("make_list", "ListType", [[], [1, "a"]]),
    ],
)
def test_celpy_converter_values_match_the_constructors(make, constructor, values):
    converter = celpy_module._CelPyConverter(CelLimits())
    for value in values:
        ours = getattr(converter, make)(value)
        theirs = getattr(celpy.celtypes, constructor)(value)
        assert type(ours) is type(theirs)
        assert ours == theirs
