"""Definition validation: every rule, on plain definitions, rows, models and services."""

from __future__ import annotations

import datetime
import decimal
import re
from dataclasses import replace
from typing import Any

import pytest
from django import forms
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.test import override_settings

from django_steps import engine
from django_steps._engine.cache import workflow_cache
from django_steps.cel.variables import (
    check_declared_context,
    declaration_errors,
    parse_declarations,
)
from django_steps.diagrams import workflow_diagram
from django_steps.exceptions import (
    ContextError,
    DefinitionError,
    InstanceNotFound,
    InvalidStatus,
)
from django_steps.introspection import describe_workflow
from django_steps.machines import MachineState, WorkflowDefinition, WorkflowRunner
from django_steps.machines.validation import (
    Problem,
    condition_issues,
    ensure_valid_definition,
    validate_definition,
)
from django_steps.models import (
    Workflow,
    WorkflowHistory,
    WorkflowInstance,
    WorkflowStep,
    WorkflowStepStatus,
    WorkflowTransition,
)
from django_steps.services import start_workflow_instance, update_workflow_step_status
from django_steps.testing import drive
from django_steps.transfer import import_definitions
from django_steps.validation import check_condition, ensure_valid, validate_workflow
from tests.conftest import LOW
from tests.factories import claims_definition, create_workflow
from tests.testapp.models import Claim


def problems_of(data: dict[str, Any]) -> list[Problem]:
    return validate_definition(WorkflowDefinition.from_dict(data))


def only(problems: list[Problem], code: str) -> Problem:
    found = [problem for problem in problems if problem.code == code]
    assert len(found) == 1, f"expected one {code!r} in {[str(p) for p in problems]}"
    return found[0]


def step(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(item for item in data["steps"] if item["name"] == name)


def status(data: dict[str, Any], step_name: str, name: str) -> dict[str, Any]:
    return next(item for item in step(data, step_name)["statuses"] if item["name"] == name)


def remove_transitions(data: dict[str, Any], **match: str) -> None:
    data["transitions"] = [
        t for t in data["transitions"] if any(t[key] != value for key, value in match.items())
    ]


# --- the rules on plain definitions -----------------------------------------------------


def test_the_claims_workflow_has_no_problems():
    assert problems_of(claims_definition()) == []


def test_no_steps():
    data = {"name": "Empty"}
    problem = only(problems_of(data), "no_steps")
    assert problem.is_error
    assert (problem.kind, problem.name) == ("workflow", "Empty")
    assert "Workflow 'Empty'" in problem.message


def test_no_initial_step():
    data = claims_definition()
    step(data, "Submitted")["initial"] = False
    problems = problems_of(data)
    problem = only(problems, "no_initial_step")
    assert problem.is_error
    assert problem.message == (
        "Workflow 'Claims': it has no initial step; mark the step instances start at as initial."
    )
    # Without an initial step, reachability is not judged (it would blame every step).
    assert not [p for p in problems if p.code == "unreachable_step"]


def test_several_initial_steps():
    data = claims_definition()
    step(data, "Review")["initial"] = True
    problem = only(problems_of(data), "multiple_initial_steps")
    assert problem.is_error
    assert (problem.kind, problem.name, problem.field) == ("step", "Review", "is_initial_step")
    assert "'Submitted', 'Review'" in problem.message


def test_no_final_step():
    data = claims_definition()
    step(data, "Closed")["final"] = False
    problems = problems_of(data)
    assert only(problems, "no_final_step").is_error
    # The step that is no longer final has no way out either.
    assert only(problems, "step_has_no_way_out").name == "Closed"


def test_final_step_with_outgoing_transitions():
    data = claims_definition()
    data["transitions"].append({"from": "Closed", "to": "Review"})
    problem = only(problems_of(data), "final_step_has_transitions")
    assert problem.is_error
    assert (problem.kind, problem.name, problem.field) == ("step", "Closed", "is_final_step")
    assert "'Closed -> Review'" in problem.message


def test_step_without_default_status():
    data = claims_definition()
    status(data, "Review", "Pending")["default"] = False
    problem = only(problems_of(data), "no_default_status")
    assert problem.is_error
    assert (problem.kind, problem.name) == ("step", "Review")
    assert "step 'Review' has no default status" in problem.message


def test_step_with_several_default_statuses():
    data = claims_definition()
    status(data, "Review", "In progress")["default"] = True
    problem = only(problems_of(data), "multiple_default_statuses")
    assert (problem.kind, problem.step, problem.name) == ("status", "Review", "In progress")
    assert problem.field == "is_default_status"
    assert "'Pending', 'In progress'" in problem.message


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        ({"completion": True, "cancellation": True}, "completion and cancellation"),
        ({"completion": True, "on_hold": True}, "completion and on-hold"),
        ({"cancellation": True, "on_hold": True}, "cancellation and on-hold"),
    ],
)
def test_status_with_more_than_one_special_flag(flags, words):
    data = claims_definition()
    status(data, "Review", "In progress").update(flags)
    problem = only(problems_of(data), "conflicting_status_flags")
    assert problem.is_error
    assert (problem.kind, problem.step, problem.name) == ("status", "Review", "In progress")
    assert f"is marked {words}" in problem.message


@pytest.mark.parametrize("flag", ["completion", "cancellation", "on_hold"])
def test_non_final_step_whose_default_status_ends_it(flag):
    data = claims_definition()
    status(data, "Review", "Pending")[flag] = True
    if flag == "completion":
        status(data, "Review", "Approved")["completion"] = False
    problem = only(problems_of(data), "default_status_ends_step")
    assert (problem.kind, problem.step, problem.name) == ("status", "Review", "Pending")
    assert problem.field == "is_default_status"


def test_final_step_may_default_to_its_completion_status():
    data = claims_definition()
    assert status(data, "Closed", "Closed") == {
        "name": "Closed",
        "default": True,
        "completion": True,
    }
    assert not [p for p in problems_of(data) if p.code == "default_status_ends_step"]


def test_non_final_step_without_completion_status():
    data = claims_definition()
    status(data, "Payment", "Paid")["completion"] = False
    problem = only(problems_of(data), "step_cannot_complete")
    assert problem.is_error
    assert problem.name == "Payment"
    assert "can never leave it" in problem.message


def test_final_step_without_completion_status_is_a_warning():
    data = claims_definition()
    status(data, "Closed", "Closed")["completion"] = False
    problem = only(problems_of(data), "final_step_cannot_complete")
    assert problem.severity == "warning"


def test_non_final_step_without_outgoing_transition():
    data = claims_definition()
    remove_transitions(data, **{"from": "Payment"})
    problems = problems_of(data)
    problem = only(problems, "step_has_no_way_out")
    assert (problem.kind, problem.name) == ("step", "Payment")
    # Closed is now unreachable, and no final step can be reached from most steps.
    assert only(problems, "unreachable_step").name == "Closed"
    assert {p.name for p in problems if p.code == "no_path_to_final_step"} == {
        "Submitted",
        "Review",
        "Investigation",
        "Senior Review",
        "Payment",
    }


def test_transition_naming_an_unknown_step():
    data = claims_definition()
    data["transitions"].append({"name": "Oops", "from": "Review", "to": "Archive"})
    problem = only(problems_of(data), "transition_unknown_step")
    assert (problem.kind, problem.name, problem.field) == ("transition", "Oops", "to_step")
    assert "step 'Archive'" in problem.message


def test_unreachable_step_is_an_error():
    data = claims_definition()
    remove_transitions(data, to="Investigation")
    problem = only(problems_of(data), "unreachable_step")
    assert problem.is_error
    assert (problem.kind, problem.name) == ("step", "Investigation")
    assert "initial step 'Submitted'" in problem.message


def test_step_from_which_no_final_step_is_reachable_is_a_warning():
    data = claims_definition()
    remove_transitions(data, **{"from": "Investigation"})
    data["transitions"].append({"from": "Investigation", "to": "Review", "condition": "true"})
    problems = problems_of(data)
    assert [p.code for p in problems] == []  # Investigation -> Review -> ... -> Closed
    data["transitions"][-1] = {"from": "Investigation", "to": "Investigation"}
    problem = only(problems_of(data), "no_path_to_final_step")
    assert problem.severity == "warning"
    assert problem.name == "Investigation"


def test_conditional_transitions_with_the_same_priority_are_a_warning():
    data = claims_definition()
    data["transitions"][2]["priority"] = 30  # Review -> Senior Review, like Investigation
    problem = only(problems_of(data), "same_priority")
    assert problem.severity == "warning"
    assert (problem.kind, problem.name, problem.field) == (
        "transition",
        "Review -> Senior Review",
        "priority",
    )
    assert "share priority 30" in problem.message


def test_unconditional_transitions_with_the_same_priority_are_not_reported_as_ties():
    data = claims_definition()
    data["transitions"].append({"from": "Payment", "to": "Closed", "name": "Again"})
    problems = problems_of(data)
    assert not [p for p in problems if p.code == "same_priority"]
    assert only(problems, "shadowed_transition").name == "Again"


def test_transition_after_an_unconditional_one_is_never_taken():
    data = claims_definition()
    data["transitions"][3]["priority"] = 50  # Review -> Payment, no condition, now first
    problems = problems_of(data)
    assert {p.name for p in problems if p.code == "shadowed_transition"} == {
        "Review -> Investigation",
        "Review -> Senior Review",
    }
    assert all(p.severity == "warning" for p in problems)


@pytest.mark.parametrize(
    ("condition", "line", "column", "text"),
    [
        ("claim.amount >", 1, 14, "does not parse"),
        ("claim.amount > 1.0 &&\n  claim.kind = 'x'", 2, 14, "does not parse"),
        ("(" * 40 + "1" + ")" * 40 + " == 1", 1, 31, "nested more than 30 levels"),
        ("a.all(x, b.exists(y, y == x))", 1, 12, "nests the macro"),
        ("duration(claim.delay) > duration('1h')", 1, 1, "string literal"),
    ],
)
def test_condition_that_does_not_compile_reports_line_and_column(condition, line, column, text):
    data = claims_definition()
    data["transitions"][1]["condition"] = condition
    problem = only(problems_of(data), "invalid_condition")
    assert problem.is_error
    assert (problem.kind, problem.name, problem.field) == (
        "transition",
        "Review -> Investigation",
        "condition",
    )
    assert (problem.line, problem.column) == (line, column)
    assert text in problem.message
    assert f"line {line}, column {column}" in problem.message


def test_condition_over_the_length_limit():
    data = claims_definition()
    data["transitions"][1]["condition"] = "claim.amount > 1.0 || " * 50 + "false"
    problem = only(problems_of(data), "invalid_condition")
    assert "CONDITION_MAX_LENGTH" in problem.message


def test_every_bad_condition_is_reported():
    data = claims_definition()
    data["transitions"][1]["condition"] = "claim.is_high_risk =="
    data["transitions"][2]["condition"] = "claim.amount >"
    problems = problems_of(data)
    assert [p.name for p in problems if p.code == "invalid_condition"] == [
        "Review -> Investigation",
        "Review -> Senior Review",
    ]


# --- declared variables -----------------------------------------------------------------


def test_undeclared_variable_is_reported_with_a_suggestion():
    data = claims_definition()
    data["context_variables"] = {"claim": "map", "amount": "double"}
    data["transitions"][2]["condition"] = "clam.amount > 10000.0"
    problem = only(problems_of(data), "undeclared_variable")
    assert problem.is_error
    assert (problem.name, problem.field, problem.line, problem.column) == (
        "Review -> Senior Review",
        "condition",
        1,
        1,
    )
    assert "variable 'clam' (line 1, column 1) is not declared; did you mean 'claim'?" in (
        problem.message
    )
    assert "Declared variables: amount, claim." in problem.message


def test_loop_variables_and_declared_variables_are_fine():
    data = claims_definition()
    data["context_variables"] = {"claim": "map", "limits": "list"}
    data["transitions"][2]["condition"] = "limits.exists(x, claim.amount > x)"
    assert problems_of(data) == []


def test_each_undeclared_variable_is_reported_once():
    data = claims_definition()
    data["context_variables"] = {"claim": "map"}
    data["transitions"][2]["condition"] = "amount > 1.0 && amount < 5.0 && user.admin"
    problems = [p for p in problems_of(data) if p.code == "undeclared_variable"]
    assert [(p.line, p.column) for p in problems] == [(1, 1), (1, 33)]


def test_without_declaration_any_variable_may_be_used():
    data = claims_definition()
    data["transitions"][2]["condition"] = "whatever.amount > 10000.0"
    assert problems_of(data) == []


@pytest.mark.parametrize(
    ("declaration", "text"),
    [
        ({"claim": "dict"}, "'claim' has type 'dict'; choose one of bool, int, uint, double"),
        ({"2fast": "int"}, "'2fast' is not a valid name"),
        ({"in": "int"}, "'in' is a reserved word"),
        ({"int": "int"}, "'int' is a reserved word"),
        ({"claim": 3}, "'claim' has type 3"),
        (["claim"], "must be a mapping"),
    ],
)
def test_invalid_declarations(declaration, text):
    errors = declaration_errors(declaration)
    assert any(text in error for error in errors), errors
    with pytest.raises(DefinitionError):
        parse_declarations(declaration)


def test_invalid_declaration_is_a_workflow_problem():
    data = claims_definition()
    data["context_variables"] = {"claim": "object"}
    problem = only(problems_of(data), "invalid_context_variables")
    assert (problem.kind, problem.field) == ("workflow", "context_variables")


def test_every_cel_type_name_can_be_declared():
    names = ["bool", "int", "uint", "double", "string", "bytes", "list", "map"]
    names += ["timestamp", "duration", "null", "dyn"]
    declaration = {f"v_{name}": name for name in names}
    assert parse_declarations(declaration) == declaration


DECLARED = {
    "flag": "bool",
    "count": "int",
    "size": "uint",
    "amount": "double",
    "title": "string",
    "blob": "bytes",
    "items": "list",
    "claim": "map",
    "when": "timestamp",
    "wait": "duration",
    "nothing": "null",
    "anything": "dyn",
}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("flag", True),
        ("count", -3),
        ("size", 3),
        ("amount", 2.5),
        ("amount", decimal.Decimal("2.5")),
        ("title", "x"),
        ("blob", b"x"),
        ("items", [1]),
        ("items", (1,)),
        ("claim", {"a": 1}),
        ("when", datetime.date(2024, 1, 1)),
        ("when", datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)),
        ("wait", datetime.timedelta(hours=1)),
        ("nothing", None),
        ("anything", object()),
    ],
)
def test_context_values_matching_their_declaration(name, value):
    assert check_declared_context(DECLARED, {name: value}) == {name: value}


@pytest.mark.parametrize(
    ("name", "value", "text"),
    [
        (
            "flag",
            1,
            "'flag' is declared as bool and must be True or False, but context_data "
            "gives a int (1)",
        ),
        ("count", True, "'count' is declared as int"),
        ("count", 1.5, "gives a float (1.5)"),
        ("size", -1, "'size' is declared as uint and must be a non-negative int"),
        ("amount", "10", "'amount' is declared as double"),
        ("title", 5, "'title' is declared as string"),
        ("items", {"a": 1}, "'items' is declared as list"),
        (
            "claim",
            [1],
            "'claim' is declared as map and must be a dict, but context_data gives a list ([1])",
        ),
        ("claim", None, "gives a None (None)"),
        ("when", "2024-01-01", "'when' is declared as timestamp"),
        ("nothing", 0, "'nothing' is declared as null"),
    ],
)
def test_context_values_not_matching_their_declaration(name, value, text):
    with pytest.raises(ContextError, match=re.escape(text)) as info:
        check_declared_context(DECLARED, {name: value}, workflow="Claims")
    assert info.value.path == name
    assert str(info.value).startswith("Workflow 'Claims': context variable")


def test_ints_for_double_variables_become_floats_and_the_input_is_not_changed():
    context = {"amount": 10, "other": 1}
    checked = check_declared_context({"amount": "double"}, context)
    assert checked == {"amount": 10.0, "other": 1}
    assert isinstance(checked["amount"], float)
    assert context == {"amount": 10, "other": 1}


def test_context_that_is_not_a_mapping_is_refused_when_variables_are_declared():
    with pytest.raises(ContextError, match="context_data must be a dict, not list"):
        check_declared_context({"claim": "map"}, [("claim", {})])


def test_missing_and_undeclared_context_keys_are_left_alone():
    context = {"extra": object()}
    assert check_declared_context({"claim": "map"}, context) is context
    assert check_declared_context({"claim": "map"}, None) is None
    assert check_declared_context({}, {"claim": 1}) == {"claim": 1}


def declared_claims(**variables: str) -> dict[str, Any]:
    data = claims_definition()
    data["context_variables"] = variables or {"claim": "map", "amount": "double"}
    data["transitions"][2]["condition"] = "amount > 10000.0"
    return data


def test_runner_checks_context_against_the_declaration_before_evaluating():
    runner = WorkflowRunner(WorkflowDefinition.from_dict(declared_claims()))
    state = MachineState(step="Review", status="Pending")
    with pytest.raises(ContextError, match=r"'claim' is declared as map .* gives a list"):
        runner.set_status(state, "Approved", {"claim": [1], "amount": 1.0})
    with pytest.raises(ContextError, match="'amount' is declared as double"):
        runner.set_status(state, "In progress", {"amount": "a lot"})
    assert (state.step, state.status) == ("Review", "Pending")
    context = {"claim": {"is_high_risk": False}, "amount": 20000}  # int for a double
    outcome = runner.set_status(state, "Approved", context)
    assert state.step == "Senior Review"
    assert [e.result for e in outcome.evaluations] == [False, True]


# --- ensure_valid -----------------------------------------------------------------------


def test_ensure_valid_raises_with_every_problem_and_returns_warnings():
    data = claims_definition()
    step(data, "Submitted")["initial"] = False
    data["transitions"][2]["priority"] = 30
    with pytest.raises(DefinitionError, match="Workflow 'Claims' has 1 error\\(s\\)") as info:
        ensure_valid_definition(WorkflowDefinition.from_dict(data))
    assert {p.code for p in info.value.problems} == {"no_initial_step", "same_priority"}
    assert info.value.workflow == "Claims"
    step(data, "Submitted")["initial"] = True
    warnings = ensure_valid(WorkflowDefinition.from_dict(data))
    assert [p.code for p in warnings] == ["same_priority"]


def test_condition_issues_directly():
    assert condition_issues("") == []
    assert condition_issues("x > 1") == []
    [issue] = condition_issues("x >")
    assert (issue.code, issue.line, issue.column) == ("invalid_condition", 1, 3)
    [issue] = condition_issues("y > 1", declared={"x": "int"})
    assert (issue.code, issue.line, issue.column) == ("undeclared_variable", 1, 1)


# --- stored workflows -------------------------------------------------------------------


@pytest.mark.django_db
def test_validate_workflow_row_matches_its_definition_and_attaches_rows(
    django_assert_num_queries,
):
    data = claims_definition()
    data["transitions"][2]["condition"] = "claim.amount >"
    status(data, "Payment", "Paid")["completion"] = False
    workflow = create_workflow(data)
    with django_assert_num_queries(3):
        problems = validate_workflow(workflow)
    assert problems == problems_of(data)
    by_code = {p.code: p for p in problems}
    assert by_code["invalid_condition"].obj == WorkflowTransition.objects.get(
        name="Review -> Senior Review"
    )
    assert by_code["step_cannot_complete"].obj == WorkflowStep.objects.get(name="Payment")
    assert by_code["invalid_condition"].id == by_code["invalid_condition"].obj.pk


@pytest.mark.django_db
def test_status_and_workflow_problems_point_at_their_rows():
    data = claims_definition()
    status(data, "Review", "In progress").update(completion=True, on_hold=True)
    data["context_variables"] = {"claim": "thing"}
    workflow = create_workflow(data)
    by_code = {p.code: p for p in validate_workflow(workflow)}
    assert by_code["conflicting_status_flags"].obj == WorkflowStepStatus.objects.get(
        step__name="Review", name="In progress"
    )
    assert by_code["invalid_context_variables"].obj == workflow


@pytest.mark.django_db
def test_transition_between_steps_of_another_workflow():
    workflow = create_workflow(claims_definition())
    other_data = claims_definition()
    other_data["name"] = "Other"
    other = create_workflow(other_data)
    foreign = WorkflowStep.objects.get(workflow=other, name="Payment")
    WorkflowTransition.objects.create(
        workflow=workflow,
        name="Crossing",
        from_step=WorkflowStep.objects.get(workflow=workflow, name="Review"),
        to_step=foreign,
        condition="claim.amount > 1.0",
        priority=5,
    )
    problems = validate_workflow(workflow)
    problem = only(problems, "transition_other_workflow")
    assert problem.is_error
    assert (problem.kind, problem.name, problem.field) == ("transition", "Crossing", "to_step")
    assert "uses step 'Payment' of workflow 'Other'" in problem.message
    assert problem.obj.name == "Crossing"
    # The crossing transition is left out of the other rules (no false tie, no shadowing).
    assert [p.code for p in problems] == ["transition_other_workflow"]
    with pytest.raises(ValidationError) as info:
        problem.obj.full_clean()
    assert "belongs to workflow “Other”" in str(info.value.message_dict["to_step"])


@pytest.mark.django_db
def test_invalid_workflow_is_never_compiled_or_started():
    data = claims_definition()
    data["name"] = "Broken"
    step(data, "Closed")["final"] = False
    workflow = create_workflow(data)
    claim = Claim.objects.create(title="x", amount=1)
    assert start_workflow_instance("Broken", claim) is None
    with pytest.raises(DefinitionError, match="'Broken' has 3 error") as info:
        engine.start_workflow_instance("Broken", claim)
    assert [p.code for p in info.value.problems] == [
        "no_final_step",
        "default_status_ends_step",
        "step_has_no_way_out",
    ]
    assert WorkflowInstance.objects.count() == 0
    # Fixing it (which bumps the version) makes it usable without a restart.
    WorkflowStep.objects.filter(workflow=workflow, name="Closed").update(is_final_step=True)
    workflow.save()
    assert start_workflow_instance("Broken", claim) is not None


@pytest.mark.django_db
def test_every_path_refuses_a_workflow_with_no_final_step_with_the_same_codes():
    data = claims_definition()
    data["name"] = "Endless"
    step(data, "Closed")["final"] = False
    definition = WorkflowDefinition.from_dict(data)
    codes = ["no_final_step", "default_status_ends_step", "step_has_no_way_out"]
    assert [p.code for p in validate_definition(definition) if p.is_error] == codes
    create_workflow(data)
    claim = Claim.objects.create(title="x", amount=1)
    refusals = {
        "engine": lambda: engine.start_workflow_instance("Endless", claim),
        "introspection (row)": lambda: describe_workflow("Endless"),
        "introspection (definition)": lambda: describe_workflow(definition),
        "diagrams": lambda: workflow_diagram(Workflow.objects.get(name="Endless")),
        "testing": lambda: drive(definition, []),
        "import": lambda: import_definitions([replace(definition, name="Endless 2")]),
    }
    for where, refused in refusals.items():
        with pytest.raises(DefinitionError) as info:
            refused()
        assert [p.code for p in info.value.problems if p.is_error] == codes, where
    assert [p.code for p in validate_workflow(Workflow.objects.get(name="Endless"))] == codes
    assert not Workflow.objects.filter(name="Endless 2").exists()
    assert WorkflowInstance.objects.count() == 0


@pytest.mark.django_db
def test_warnings_do_not_stop_a_workflow_and_validation_runs_on_cache_misses_only(
    monkeypatch,
):
    data = claims_definition()
    data["transitions"][2]["priority"] = 30  # a tie: a warning
    create_workflow(data)
    calls = []
    import django_steps._engine.loading as loading_module
    import django_steps.machines.compiler as compiler_module

    original = compiler_module.validate_definition
    # Wherever the definition is validated: once per miss, not again by the compiler.
    for module in (loading_module, compiler_module):
        monkeypatch.setattr(
            module, "validate_definition", lambda *a, **k: calls.append(1) or original(*a, **k)
        )
    workflow_cache.clear()
    for title in ("a", "b", "c"):
        assert start_workflow_instance("Claims", Claim.objects.create(title=title, amount=1))
    assert calls == [1]


# --- model validation mirrors the database --------------------------------------------


@pytest.mark.django_db
class TestModels:
    @pytest.fixture
    def workflow(self):
        return create_workflow(claims_definition())

    def test_second_initial_step(self, workflow):
        step = WorkflowStep(workflow=workflow, name="Extra", order=9, is_initial_step=True)
        with pytest.raises(ValidationError) as info:
            step.full_clean()
        assert info.value.message_dict["is_initial_step"] == [
            "Workflow “Claims” already has an initial step: “Submitted”."
        ]
        with pytest.raises(IntegrityError), transaction.atomic():
            step.save()

    def test_duplicate_step_name(self, workflow):
        step = WorkflowStep(workflow=workflow, name="Review", order=9)
        with pytest.raises(ValidationError, match="Workflow and Name already exists"):
            step.full_clean()
        with pytest.raises(IntegrityError), transaction.atomic():
            step.save()

    def test_second_default_status(self, workflow):
        review = WorkflowStep.objects.get(workflow=workflow, name="Review")
        extra = WorkflowStepStatus(step=review, name="Extra", is_default_status=True)
        with pytest.raises(ValidationError) as info:
            extra.full_clean()
        assert info.value.message_dict["is_default_status"] == [
            "Step “Review” already has a default status: “Pending”."
        ]
        with pytest.raises(IntegrityError), transaction.atomic():
            extra.save()

    def test_duplicate_status_name(self, workflow):
        review = WorkflowStep.objects.get(workflow=workflow, name="Review")
        extra = WorkflowStepStatus(step=review, name="Pending")
        with pytest.raises(ValidationError, match="Step and Name already exists"):
            extra.full_clean()
        with pytest.raises(IntegrityError), transaction.atomic():
            extra.save()

    def test_duplicate_transition_name(self, workflow):
        review = WorkflowStep.objects.get(workflow=workflow, name="Review")
        transition = WorkflowTransition(
            workflow=workflow, name="Review -> Payment", from_step=review, to_step=review
        )
        with pytest.raises(ValidationError, match="Workflow and Name already exists"):
            transition.full_clean()
        with pytest.raises(IntegrityError), transaction.atomic():
            transition.save()

    def test_status_with_two_special_flags(self, workflow):
        review = WorkflowStep.objects.get(workflow=workflow, name="Review")
        both = WorkflowStepStatus(
            step=review, name="Done or not", is_completion_status=True, is_on_hold_status=True
        )
        with pytest.raises(ValidationError, match="“Done or not” is marked completion and on-hold"):
            both.full_clean()

    def test_default_status_that_ends_a_non_final_step(self, workflow):
        status = WorkflowStepStatus.objects.get(step__name="Review", name="Pending")
        status.is_cancellation_status = True
        with pytest.raises(ValidationError) as info:
            status.full_clean()
        assert "cannot be the default status of step “Review”" in str(
            info.value.message_dict["is_default_status"]
        )
        closed = WorkflowStepStatus.objects.get(step__name="Closed", name="Closed")
        closed.full_clean()  # the final step may default to its completion status

    @pytest.mark.parametrize("final", [False, True], ids=["step", "final step"])
    @pytest.mark.parametrize(
        "flags",
        [
            (),
            ("completion",),
            ("cancellation",),
            ("on_hold",),
            ("completion", "on_hold"),
            ("cancellation", "on_hold"),
            ("completion", "cancellation", "on_hold"),
        ],
        ids="+".join,
    )
    def test_status_clean_applies_the_validator_rules(self, workflow, flags, final):
        data = claims_definition()
        name = "Closed" if final else "Review"
        default = next(item for item in step(data, name)["statuses"] if item.get("default"))
        default.update({kind: kind in flags for kind in ("completion", "cancellation", "on_hold")})
        expected = {
            p.code for p in problems_of(data) if p.kind == "status" and p.name == default["name"]
        }
        row = WorkflowStepStatus.objects.get(
            step__workflow=workflow, step__name=name, is_default_status=True
        )
        row.is_completion_status = "completion" in flags
        row.is_cancellation_status = "cancellation" in flags
        row.is_on_hold_status = "on_hold" in flags
        if not expected:
            row.full_clean()
            return
        with pytest.raises(ValidationError) as info:
            row.full_clean()
        # clean() stops at the first rule broken, in the validator's order.
        first = sorted(expected, key=["conflicting_status_flags", "default_status_ends_step"].index)
        message = " ".join(info.value.messages)
        if first[0] == "conflicting_status_flags":
            assert "can be only one of completion, cancellation or on-hold" in message
        else:
            assert "cannot be the default status" in info.value.message_dict["is_default_status"][0]

    def test_final_step_with_outgoing_transitions(self, workflow):
        payment = WorkflowStep.objects.get(workflow=workflow, name="Payment")
        payment.is_final_step = True
        with pytest.raises(ValidationError) as info:
            payment.full_clean()
        assert info.value.message_dict["is_final_step"] == [
            "Step “Payment” cannot be final: it has outgoing transitions (Payment -> Closed), "
            "and a final step ends the workflow."
        ]

    def test_transition_from_a_final_step(self, workflow):
        closed = WorkflowStep.objects.get(workflow=workflow, name="Closed")
        review = WorkflowStep.objects.get(workflow=workflow, name="Review")
        transition = WorkflowTransition(
            workflow=workflow, name="Reopen", from_step=closed, to_step=review
        )
        with pytest.raises(ValidationError) as info:
            transition.full_clean()
        assert "Step “Closed” is final" in str(info.value.message_dict["from_step"])

    @pytest.mark.parametrize(
        ("condition", "text"),
        [
            ("claim.amount >", "line 1, column 14"),
            ("claim.amount > 1.0 &&\n  (claim.kind", "line 2, column 10"),
            ("a.all(x, a.exists(y, y == x))", "line 1, column 12"),
            ("x" * 1001, "CONDITION_MAX_LENGTH"),
        ],
    )
    def test_condition_errors_name_the_line_and_column(self, workflow, condition, text):
        transition = WorkflowTransition.objects.get(name="Review -> Investigation")
        transition.condition = condition
        with pytest.raises(ValidationError) as info:
            transition.full_clean()
        [message] = info.value.message_dict["condition"]
        assert text in message

    def test_condition_naming_an_undeclared_variable(self, workflow):
        workflow.context_variables = {"claim": "map"}
        workflow.save()
        transition = WorkflowTransition.objects.get(name="Review -> Senior Review")
        transition.full_clean()
        transition.condition = "clam.amount > 1.0"
        with pytest.raises(ValidationError) as info:
            transition.full_clean()
        [message] = info.value.message_dict["condition"]
        assert message == (
            "variable 'clam' (line 1, column 1) is not declared; did you mean 'claim'? "
            "Declared variables: claim."
        )

    @override_settings(DJANGO_STEPS={"CONDITION_MAX_LENGTH": 10})
    def test_condition_limits_follow_the_settings(self, workflow):
        transition = WorkflowTransition.objects.get(name="Review -> Senior Review")
        with pytest.raises(ValidationError, match="the limit is 10"):
            transition.full_clean()
        assert check_condition("x > 1.0") == []
        assert check_condition("x > 100000.0")[0].code == "invalid_condition"

    def test_context_variables_declaration(self, workflow):
        workflow.context_variables = {"claim": "object", "9": "int"}
        with pytest.raises(ValidationError) as info:
            workflow.full_clean()
        messages = info.value.message_dict["context_variables"]
        assert len(messages) == 2
        assert "'claim' has type 'object'" in messages[0]
        workflow.context_variables = {"claim": "map"}
        workflow.full_clean()

    def test_declaration_that_leaves_out_a_variable_conditions_read(self, workflow):
        workflow.context_variables = {"amount": "double"}
        with pytest.raises(ValidationError) as info:
            workflow.full_clean()
        assert info.value.message_dict["context_variables"] == [
            "Transition “Review -> Investigation”: variable 'claim' (line 1, column 1) is not "
            "declared. Declared variables: amount.",
            "Transition “Review -> Senior Review”: variable 'claim' (line 1, column 1) is not "
            "declared. Declared variables: amount.",
        ]
        workflow.context_variables = {"claim": "map"}
        workflow.full_clean()

    def test_model_form_shows_condition_errors_on_the_condition_field(self, workflow):
        class TransitionForm(forms.ModelForm):
            class Meta:
                model = WorkflowTransition
                fields = ["workflow", "name", "from_step", "to_step", "condition", "priority"]

        review = WorkflowStep.objects.get(workflow=workflow, name="Review")
        payment = WorkflowStep.objects.get(workflow=workflow, name="Payment")
        form = TransitionForm(
            data={
                "workflow": workflow.pk,
                "name": "Fast track",
                "from_step": review.pk,
                "to_step": payment.pk,
                "condition": "claim.amount <\n  ",
                "priority": 5,
            }
        )
        assert not form.is_valid()
        assert list(form.errors) == ["condition"]
        assert "line 1, column 14" in form.errors["condition"][0]


# --- bad input to the services changes nothing ------------------------------------------


@pytest.mark.django_db
class TestBadInput:
    @pytest.fixture
    def instance(self):
        create_workflow(declared_claims())
        instance = start_workflow_instance("Claims", Claim.objects.create(title="x", amount=1))
        assert update_workflow_step_status(instance, "Accepted")
        return instance

    @staticmethod
    def snapshot(instance):
        row = WorkflowInstance.objects.get(pk=instance.pk)
        return (
            row.current_step_id,
            row.current_step_status_id,
            row.lifecycle,
            row.updated_at,
            WorkflowHistory.objects.filter(instance=instance).count(),
        )

    def test_unknown_status_name(self, instance):
        before = self.snapshot(instance)
        assert update_workflow_step_status(instance, "Approvd") is False
        with pytest.raises(InvalidStatus, match="step 'Review' has no status 'Approvd'"):
            engine.update_workflow_step_status(instance, "Approvd")
        assert self.snapshot(instance) == before

    def test_status_of_another_step(self, instance):
        before = self.snapshot(instance)
        assert update_workflow_step_status(instance, "Paid") is False
        with pytest.raises(InvalidStatus, match="its statuses: 'Pending', 'In progress'"):
            engine.update_workflow_step_status(instance, "Paid")
        assert self.snapshot(instance) == before

    def test_instance_whose_row_was_deleted(self, instance):
        WorkflowInstance.objects.filter(pk=instance.pk).delete()
        assert update_workflow_step_status(instance, "In progress") is False
        with pytest.raises(InstanceNotFound, match=f"{instance.pk} no longer exists"):
            engine.update_workflow_step_status(instance, "In progress")
        assert WorkflowHistory.objects.count() == 0

    @pytest.mark.parametrize(
        ("context", "text"),
        [
            ({"claim": {"file": object()}}, "context_data at 'claim.file' is a object"),
            ({"claim": {1: "x"}}, "has a key 1 of type int"),
            ({"claim": {"n": 2**70}}, "does not fit in 64 bits"),
            ({"claim": [1]}, "'claim' is declared as map"),
            ({"amount": "12"}, "'amount' is declared as double"),
        ],
    )
    @pytest.mark.parametrize("status", ["Approved", "In progress"])
    def test_context_that_cannot_be_used(self, instance, context, text, status):
        before = self.snapshot(instance)
        with pytest.raises(ContextError, match=text):
            update_workflow_step_status(instance, status, context)
        with pytest.raises(ContextError, match=text):
            engine.update_workflow_step_status(instance, status, context)
        assert self.snapshot(instance) == before
        assert instance.current_step.name == "Review"

    @override_settings(DJANGO_STEPS={"CONTEXT_MAX_BYTES": 100})
    def test_context_larger_than_the_limit(self, instance):
        before = self.snapshot(instance)
        big = {"claim": {"notes": "x" * 200}, "amount": 1.0}
        with pytest.raises(ContextError, match=r"larger than 100 bytes .*CONTEXT_MAX_BYTES"):
            update_workflow_step_status(instance, "Approved", big)
        with pytest.raises(ContextError, match="CONTEXT_MAX_BYTES"):
            engine.update_workflow_step_status(instance, "Approved", big)
        assert self.snapshot(instance) == before

    def test_valid_context_still_moves(self, instance):
        assert update_workflow_step_status(instance, "Approved", {**LOW, "amount": 20000})
        assert instance.current_step.name == "Senior Review"


@pytest.mark.django_db
def test_workflow_declaration_is_checked_when_saved_through_clean():
    workflow = Workflow(name="W", context_variables={"x": "int"})
    workflow.full_clean()
    workflow.context_variables = "claim"
    with pytest.raises(ValidationError, match="must be a mapping"):
        workflow.full_clean()
