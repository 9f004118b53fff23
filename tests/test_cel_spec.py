"""The CEL specification's conformance cases, run through django-steps on every backend.

Each case of google/cel-spec's ``tests/simple/testdata`` with a boolean or error
result (vendored in ``tests/cel_spec/testdata``) is compiled and evaluated as a
condition (tests/cel_spec/runner.py). Every case must give the specification's
answer, or be one of the deliberate refusals of tests/cel_spec/refusals.py, refused
for its reason; docs/cel.md's conformance table must be the current one.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from django.test import override_settings

from django_steps.services import start_workflow_instance, update_workflow_step_status
from tests.cel_spec import report
from tests.cel_spec.cases import load_cases
from tests.cel_spec.refusals import DELIBERATE_REFUSALS, REASON_MESSAGES
from tests.cel_spec.runner import MESSAGE_TYPES, run_case
from tests.factories import create_workflow
from tests.testapp.models import Claim

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

CASES = load_cases()
PLAIN_CASES = [case for case in CASES if not MESSAGE_TYPES.search(case.expr) and not case.container]


def test_the_vendored_cases_are_all_read():
    # 637 of the upstream cases expect a bool or an error; 72 need protobuf messages.
    assert len(CASES) == 637
    assert len(PLAIN_CASES) == 565
    assert {case.expected for case in CASES} == {True, False, "error"}
    assert set(DELIBERATE_REFUSALS) <= {case.id for case in CASES}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", PLAIN_CASES, ids=[case.id for case in PLAIN_CASES])
def test_conformance_case(backend, case):
    outcome = run_case(case, backend)
    reason = DELIBERATE_REFUSALS.get(case.id)
    if reason is None:
        assert outcome.result == case.expected, f"{case.expr!r}: {outcome.detail}"
    else:
        assert outcome.result == "refused", f"{case.expr!r} is no longer refused"
        assert REASON_MESSAGES[reason] in outcome.detail


def test_cases_needing_protobuf_messages_are_refused_without_running():
    protobuf = [case for case in CASES if case not in PLAIN_CASES]
    assert len(protobuf) == 72
    for case in protobuf:
        assert run_case(case, "celpy").result == "refused"


def test_the_docs_table_is_current():
    document = (Path(__file__).parent.parent / "docs" / "cel.md").read_text(encoding="utf-8")
    current = document.split(report.START, 1)[1].split(report.END, 1)[0]
    assert current.strip() == report.table().strip(), (
        "docs/cel.md is out of date: run python -m tests.cel_spec.report --write docs/cel.md"
    )


#: Every 8th case with a boolean result, as a transition condition through the services.
SERVICE_SAMPLE = [case for case in PLAIN_CASES if case.id not in DELIBERATE_REFUSALS][::8]


@pytest.mark.django_db
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", SERVICE_SAMPLE, ids=[case.id for case in SERVICE_SAMPLE])
def test_conformance_case_as_a_transition_condition(backend, case):
    statuses = [{"name": "New", "default": True}, {"name": "Done", "completion": True}]
    create_workflow(
        {
            "name": "Conformance",
            "steps": [
                {"name": "Start", "order": 1, "initial": True, "statuses": statuses},
                {"name": "Yes", "order": 2, "final": True, "statuses": statuses},
            ],
            "transitions": [{"from": "Start", "to": "Yes", "condition": case.expr}],
        }
    )
    with override_settings(DJANGO_STEPS={"CEL_BACKEND": backend}):
        instance = start_workflow_instance("Conformance", Claim.objects.create(title="c"))
        moved = update_workflow_step_status(instance, "Done", case.context)
    # A false condition and one that cannot be evaluated both keep the instance where it is.
    assert moved is (case.expected is True)
    assert instance.current_step.name == ("Yes" if case.expected is True else "Start")
