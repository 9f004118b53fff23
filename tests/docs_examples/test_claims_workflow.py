"""Tests of the claims workflow definition, as a project runs them in its CI.

They need no database and no Django settings: ``django_steps.testing`` drives the
definition file with the same rules as the services.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from django_steps.exceptions import OperationNotAllowed, TransitionConditionError
from django_steps.machines.validation import validate_definition
from django_steps.testing import RESUME, WorkflowScenario, assert_transition, drive, load_definition

CLAIMS = load_definition(Path(__file__).with_name("claims.yaml"))


def test_the_definition_has_no_errors_or_warnings():
    assert validate_definition(CLAIMS) == []


@pytest.mark.parametrize(
    ("claim", "next_step"),
    [
        ({"amount": 500.0, "is_high_risk": False}, "Payment"),
        ({"amount": 50000.0, "is_high_risk": False}, "Senior Review"),
        ({"amount": 500.0, "is_high_risk": True}, "Investigation"),
        ({"amount": 50000.0, "is_high_risk": True}, "Investigation"),  # risk is tried first
    ],
)
def test_review_routes_claims(claim, next_step):
    assert_transition(
        CLAIMS, from_step="Review", status="Approved", context={"claim": claim}, to_step=next_step
    )


def test_a_large_claim_goes_through_senior_review_to_closed():
    large = {"claim": {"amount": 50000.0, "is_high_risk": False}}
    run = drive(CLAIMS, ["Accepted", ("Approved", large), "Approved", "Paid"])
    assert run.path == ["Submitted", "Review", "Senior Review", "Payment", "Closed"]
    assert run.is_completed


def test_a_claim_missing_its_risk_flag_is_refused_not_misrouted():
    scenario = WorkflowScenario(CLAIMS).set_status("Accepted")
    with pytest.raises(TransitionConditionError, match="is_high_risk"):
        scenario.set_status("Approved", {"claim": {"amount": 500.0}})
    assert scenario.step == "Review"


def test_a_held_claim_must_be_resumed_before_approval():
    scenario = WorkflowScenario(CLAIMS).set_status("Accepted").set_status("On hold")
    with pytest.raises(OperationNotAllowed):
        scenario.set_status("Approved", {"claim": {"amount": 1.0, "is_high_risk": False}})
    run = drive(CLAIMS, ["Accepted", "On hold", RESUME, "In progress"])
    assert (run.step, run.status) == ("Review", "In progress")
