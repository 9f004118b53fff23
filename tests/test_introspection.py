"""Introspection: a workflow's structure, what an instance may do now, and ``explain``."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statemachine import StateMachine

from django_steps.exceptions import (
    StepsError,
    TransitionConditionError,
    WorkflowNotFound,
)
from django_steps.introspection import describe_instance, describe_workflow, explain
from django_steps.machines import MachineState, WorkflowDefinition, WorkflowRunner
from django_steps.machines.describe import describe_state
from django_steps.machines.explain import explain_status
from django_steps.machines.lifecycle import Lifecycle
from django_steps.models import WorkflowHistory
from django_steps.services import (
    cancel_workflow_instance,
    set_workflow_on_hold,
    start_workflow_instance,
    update_workflow_step_status,
)
from tests.conftest import HIGH, LOW
from tests.factories import claims_definition
from tests.testapp.models import Claim

# High-risk and over 10,000: every condition of Review passes.
RISKY_AND_HIGH = {"claim": {"amount": 50000.0, "is_high_risk": True}}
NO_RISK_FLAG = {"claim": {"amount": 50000.0}}


@pytest.fixture
def instance(claims):
    claim = Claim.objects.create(title="Broken window", amount=500)
    instance = start_workflow_instance("Claims", claim)
    update_workflow_step_status(instance, "Accepted")
    instance.refresh_from_db()
    assert instance.current_step.name == "Review"
    return instance


# --- describe_workflow ---------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("given_as", ["name", "row", "definition"])
def test_describe_workflow_lists_steps_statuses_and_transitions_in_order_tried(
    claims, definition, given_as
):
    subject = {"name": "Claims", "row": claims, "definition": definition}[given_as]
    description = describe_workflow(subject)

    assert issubclass(description.machine_class, StateMachine)
    assert [step.name for step in description.steps] == [
        "Submitted",
        "Review",
        "Investigation",
        "Senior Review",
        "Payment",
        "Closed",
    ]
    review = description.step("Review")
    assert [s.name for s in review.statuses] == [
        "Pending",
        "In progress",
        "Approved",
        "Rejected",
        "On hold",
    ]
    assert [(t.to_step, t.condition, t.priority) for t in review.transitions] == [
        ("Investigation", "claim.is_high_risk == true", 30),
        ("Senior Review", "claim.amount > 10000.0", 20),
        ("Payment", "", 0),
    ]
    assert len(description.transitions) == 7
    text = str(description)
    assert "Review\n  status Pending [default]" in text
    assert "1. -> Investigation if claim.is_high_risk == true (priority 30" in text
    assert "3. -> Payment if (always) (priority 0" in text
    assert "Closed (final)" in text


def test_transitions_are_described_in_priority_order_not_creation_order():
    data = claims_definition()
    review = [t for t in data["transitions"] if t["from"] == "Review"]
    others = [t for t in data["transitions"] if t["from"] != "Review"]
    data["transitions"] = others + list(reversed(review))  # lowest priority created first
    description = describe_workflow(WorkflowDefinition.from_dict(data))
    assert [t.to_step for t in description.step("Review").transitions] == [
        "Investigation",
        "Senior Review",
        "Payment",
    ]


@pytest.mark.django_db
def test_describe_unknown_workflow_names_it():
    with pytest.raises(WorkflowNotFound, match="'Nope'"):
        describe_workflow("Nope")


def test_describe_unknown_step_names_it(definition):
    with pytest.raises(StepsError, match="no step 'Audit'"):
        describe_workflow(definition).step("Audit")


# --- describe_instance ---------------------------------------------------------------


@pytest.mark.django_db
def test_running_instance_options(instance):
    options = describe_instance(instance)
    assert (options.step, options.status, options.lifecycle) == (
        "Review",
        "Pending",
        Lifecycle.RUNNING,
    )
    assert options.allowed_statuses == ["Pending", "In progress", "Approved", "Rejected", "On hold"]
    effects = {option.name: option.effect for option in options.statuses}
    assert effects["In progress"] == "sets the status"
    assert effects["Approved"].startswith("completes the step; the next step depends")
    assert effects["Rejected"] == "cancels the instance"
    assert effects["On hold"] == "puts the instance on hold"
    assert options.can_hold
    assert options.can_cancel
    assert not options.can_resume
    assert "not on hold" in options.can_resume.reason


@pytest.mark.django_db
def test_on_hold_instance_may_only_be_resumed_or_cancelled(instance):
    set_workflow_on_hold(instance)
    instance.refresh_from_db()
    options = describe_instance(instance)
    assert options.lifecycle is Lifecycle.ON_HOLD
    assert options.allowed_statuses == ["Rejected", "On hold"]
    refused = {o.name: o.reason for o in options.statuses if not o.allowed}
    assert "resume it before setting status 'Approved'" in refused["Approved"]
    assert options.can_resume
    assert options.can_cancel
    assert not options.can_hold
    text = str(options)
    assert "Hold: no: " in text
    assert "Resume: yes" in text


@pytest.mark.django_db
def test_finished_instance_allows_nothing(instance):
    cancel_workflow_instance(instance)
    instance.refresh_from_db()
    options = describe_instance(instance)
    assert options.allowed_statuses == []
    assert not (options.can_hold)
    assert not (options.can_resume)
    assert not (options.can_cancel)
    assert "cancelled" in options.can_cancel.reason


def test_unconditional_completion_names_the_next_step(definition):
    runner = WorkflowRunner(definition)
    state, _ = runner.start()
    options = describe_state(runner, state)
    effects = {option.name: option.effect for option in options.statuses}
    assert effects["Accepted"] == "completes the step and moves to 'Review'"
    assert effects["New"] == "no change (it is the current status)"
    payment = MachineState(step="Payment", status="Scheduled")
    effects = {o.name: o.effect for o in describe_state(runner, payment).statuses}
    assert effects["Paid"] == "completes the step and moves to 'Closed', completing the workflow"


@pytest.mark.django_db
def test_describe_instance_reads_the_cached_machine_with_no_query(
    instance, django_assert_num_queries
):
    describe_instance(instance)  # warm the compiled-workflow cache
    with django_assert_num_queries(0):
        describe_instance(instance)
        explain(instance, HIGH)
    with django_assert_num_queries(1):
        describe_workflow("Claims")


# --- explain -------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("context", "results", "taken", "next_step", "next_status"),
    [
        (LOW, [False, False, True], 3, "Payment", "Scheduled"),
        (HIGH, [False, True, True], 2, "Senior Review", "Pending"),
        (RISKY_AND_HIGH, [True, True, True], 1, "Investigation", "Open"),
    ],
)
def test_explain_reports_every_condition_and_the_transition_taken(
    instance, context, results, taken, next_step, next_status
):
    explanation = explain(instance, context)

    assert explanation.status == "Approved"
    assert [check.result for check in explanation.checks] == results
    assert [check.error for check in explanation.checks] == [None, None, None]
    assert [check.position for check in explanation.checks if check.taken] == [taken]
    assert [check.reached for check in explanation.checks] == [i < taken for i in range(3)]
    assert explanation.allowed
    assert explanation.taken is not None
    assert explanation.taken.to_step == next_step
    assert (explanation.next_step, explanation.next_status) == (next_step, next_status)
    assert f"would be taken: the instance moves to step {next_step!r}" in str(explanation)


@pytest.mark.django_db
def test_explain_reports_an_error_and_the_refusal_without_stopping(instance):
    history = WorkflowHistory.objects.count()
    explanation = explain(instance, NO_RISK_FLAG)

    first, second, third = explanation.checks
    assert first.result is None
    assert "is_high_risk" in (first.error or "")
    assert first.reached
    assert not first.taken
    # Evaluated and reported although the engine stops at the first error:
    assert (second.result, second.reached) == (True, False)
    assert (third.result, third.reached) == (True, False)
    assert not explanation.allowed
    assert explanation.refused_by is TransitionConditionError
    assert explanation.taken is None
    assert explanation.next_step is None
    text = str(explanation)
    assert "ERROR: no such member in mapping: 'is_high_risk'" in text
    assert "The update would be refused" in text
    assert "claim.is_high_risk == true" in text
    # Nothing changed.
    instance.refresh_from_db()
    assert instance.current_step.name == "Review"
    assert WorkflowHistory.objects.count() == history


@pytest.mark.django_db
@pytest.mark.parametrize("context", [LOW, HIGH, RISKY_AND_HIGH, NO_RISK_FLAG])
def test_explain_agrees_with_the_engine(instance, context):
    explanation = explain(instance, context)
    try:
        update_workflow_step_status(instance, "Approved", context)
    except TransitionConditionError:
        assert not explanation.allowed
    instance.refresh_from_db()
    expected = explanation.next_step if explanation.allowed else "Review"
    assert instance.current_step.name == expected


@pytest.mark.django_db
def test_explain_a_workflow_at_a_step_and_a_plain_status(claims):
    explanation = explain("Claims", HIGH, step="Review", status="In progress")
    assert explanation.allowed
    assert explanation.taken is None
    assert (explanation.next_step, explanation.next_status) == ("Review", "In progress")
    assert [check.result for check in explanation.checks] == [False, True, True]
    assert not any(check.reached for check in explanation.checks)
    assert "The status would become 'In progress'" in explanation.verdict


def test_explain_a_definition_defaults_to_the_initial_step(definition):
    explanation = explain(definition)
    assert explanation.step == "Submitted"
    assert explanation.next_step == "Review"
    assert [c.condition_text for c in explanation.checks] == ["(always)"]


@pytest.mark.django_db
def test_explain_refuses_a_step_for_an_instance(instance):
    with pytest.raises(ValueError, match="takes no step for an instance"):
        explain(instance, LOW, step="Payment")


def test_explain_final_step_completes_the_workflow(definition):
    explanation = explain(definition, step="Closed")
    assert explanation.checks == ()
    assert explanation.status == "Closed"
    assert "no outgoing transitions" in str(explanation)


def test_explain_reports_an_unusable_context_on_every_check(definition):
    explanation = explain(definition, {"claim": object()}, step="Review")
    assert not explanation.allowed
    assert all("context rejected" in (check.error or "") for check in explanation.checks)


@settings(max_examples=60, deadline=None)
@given(
    amount=st.one_of(st.floats(0, 1e6, allow_nan=False), st.integers(0, 10**6), st.none()),
    risk=st.one_of(st.booleans(), st.none(), st.text(max_size=3)),
)
def test_explain_verdict_is_the_runners(amount, risk):
    runner = WorkflowRunner(WorkflowDefinition.from_dict(claims_definition()))
    claim = {}
    if amount is not None:
        claim["amount"] = amount
    if risk is not None:
        claim["is_high_risk"] = risk
    context = {"claim": claim}
    state = MachineState(step="Review", status="Pending")

    explanation = explain_status(runner, state, context)
    assert state == MachineState(step="Review", status="Pending")

    # The engine's rule, restated independently: the first passing condition wins,
    # unless a condition before it cannot be evaluated.
    expected = None
    for check in explanation.checks:
        if check.error is not None:
            break
        if check.result:
            expected = check.transition.to_step
            break
    try:
        runner.set_status(state, "Approved", context)
    except StepsError:
        assert expected is None
        assert not explanation.allowed
    else:
        assert state.step == expected == explanation.next_step
