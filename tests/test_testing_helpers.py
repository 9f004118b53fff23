"""The DB-free testing helpers: loading, driving, assertions, and no settings at all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from django_steps.exceptions import (
    DefinitionError,
    InstanceFinished,
    NoTransitionAvailable,
    TransitionConditionError,
)
from django_steps.machines import ChangeKind, WorkflowDefinition
from django_steps.machines.lifecycle import Lifecycle
from django_steps.machines.serialization import dump_definitions
from django_steps.machines.validation import validate_definition
from django_steps.testing import (
    CANCEL,
    HOLD,
    RESUME,
    WorkflowScenario,
    assert_transition,
    drive,
    explain_definition,
    load_definition,
    load_definitions,
    runner_for,
)
from tests.conftest import HIGH, LOW, RISKY
from tests.factories import claims_definition

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = Path(__file__).resolve().parent / "docs_examples"


# --- loading -------------------------------------------------------------------------


def test_load_from_a_dict_and_a_definition(definition):
    assert load_definition(claims_definition()) == definition
    assert load_definition(definition) is definition


def test_load_from_yaml_json_and_export_files(tmp_path, definition):
    other = WorkflowDefinition.from_dict({**claims_definition(), "name": "Other"})
    (tmp_path / "one.json").write_text(json.dumps(claims_definition()))
    (tmp_path / "both.yml").write_text(dump_definitions([definition, other]))
    (tmp_path / "both.json").write_text(dump_definitions([definition, other], format="json"))

    assert load_definition(tmp_path / "one.json") == definition
    assert load_definition(str(tmp_path / "both.yml"), name="Other") == other
    assert [d.name for d in load_definitions(tmp_path / "both.json")] == ["Claims", "Other"]
    with pytest.raises(DefinitionError, match=r"found 2 \('Claims', 'Other'\); pass name="):
        load_definition(tmp_path / "both.yml")
    with pytest.raises(DefinitionError, match="No workflow named 'Nope'"):
        load_definition(tmp_path / "both.yml", name="Nope")


def test_the_docs_example_file_is_the_claims_workflow(definition):
    assert load_definition(EXAMPLES / "claims.yaml") == definition


def test_a_definition_that_does_not_compile_is_reported_with_its_place():
    data = claims_definition()
    data["transitions"][1]["condition"] = "claim.is_high_risk =="
    with pytest.raises(DefinitionError, match="Review -> Investigation"):
        drive(data, [])


NO_FINAL_STEP = {
    "name": "Endless",
    "steps": [
        {
            "name": "Open",
            "initial": True,
            "statuses": [{"name": "New", "default": True}, {"name": "Done", "completion": True}],
        },
        {"name": "Closed", "statuses": [{"name": "Closed", "default": True}]},
    ],
    "transitions": [{"from": "Open", "to": "Closed"}],
}


@pytest.mark.parametrize(
    "helper",
    [
        lambda data: drive(data, ["Done"]),
        lambda data: WorkflowScenario(data),
        lambda data: runner_for(data),
        lambda data: explain_definition(data),
        lambda data: assert_transition(data, from_step="Open", to_step="Closed"),
    ],
    ids=["drive", "WorkflowScenario", "runner_for", "explain_definition", "assert_transition"],
)
def test_a_workflow_the_services_refuse_is_refused_with_the_same_problem_codes(helper):
    with pytest.raises(DefinitionError, match="'Endless' has 3 error") as info:
        helper(NO_FINAL_STEP)
    assert [p.code for p in info.value.problems if p.is_error] == [
        "no_final_step",
        "step_cannot_complete",
        "step_has_no_way_out",
    ]
    assert info.value.problems == validate_definition(WorkflowDefinition.from_dict(NO_FINAL_STEP))


# --- driving -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("context", "middle", "status"),
    [(LOW, [], None), (HIGH, ["Senior Review"], "Approved"), (RISKY, ["Investigation"], "Cleared")],
)
def test_drive_to_the_end(definition, context, middle, status):
    actions = ["Accepted", ("Approved", context), *([status] if status else []), "Paid"]
    run = drive(definition, actions)
    assert run.path == ["Submitted", "Review", *middle, "Payment", "Closed"]
    assert (run.step, run.status, run.lifecycle) == ("Closed", "Closed", Lifecycle.COMPLETED)
    assert run.is_completed
    assert run.history[0].kind is ChangeKind.STARTED
    assert run.history[-1].kind is ChangeKind.COMPLETED
    assert [c.kind for c in run.history].count(ChangeKind.STEP_CHANGED) == len(run.path) - 1
    assert "Path: Submitted -> Review" in str(run)


def test_hold_resume_and_cancel(definition):
    run = drive(definition, ["Accepted", HOLD, RESUME, "In progress", HOLD, RESUME])
    assert (run.step, run.status, run.lifecycle) == ("Review", "In progress", Lifecycle.RUNNING)
    kinds = [c.kind for c in run.history]
    assert kinds.count(ChangeKind.HELD) == kinds.count(ChangeKind.RESUMED) == 2
    cancelled = drive(definition, ["Accepted", CANCEL])
    assert (cancelled.status, cancelled.is_cancelled) == ("Rejected", True)


def test_a_refused_action_raises_and_leaves_the_scenario_unchanged(definition):
    scenario = WorkflowScenario(definition).set_status("Accepted")
    with pytest.raises(TransitionConditionError):
        scenario.set_status("Approved", {"claim": {}})
    assert (scenario.step, scenario.status) == ("Review", "Pending")
    assert len(scenario.history) == 3
    scenario.cancel()
    with pytest.raises(InstanceFinished):
        scenario.set_status("Pending")


def test_scenario_options_and_explain(definition):
    scenario = WorkflowScenario(definition).set_status("Accepted")
    assert scenario.options().allowed_statuses == [
        "Pending",
        "In progress",
        "Approved",
        "Rejected",
        "On hold",
    ]
    assert scenario.explain(HIGH).next_step == "Senior Review"
    assert scenario.step == "Review"


def test_no_transition_available(definition):
    data = claims_definition()
    data["transitions"][3]["condition"] = "claim.amount < 100.0"
    with pytest.raises(NoTransitionAvailable, match="no transition's condition passed"):
        drive(data, ["Accepted", ("Approved", LOW)])


# --- assertions ------------------------------------------------------------------------


def test_assert_transition_passes_and_returns_the_explanation(definition):
    explanation = assert_transition(
        definition, from_step="Review", status="Approved", context=HIGH, to_step="Senior Review"
    )
    assert [check.result for check in explanation.checks] == [False, True, True]
    assert_transition(definition, from_step="Review", context=RISKY, to_step="Investigation")
    assert_transition(definition, from_step="Review", status="In progress", to_step="Review")


def test_assert_transition_failure_shows_each_condition(definition):
    with pytest.raises(AssertionError) as raised:
        assert_transition(
            definition, from_step="Review", status="Approved", context=LOW, to_step="Senior Review"
        )
    message = str(raised.value)
    assert message.startswith(
        "Expected step 'Review' with status 'Approved' to lead to 'Senior Review', "
        "but it goes to 'Payment'."
    )
    assert "claim.is_high_risk == true  false" in message
    assert "claim.amount > 10000.0      false" in message
    assert "(always)                    true    taken" in message


def test_assert_transition_failure_when_refused(definition):
    with pytest.raises(AssertionError) as raised:
        assert_transition(
            definition, from_step="Review", context={"claim": {"amount": 1.0}}, to_step="Payment"
        )
    message = str(raised.value)
    assert "but the update is refused" in message
    assert "ERROR: no such member in mapping: 'is_high_risk'" in message


def test_explain_without_a_database(definition):
    explanation = explain_definition(definition, HIGH, step="Review")
    assert explanation.next_step == "Senior Review"
    with pytest.raises(DefinitionError, match="no step 'Nope'"):
        explain_definition(definition, step="Nope")


# --- no settings ---------------------------------------------------------------------

NO_SETTINGS_SCRIPT = textwrap.dedent(
    """
    import sys

    from django_steps.testing import assert_transition, drive, load_definition

    claims = load_definition(sys.argv[1])
    large = {"claim": {"amount": 50000.0, "is_high_risk": False}}
    run = drive(claims, ["Accepted", ("Approved", large), "Approved", "Paid"])
    print(" -> ".join(run.path), run.lifecycle.value)
    assert_transition(claims, from_step="Review", context=large, to_step="Senior Review")

    from django.conf import settings

    assert not settings.configured, "settings were configured"
    loaded = sorted(m for m in sys.modules if m.startswith("django_steps"))
    assert "django_steps.models" not in loaded, loaded
    print("settings configured:", settings.configured)
    """
)


def test_helpers_run_in_a_process_with_no_django_settings(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    completed = subprocess.run(
        [sys.executable, "-c", NO_SETTINGS_SCRIPT, str(EXAMPLES / "claims.yaml")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines() == [
        "Submitted -> Review -> Senior Review -> Payment -> Closed completed",
        "settings configured: False",
    ]


def test_the_docs_page_includes_the_example_files():
    page = (ROOT / "docs" / "testing-workflows.md").read_text()
    for name in ("test_claims_workflow.py", "claims.yaml"):
        assert (EXAMPLES / name).is_file()
        assert f'--8<-- "tests/docs_examples/{name}"' in page
