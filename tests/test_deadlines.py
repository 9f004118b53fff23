"""Deadlines without a database: the clock rules, the testing clock, validation, format."""

from __future__ import annotations

from datetime import timedelta

import pytest

from django_steps.exceptions import (
    DefinitionError,
    InstanceFinished,
    NoTransitionAvailable,
    OperationNotAllowed,
)
from django_steps.machines import WorkflowRunner
from django_steps.machines.definition import WorkflowDefinition
from django_steps.machines.diagram import duration_text, render_diagram
from django_steps.machines.validation import validate_definition
from django_steps.testing import CANCEL, HOLD, RESUME, START_TIME, WorkflowScenario, drive
from tests.timer_definitions import orders_definition

HOUR = timedelta(hours=1)


@pytest.fixture
def orders():
    return WorkflowDefinition.from_dict(orders_definition())


def test_a_scenario_times_out_only_once_its_due_time_has_passed(orders):
    scenario = WorkflowScenario(orders)
    assert scenario.now == START_TIME
    assert scenario.due_at == START_TIME + HOUR
    scenario.advance(minutes=59)
    assert scenario.status == "Waiting"
    scenario.advance(minutes=1)
    assert (scenario.step, scenario.status) == ("Approval", "Escalated")
    assert scenario.due_at is None
    assert scenario.timeouts == [START_TIME + HOUR]
    scenario.advance(days=10)
    assert scenario.timeouts == [START_TIME + HOUR]


def test_timeouts_fire_at_their_due_times_one_after_another(orders):
    run = drive(orders, ["Approved", timedelta(hours=5)])
    assert run.path == ["Approval", "Fulfilment", "Done"]
    assert run.is_completed
    assert run.timeouts == [START_TIME + 2 * HOUR]
    assert run.due_at is None


def test_hold_stops_the_testing_clock(orders):
    scenario = WorkflowScenario(orders)
    scenario.advance(minutes=30).hold().advance(hours=5).resume()
    assert scenario.status == "Waiting"
    assert scenario.due_at == START_TIME + timedelta(hours=6)
    scenario.advance(minutes=29)
    assert scenario.status == "Waiting"
    scenario.advance(minutes=1)
    assert scenario.status == "Escalated"
    assert scenario.timeouts == [START_TIME + timedelta(hours=6)]


def test_cancel_clears_the_due_time(orders):
    run = drive(orders, [CANCEL, timedelta(days=1)])
    assert run.is_cancelled
    assert run.due_at is None
    assert run.timeouts == []


def test_drive_accepts_hold_and_resume_between_advances(orders):
    run = drive(orders, [HOLD, timedelta(hours=2), RESUME, timedelta(minutes=59)])
    assert run.status == "Waiting"
    assert run.due_at == START_TIME + timedelta(hours=3)


def test_the_runner_refuses_to_time_out_without_a_timeout_status_or_on_hold(orders):
    runner = WorkflowRunner(orders)
    state, _ = runner.start()
    runner.hold(state)
    with pytest.raises(OperationNotAllowed, match="clock stops while on hold"):
        runner.time_out(state)
    runner.resume(state)
    runner.set_status(state, "Approved")
    runner.set_status(state, "Shipped")
    with pytest.raises(InstanceFinished, match="completed"):
        runner.time_out(state)
    data = orders_definition()
    del data["steps"][0]["due_after"], data["steps"][0]["timeout_status"]
    runner = WorkflowRunner(WorkflowDefinition.from_dict(data))
    state, _ = runner.start()
    with pytest.raises(OperationNotAllowed, match="has no timeout status"):
        runner.time_out(state)


def test_a_refused_timeout_raises_with_the_clock_at_the_due_time():
    data = orders_definition()
    data["steps"][0]["timeout_status"] = "Approved"
    data["transitions"][0]["condition"] = "false"
    data["transitions"].append({"from": "Approval", "to": "Done", "condition": "false"})
    scenario = WorkflowScenario(WorkflowDefinition.from_dict(data))
    with pytest.raises(NoTransitionAvailable):
        scenario.advance(hours=2)
    assert scenario.now == START_TIME + HOUR
    assert scenario.status == "Waiting"


# --- validation -------------------------------------------------------------------------


def codes(data):
    return [p.code for p in validate_definition(WorkflowDefinition.from_dict(data))]


def test_a_valid_deadline_has_no_problems():
    assert codes(orders_definition()) == []


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"timeout_status": "Open"}, "unknown_timeout_status"),
        ({"timeout_status": None}, "due_without_timeout_status"),
        ({"due_after": None}, "timeout_status_without_due"),
        ({"due_after": 0}, "due_after_not_positive"),
        ({"due_after": -5}, "due_after_not_positive"),
        ({"timeout_status": "Waiting"}, "timeout_status_is_default"),
    ],
)
def test_deadline_problems(change, code):
    data = orders_definition()
    for key, value in change.items():
        if value is None:
            del data["steps"][0][key]
        else:
            data["steps"][0][key] = value
    assert code in codes(data)


def test_a_deadline_on_a_final_step_is_an_error():
    data = orders_definition()
    data["steps"][2].update(due_after=60, timeout_status="Done")
    problems = validate_definition(WorkflowDefinition.from_dict(data))
    (problem,) = [p for p in problems if p.code == "timeout_on_final_step"]
    assert problem.is_error
    assert problem.name == "Done"


# --- the export format and the diagram ----------------------------------------------------


def test_the_format_carries_deadlines_only_where_set(orders):
    data = orders.to_dict()
    assert data["steps"][0]["due_after"] == 3600
    assert data["steps"][0]["timeout_status"] == "Escalated"
    assert "due_after" not in data["steps"][2]
    assert "timeout_status" not in data["steps"][2]
    assert WorkflowDefinition.from_dict(data) == orders
    half = orders_definition()
    half["steps"][0]["due_after"] = 1.5
    assert WorkflowDefinition.from_dict(half).to_dict()["steps"][0]["due_after"] == 1.5


def test_due_after_must_be_a_number_of_seconds():
    data = orders_definition()
    data["steps"][0]["due_after"] = "1 hour"
    with pytest.raises(DefinitionError, match="'due_after' must be a number of seconds"):
        WorkflowDefinition.from_dict(data)


def test_the_diagram_shows_the_due_time_and_timeout_status(orders):
    dot = render_diagram(WorkflowRunner(orders), format="dot")
    assert "Approval\\ndue after 1 h: Escalated" in dot
    assert "Fulfilment\\ndue after 2 h: Shipped" in dot
    assert "Done\\ndue" not in dot


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (timedelta(days=3), "3 days"),
        (timedelta(days=1, hours=4), "1 day 4 h"),
        (timedelta(hours=1, minutes=30), "1 h 30 min"),
        (timedelta(seconds=45), "45 s"),
    ],
)
def test_duration_text(duration, text):
    assert duration_text(duration) == text
