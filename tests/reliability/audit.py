"""Check logged calls against the history and replay the history through the machines.

The workers tag every call's history rows with a unique note, so each call can be
matched with exactly the rows it wrote. :func:`audit_workload` asserts that

* a successful engine call wrote exactly the changes it returned, a refused call
  (an error, or ``False`` from a service) wrote nothing, and no row lacks a call;
* the rows of one call are contiguous in the instance's history (never interleaved
  with another call's), so every change happened under the instance lock;
* replaying each instance's history from its ``started`` row through a
  :class:`~django_steps.machines.WorkflowRunner` of the same definition reproduces
  every row (events, steps, statuses, conditions evaluated) and the final stored
  state, so no event was illegal and no transition was taken twice;
* every instance is in a state its definition allows; each object has at most one
  unfinished instance, and each instance was created by exactly one start call.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django_steps._engine.loading import definition_from_db
from django_steps.machines import MachineState, Outcome, WorkflowDefinition
from django_steps.machines.lifecycle import Lifecycle
from django_steps.machines.runner import WorkflowRunner
from django_steps.models import Workflow, WorkflowHistory, WorkflowInstance

Change = tuple[str, str | None, str | None, str | None, str | None]


@dataclass
class AuditSummary:
    """Counts from one audited run."""

    calls: int
    changed_calls: int
    refused_calls: int
    history_rows: int
    instances: int
    step_changes: int


def row_change(row: WorkflowHistory) -> Change:
    return (
        row.event,
        row.from_step_name or None,
        row.from_status_name or None,
        row.to_step_name or None,
        row.to_status_name or None,
    )


def outcome_changes(outcome: Outcome) -> list[Change]:
    return [
        (c.kind.value, c.from_step, c.from_status, c.to_step, c.to_status) for c in outcome.changes
    ]


def assert_allowed_state(instance: WorkflowInstance, definition: WorkflowDefinition) -> None:
    """Assert that a stored instance is in a state its workflow's definition allows."""
    label = f"instance {instance.pk}"
    step_row, status_row = instance.current_step, instance.current_step_status
    assert step_row is not None, f"{label} has no current step"
    assert status_row is not None, f"{label} has no current status"
    assert step_row.workflow_id == instance.workflow_id, f"{label}: step of another workflow"
    assert status_row.step_id == step_row.pk, f"{label}: status of another step"
    step = definition.get_step(step_row.name)
    status = step.status(status_row.name)
    assert status is not None, f"{label}: {status_row.name!r} is not a status of {step.name!r}"
    lifecycle = Lifecycle(instance.lifecycle)
    assert (lifecycle is Lifecycle.ON_HOLD) == status.is_on_hold, f"{label}: {lifecycle} {status}"
    assert (lifecycle is Lifecycle.CANCELLED) == status.is_cancellation, f"{label}: {status}"
    completed = step.is_final and status.is_completion
    assert (lifecycle is Lifecycle.COMPLETED) == completed, f"{label}: {lifecycle} at {step}"
    assert (instance.completed_at is not None) == (lifecycle is Lifecycle.COMPLETED), label
    assert (instance.cancelled_at is not None) == (lifecycle is Lifecycle.CANCELLED), label
    if instance.status_before_hold_id is not None:
        assert lifecycle is Lifecycle.ON_HOLD, f"{label}: status before hold while not on hold"
        assert instance.status_before_hold.step_id == step_row.pk, label


def stored_state(instance: WorkflowInstance) -> MachineState:
    before = instance.status_before_hold
    return MachineState(
        step=instance.current_step.name if instance.current_step else None,
        status=instance.current_step_status.name if instance.current_step_status else None,
        lifecycle=Lifecycle(instance.lifecycle),
        status_before_hold=before.name if before is not None else None,
    )


def replay(
    instance: WorkflowInstance, rows: list[WorkflowHistory], runner: WorkflowRunner
) -> MachineState:
    """Replay an instance's rows (by id) through ``runner``; assert each matches.

    Each call's rows form one group; the group's events say which operation made
    them (start, hold, resume, cancel, or a status update with the stored context),
    and the runner, applied to the state replayed so far, must produce exactly
    those rows. Returns the replayed state, which must equal the stored one.
    """
    groups = [(note, list(group)) for note, group in itertools.groupby(rows, lambda r: r.note)]
    notes = Counter(note for note, _ in groups)
    split = [note for note, count in notes.items() if count > 1]
    assert not split, f"instance {instance.pk}: rows of calls {split} are interleaved"
    assert groups, f"instance {instance.pk} has no history"
    state = MachineState()
    for position, (note, group) in enumerate(groups):
        events = [row.event for row in group]
        first = group[0]
        if position == 0:
            assert events[0] == "started", f"instance {instance.pk} starts with {events}"
            state, outcome = runner.start()
        elif "started" in events:
            raise AssertionError(f"instance {instance.pk}: started again by {note}")
        elif events == ["held"]:
            outcome = runner.hold(state)
        elif events == ["resumed"]:
            outcome = runner.resume(state)
        elif events == ["cancelled"]:
            outcome = runner.cancel(state)
        else:
            outcome = runner.set_status(state, first.to_status_name, first.context_data)
        assert outcome_changes(outcome) == [row_change(row) for row in group], (
            f"instance {instance.pk}, call {note}: history {[row_change(r) for r in group]} "
            f"but replay gives {outcome_changes(outcome)}"
        )
        conditions = [evaluation.as_dict() for evaluation in outcome.evaluations]
        for row in group:
            if row.event == "step_changed":
                assert row.conditions == conditions, f"{note}: conditions differ on replay"
    assert stored_state(instance) == state, (
        f"instance {instance.pk}: stored {stored_state(instance)}, replayed {state}"
    )
    return state


def check_call(
    record: dict[str, Any], rows: list[WorkflowHistory], rows_of: dict[str, list[Any]]
) -> bool:
    """Assert one logged call agrees with the rows tagged with its note; True if it changed."""
    note = record["note"]
    written = [row_change(row) for row in rows]
    if record["operation"] == "start":
        assert record["result"] is not None, f"{note}: start returned None"
        if rows:
            assert {str(row.instance_id) for row in rows} == {record["result"]}, note
            assert written[0][0] == "started", f"{note}: start wrote {written}"
            return True
        creators = [row for row in rows_of[record["result"]] if row.event == "started"]
        assert len(creators) == 1, f"{note}: returned an instance with {len(creators)} starts"
        return False
    if record.get("error") or record["result"] is False:
        assert not rows, f"{note}: refused ({record.get('error')}) but wrote {written}"
        return False
    assert {str(row.instance_id) for row in rows} <= {record["instance"]}, note
    if "changes" in record:  # engine call: the outcome it returned is what it wrote
        assert [tuple(change) for change in record["changes"]] == written, (
            f"{note}: returned {record['changes']} but wrote {written}"
        )
        return bool(rows)
    if not rows:  # services True with no change: the status already was the current one
        assert record["operation"] == "status", f"{note}: True for {record} but wrote nothing"
        statuses = {row.to_status_name for row in rows_of[record["instance"]]}
        assert record["status"] in statuses, f"{note}: True for a status never reached"
    return bool(rows)


def audit_workload(records: Iterable[dict[str, Any]], workflow: Workflow) -> AuditSummary:
    """Run every check of this module over a workload's logged calls; return counts."""
    records = [record for record in records if record["operation"] != "edit"]
    notes = Counter(record["note"] for record in records)
    assert max(notes.values()) == 1, "two calls share a note"
    history = list(WorkflowHistory.objects.filter(instance__workflow=workflow).order_by("id"))
    by_note: dict[str, list[WorkflowHistory]] = defaultdict(list)
    by_instance: dict[str, list[WorkflowHistory]] = defaultdict(list)
    for row in history:
        by_note[row.note].append(row)
        by_instance[str(row.instance_id)].append(row)
    orphans = set(by_note) - set(notes)
    assert not orphans, f"history rows without a call: {sorted(orphans)[:5]}"

    changed = refused = 0
    for record in records:
        if check_call(record, by_note.get(record["note"], []), by_instance):
            changed += 1
        elif record.get("error") or record.get("result") is False:
            refused += 1

    definition = definition_from_db(workflow)
    runner = WorkflowRunner(definition)
    instances = list(
        WorkflowInstance.objects.filter(workflow=workflow).select_related(
            "current_step", "current_step_status", "status_before_hold"
        )
    )
    unfinished: Counter[str] = Counter()
    for instance in instances:
        assert_allowed_state(instance, definition)
        replay(instance, by_instance[str(instance.pk)], runner)
        if not instance.is_finished:
            unfinished[instance.object_id] += 1
    crowded = [object_id for object_id, count in unfinished.items() if count > 1]
    assert not crowded, f"objects with several unfinished instances: {crowded}"
    return AuditSummary(
        calls=len(records),
        changed_calls=changed,
        refused_calls=refused,
        history_rows=len(history),
        instances=len(instances),
        step_changes=sum(1 for row in history if row.event == "step_changed"),
    )
