"""Many processes change the same instances at once; the history must tell the truth.

Each worker is a separate Python process with its own database connection (see
:mod:`tests.reliability.worker`), released at the same moment. The default pass runs
the short form (4 workers x 25 operations); ``make reliability`` adds the long form
(8 workers x 50 operations, many objects). What is asserted is described in
:mod:`tests.reliability.audit`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from django_steps.models import Workflow, WorkflowHistory, WorkflowInstance
from tests.factories import create_workflow
from tests.reliability.audit import AuditSummary, audit_workload
from tests.reliability.definitions import LOOP_EDITED_TRANSITION, LOOP_NAME, loop_definition
from tests.reliability.harness import WorkerRun, run_workers
from tests.reliability.scale import (
    SHARED_LONG,
    SHARED_SHORT,
    SPREAD_LONG,
    SPREAD_SHORT,
    START_RACE_WORKERS,
    Workload,
)
from tests.testapp.models import Claim

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

SEED = int(os.environ.get("DJANGO_STEPS_RELIABILITY_SEED", "20261127"))


def overlapping_calls(records: list[dict[str, Any]]) -> int:
    """How many calls ran while a call of another worker was running."""
    spans = sorted((r["t0"], r["t1"], r["worker"]) for r in records)
    count = 0
    for index, (_, end, worker) in enumerate(spans):
        for other_start, _, other_worker in spans[index + 1 :]:
            if other_start >= end:
                break
            if other_worker != worker:
                count += 1
                break
    return count


def report(label: str, workload: Workload, run: WorkerRun, summary: AuditSummary) -> str:
    return (
        f"reliability: {label}: {workload.workers} processes x {workload.operations} calls on "
        f"{workload.objects} object(s): {summary.calls} calls in {run.seconds:.2f} s "
        f"({summary.calls / run.seconds:.0f} calls/s), {summary.changed_calls} changed "
        f"({summary.history_rows} history rows, {summary.step_changes} step changes), "
        f"{summary.refused_calls} refused, {summary.instances} instance(s); all checks held"
    )


def run_workload(
    label: str,
    workload: Workload,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    *,
    edits: int = 0,
) -> AuditSummary:
    """Run the workload; with ``edits``, one more process edits the definition meanwhile."""
    workflow = create_workflow(loop_definition())
    claims = [Claim.objects.create(title=f"claim {n}") for n in range(workload.objects)]
    specs: list[dict[str, Any]] = [
        {
            "mode": "workload",
            "worker": number,
            "seed": SEED + number,
            "operations": workload.operations,
            "workflow": LOOP_NAME,
            "objects": [claim.pk for claim in claims],
        }
        for number in range(workload.workers)
    ]
    if edits:
        specs.append(
            {
                "mode": "edit",
                "worker": workload.workers,
                "operations": edits,
                "workflow": LOOP_NAME,
                "transition": LOOP_EDITED_TRANSITION,
            }
        )
    version = workflow.version
    run = run_workers(specs, tmp_path)
    summary = audit_workload(run.records, workflow)
    workflow.refresh_from_db()
    assert workflow.version == version + edits, "every edit bumps the version once"
    if edits:  # each worker compiled once before the race; edits make them compile again
        recompiled = max(r.get("compilations", 0) for r in run.records)
        assert recompiled > 1, "no worker saw a new version of the definition"
    # The run must have raced and must have exercised both outcomes, or it proves little.
    assert overlapping_calls(run.records) > 0, "no two calls of different workers overlapped"
    assert summary.changed_calls > 0
    assert summary.refused_calls > 0
    with capsys.disabled():
        print("\n" + report(label, workload, run, summary))
    return summary


def test_workers_share_one_instance(tmp_path, capsys):
    run_workload("one shared object", SHARED_SHORT, tmp_path, capsys)


def test_workers_spread_over_many_instances(tmp_path, capsys):
    run_workload("many objects", SPREAD_SHORT, tmp_path, capsys)


def test_workers_keep_going_while_the_definition_is_edited(tmp_path, capsys):
    """Each edit bumps the version, so workers recompile mid-run; nothing else changes."""
    run_workload(
        "many objects, definition edited 20 times", SPREAD_SHORT, tmp_path, capsys, edits=20
    )


@pytest.mark.slow
def test_workers_share_one_instance_long(tmp_path, capsys):
    summary = run_workload("one shared object, long", SHARED_LONG, tmp_path, capsys)
    assert summary.instances > 1, "the long run should finish and restart the object's instance"


@pytest.mark.slow
def test_workers_spread_over_many_instances_long(tmp_path, capsys):
    run_workload("many objects, long, 50 definition edits", SPREAD_LONG, tmp_path, capsys, edits=50)


def test_concurrent_starts_create_exactly_one_instance_per_object(tmp_path):
    create_workflow(loop_definition())
    claims = [Claim.objects.create(title=f"claim {n}") for n in range(5)]
    objects = [claim.pk for claim in claims]
    specs = [
        {"mode": "start", "worker": number, "workflow": LOOP_NAME, "objects": objects}
        for number in range(START_RACE_WORKERS)
    ]
    run = run_workers(specs, tmp_path)

    assert WorkflowInstance.objects.count() == len(claims)
    for claim in claims:
        instance = WorkflowInstance.objects.for_object(claim).get()
        returned = {r["result"] for r in run.records if r["object"] == claim.pk}
        assert returned == {str(instance.pk)}, "every caller gets the one instance"
        started = WorkflowHistory.objects.filter(instance=instance, event="started")
        assert started.count() == 1
    workflow = Workflow.objects.get(name=LOOP_NAME)
    summary = audit_workload(run.records, workflow)
    assert summary.changed_calls == len(claims)
