"""One suite of conditions and contexts, run against every CEL backend.

Both backends ("celpy", the default, and "cel-expr", the optional C++ runtime) must
give the same result or the same kind of error for every case here: the CEL
specification's (tests/test_cel_spec.py runs its conformance cases).
"""

from __future__ import annotations

import datetime
import decimal
import importlib.util
import sys
import uuid
from typing import Any

import pytest
from django.test import override_settings

from django_steps.cel import CelLimits, compile_condition, convert_context, get_backend
from django_steps.cel import backends as backends_module
from django_steps.checks import check_settings
from django_steps.exceptions import (
    ConditionEvaluationError,
    ConditionSyntaxError,
    ContextError,
    NoTransitionAvailable,
)
from django_steps.machines import MachineState, WorkflowDefinition, WorkflowRunner
from tests.factories import claims_definition

HAS_CEL_EXPR = importlib.util.find_spec("cel_expr_python") is not None

BACKENDS = [
    "celpy",
    pytest.param(
        "cel-expr",
        marks=pytest.mark.skipif(not HAS_CEL_EXPR, reason="cel-expr-python is not installed"),
    ),
]

UTC = datetime.timezone.utc
CONTEXT: dict[str, Any] = {
    "count": 3,
    "ratio": 0.5,
    "price": decimal.Decimal("19.99"),
    "name": "Ada Lovelace",
    "flag": True,
    "nothing": None,
    "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "due": datetime.date(2024, 2, 29),
    "seen": datetime.datetime(2024, 3, 1, 12, 30),  # naive: taken as UTC
    "aware": datetime.datetime(
        2024, 3, 1, 14, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
    ),
    "tags": ["urgent", "vip"],
    "pair": (1, 2),
    "claim": {
        "amount": 12500.0,
        "is_high_risk": False,
        "lines": [{"sku": "A", "qty": 2}, {"sku": "B", "qty": 5}],
        "meta": {"filed": datetime.datetime(2024, 1, 15, tzinfo=UTC), "tags": []},
    },
}

# (condition, expected result) with CONTEXT: both backends must agree.
SHARED_RESULTS = [
    # Heterogeneous equality (the CEL specification): never an error, and a bool is
    # not a number.
    ("[count] == [3.0]", True),
    ("flag == 1", False),
    ("count != null", True),
    ("claim.amount != null && claim.amount == 12500", True),
    ("nothing == null", True),
    ("{'a': 1} == {'a': 1.0}", True),
    ("1 == 1u && 2u < 3 && 3.0 > 2u", True),
    # `in` compares with the same equality; membership in a string is no overload.
    ("1 in [true]", False),
    ("3.0 in [count]", True),
    ("count == 3", True),
    ("count > 2 && count < 4", True),
    ("count != 3 || flag", True),
    ("!flag", False),
    ("ratio == 0.5", True),
    ("ratio < 1.0", True),
    ("4.0 < 10", True),
    # Numbers compare across int and double (the CEL spec; cel-python issue 114 is
    # worked around in the celpy backend).
    ("count > 2.5", True),
    ("10 < 4.0", False),
    ("count == 3.0", True),
    ("1 == 1.0", True),
    ("claim.lines[0].qty < 2.5", True),
    ("claim.amount > 10000", True),
    ("price > 19.5 && price < 20.0", True),  # Decimal becomes a double
    ("name == 'Ada Lovelace'", True),
    ("name.startsWith('Ada') && name.endsWith('lace')", True),
    ("name.contains('Love')", True),
    ("name.matches('^A.*e$')", True),
    ("size(name) == 12", True),
    ("nothing == null", True),
    ("id == '12345678-1234-5678-1234-567812345678'", True),  # UUID becomes its string
    ("due == timestamp('2024-02-29T00:00:00Z')", True),  # date becomes midnight UTC
    ("seen == timestamp('2024-03-01T12:30:00Z')", True),
    ("aware == timestamp('2024-03-01T12:30:00Z')", True),
    ("seen > due", True),
    ("seen.getFullYear() == 2024 && seen.getMonth() == 2", True),
    ("'vip' in tags", True),
    ("size(tags) == 2 && tags[0] == 'urgent'", True),
    ("pair[1] == 2", True),
    ("claim.amount > 10000.0", True),
    ("claim.is_high_risk == true", False),
    ("claim.lines.exists(line, line.qty > 4)", True),
    ("claim.lines.all(line, line.qty > 4)", False),
    ("claim.lines.filter(line, line.sku == 'B').size() == 1", True),
    ("claim.lines.map(line, line.qty)[1] == 5", True),
    ("claim.meta.filed < seen", True),
    ("size(claim.meta.tags) == 0", True),
    ("has(claim.amount) && !has(claim.currency)", True),
    ("'amount' in claim", True),
    ("int(ratio * 10.0) == 5", True),
    ("double(count) == 3.0", True),
    ("string(count) == '3'", True),
    ("count == 2 ? false : true", True),
    ("[1, 2, 3].exists(x, x == count)", True),
    ("{'a': 1}['a'] == 1", True),
]

# Conditions that must fail to evaluate (never true, never false) in both backends.
SHARED_EVALUATION_ERRORS = [
    ("missing > 1", "undefined variable 'missing'"),
    ("count", "the condition gave an int 3, not a bool"),
    ("name", "the condition gave a string Ada Lovelace, not a bool"),
    ("count / 0 == 1", "divide by zero"),
    ("count + name == 'x'", "no such overload"),
    ("claim.nope == 1", None),
    ("claim.lines[5].qty == 1", None),
    ("count.field == 1", None),
    ("9223372036854775807 + 1 > 0", "overflow"),
]


# Known differences, asserted so that a change upstream is noticed.
# (condition, celpy result or None for "evaluation error", cel-expr result)
@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


def evaluate(expression: str, backend: str, context: dict[str, Any] | None = None) -> bool:
    activation = convert_context(CONTEXT if context is None else context, backend=backend)
    return compile_condition(expression, backend=backend).evaluate(activation)


@pytest.mark.parametrize(("expression", "expected"), SHARED_RESULTS)
def test_same_result(backend, expression, expected):
    assert evaluate(expression, backend) is expected


@pytest.mark.parametrize(("expression", "message"), SHARED_EVALUATION_ERRORS)
def test_same_evaluation_error(backend, expression, message):
    with pytest.raises(ConditionEvaluationError) as caught:
        evaluate(expression, backend)
    assert caught.value.expression == expression
    text = str(caught.value)
    assert "\n" not in text
    if message is not None:
        assert message in text


@pytest.mark.parametrize(
    ("expression", "line", "column"),
    [("count >", 1, 7), ("count > 1 &&\n  (flag", 2, 4), ("'unterminated", 1, 1)],
)
def test_same_syntax_errors_with_position(backend, expression, line, column):
    with pytest.raises(ConditionSyntaxError) as caught:
        compile_condition(expression, backend=backend)
    assert (caught.value.line, caught.value.column) == (line, column)
    assert "\n" not in str(caught.value)


def test_same_limits_on_the_text(backend):
    limits = CelLimits(max_length=20, max_depth=3)
    with pytest.raises(ConditionSyntaxError, match="CONDITION_MAX_LENGTH"):
        compile_condition("count > 1 && " * 3 + "flag", backend=backend, limits=limits)
    with pytest.raises(ConditionSyntaxError, match="CONDITION_MAX_DEPTH"):
        compile_condition("((((flag))))", backend=backend, limits=limits)


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"x": {1, 2}}, "is a set"),
        ({"x": object()}, "is a object"),
        ({"x": {1: "a"}}, "keys must be strings"),
        ({"x": 2**63}, "does not fit in 64 bits"),
        ({"x": decimal.Decimal("NaN")}, "not a finite number"),
        ({"x": b"bytes"}, "is a bytes"),
        ({"x": [[[[[[[[[[[1]]]]]]]]]]]}, "CONTEXT_MAX_DEPTH"),
        ({"x": "y" * 70000}, "CONTEXT_MAX_BYTES"),
    ],
)
def test_same_context_errors(backend, context, message):
    with pytest.raises(ContextError, match=message):
        convert_context(context, backend=backend)


def test_context_must_be_a_mapping(backend):
    with pytest.raises(ContextError, match="must be a dict, not list"):
        convert_context([1, 2], backend=backend)  # type: ignore[arg-type]


def test_compiled_conditions_are_cached_per_backend(backend):
    first = compile_condition("count > 1", backend=backend)
    assert compile_condition("count > 1", backend=backend) is first
    assert first.backend is get_backend(backend)


@pytest.mark.parametrize(
    ("context", "target"),
    [
        ({"claim": {"amount": 500.0, "is_high_risk": True}}, "Investigation"),
        ({"claim": {"amount": 50000.0, "is_high_risk": False}}, "Senior Review"),
        ({"claim": {"amount": 500.0, "is_high_risk": False}}, "Payment"),
    ],
)
def test_runner_takes_the_same_transitions(backend, context, target):
    runner = WorkflowRunner(WorkflowDefinition.from_dict(claims_definition()), backend=backend)
    state, _ = runner.start()
    runner.set_status(state, "Accepted")
    outcome = runner.set_status(state, "Approved", context)
    assert state.step == target
    assert [(e.transition.to_step, e.result) for e in outcome.evaluations][-1] == (target, True)


def test_runner_fails_closed_the_same_way(backend):
    data = claims_definition()
    data["transitions"] = [t for t in data["transitions"] if t.get("condition") != ""]
    runner = WorkflowRunner(WorkflowDefinition.from_dict(data), backend=backend)
    state = MachineState(step="Review", status="Pending")
    with pytest.raises(NoTransitionAvailable) as caught:
        runner.set_status(state, "Approved", {"claim": {"amount": 1.0, "is_high_risk": False}})
    assert [e.result for e in caught.value.evaluations] == [False, False]
    assert state.step == "Review"


# --- the optional backend when its package is missing -----------------------------


@pytest.fixture
def without_cel_expr(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import cel_expr_python`` fail and forget any backend already built."""
    monkeypatch.setitem(sys.modules, "cel_expr_python", None)
    monkeypatch.delitem(backends_module._backends, "cel-expr", raising=False)


@pytest.mark.usefixtures("without_cel_expr")
def test_missing_package_is_a_clear_import_error():
    with pytest.raises(ImportError, match=r"cel-expr-python.*django-steps\[fast-cel\]"):
        get_backend("cel-expr")


@pytest.mark.usefixtures("without_cel_expr")
def test_missing_package_is_reported_by_the_system_check():
    with override_settings(DJANGO_STEPS={"CEL_BACKEND": "cel-expr"}):
        messages = check_settings()
    errors = [message for message in messages if message.id == "django_steps.E004"]
    assert len(errors) == 1
    assert "fast-cel" in errors[0].msg


def test_unknown_backend_names_the_choices():
    with pytest.raises(LookupError, match=r"'cel-expr', 'celpy'"):
        get_backend("cel-rust")
