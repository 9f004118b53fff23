"""``manage.py steps_check``: prints each workflow's problems, fails on errors."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command, execute_from_command_line
from django.core.management.base import CommandError

from django_steps.exceptions import WorkflowNotFound
from django_steps.validation import check_workflows, format_problems
from tests.factories import claims_definition, create_workflow

pytestmark = pytest.mark.django_db


def broken() -> dict:
    data = claims_definition()
    data["name"] = "Broken"
    data["transitions"][2]["condition"] = "claim.amount >"
    return data


def tied() -> dict:
    data = claims_definition()
    data["name"] = "Tied"
    data["transitions"][2]["priority"] = 30
    return data


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("steps_check", *args, stdout=out)
    return out.getvalue()


def test_a_good_workflow_passes():
    create_workflow(claims_definition())
    output = run()
    assert output.splitlines() == [
        "Claims: OK",
        "1 workflow(s) checked: 0 error(s), 0 warning(s).",
    ]


def test_an_error_fails_and_is_printed_with_its_place():
    create_workflow(claims_definition())
    create_workflow(broken())
    out = io.StringIO()
    with pytest.raises(CommandError, match="2 workflow\\(s\\) checked: 1 error\\(s\\)"):
        call_command("steps_check", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "Broken: 1 error(s), 0 warning(s)"
    assert lines[1].startswith(
        "  error: Workflow 'Broken': transition 'Review -> Senior Review': condition "
        "'claim.amount >': Condition does not parse at line 1, column 14"
    )
    assert lines[1].endswith("[invalid_condition]")
    assert lines[2] == "Claims: OK"


def test_warnings_are_printed_but_pass_unless_asked_to_fail():
    create_workflow(tied())
    output = run()
    assert "Tied: 0 error(s), 1 warning(s)" in output
    assert "  warning: Workflow 'Tied': conditional transitions" in output
    with pytest.raises(CommandError, match="1 warning"):
        run("--fail-on-warning")


def test_only_the_named_workflows_are_checked():
    create_workflow(claims_definition())
    create_workflow(broken())
    assert run("Claims").splitlines()[0] == "Claims: OK"
    with pytest.raises(CommandError):
        run("Claims", "Broken")


def test_an_unknown_workflow_name_is_a_clear_error():
    create_workflow(claims_definition())
    with pytest.raises(CommandError, match="No workflow named 'Claim'"):
        run("Claims", "Claim")


def test_no_workflows():
    assert run() == "No workflows to check.\n"


def test_exit_status_from_the_command_line(capsys):
    create_workflow(broken())
    with pytest.raises(SystemExit) as excinfo:
        execute_from_command_line(["manage.py", "steps_check"])
    assert excinfo.value.code == 1
    captured = capsys.readouterr()
    assert "[invalid_condition]" in captured.out
    assert "CommandError: 1 workflow(s) checked: 1 error(s)" in captured.err


def test_the_library_function_behind_the_command():
    good = create_workflow(claims_definition())
    bad = create_workflow(broken())
    results = check_workflows()
    assert [(workflow, [p.code for p in problems]) for workflow, problems in results] == [
        (bad, ["invalid_condition"]),
        (good, []),
    ]
    assert format_problems(results)[-1] == "Claims: OK"
    with pytest.raises(WorkflowNotFound):
        check_workflows(["Nope"])
