"""Deadlines and the timer sweep on the database: due times, timeouts, failures, entry points."""

from __future__ import annotations

import logging
from datetime import timedelta
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.db.models import RestrictedError
from django.utils import timezone

from django_steps import engine, signals
from django_steps.exceptions import DefinitionError, OperationNotAllowed
from django_steps.machines.definition import WorkflowDefinition
from django_steps.models import WorkflowInstance, WorkflowStep, WorkflowStepStatus
from django_steps.services import (
    SYSTEM,
    cancel_workflow_instance,
    resume_workflow_instance,
    set_workflow_on_hold,
    start_workflow_instance,
    update_workflow_step_status,
)
from django_steps.timers import run_due_timers, sweep_due_timers
from django_steps.transfer import export_definitions, import_definitions
from django_steps.validation import validate_workflow
from tests.testapp.models import Claim
from tests.timer_definitions import create_orders, orders_definition

pytestmark = pytest.mark.django_db

HOUR = timedelta(hours=1)


@pytest.fixture
def orders():
    return create_orders()


def start(number: int = 0) -> WorkflowInstance:
    claim = Claim.objects.create(title=f"Order {number}", amount=100)
    instance = start_workflow_instance("Orders", claim)
    assert instance is not None
    return instance


def fresh(instance: WorkflowInstance) -> WorkflowInstance:
    return WorkflowInstance.objects.get(pk=instance.pk)


def test_an_instance_moves_only_once_the_sweep_runs_past_its_due_time(orders):
    instance = start()
    assert instance.due_at is not None
    assert instance.due_at - instance.started_at == HOUR
    assert WorkflowInstance.objects.filter(pk=instance.pk, due_at=instance.due_at).exists()

    assert run_due_timers(now=instance.due_at - timedelta(seconds=1)) == 0
    assert fresh(instance).current_step_status.name == "Waiting"

    assert run_due_timers(now=instance.due_at + timedelta(minutes=5)) == 1
    moved = fresh(instance)
    assert (moved.current_step.name, moved.current_step_status.name) == ("Approval", "Escalated")
    assert moved.due_at is None  # spent: not due again at this step
    row = moved.history.latest("id")
    assert row.to_status_name == "Escalated"
    assert row.timed_out
    assert row.by_system
    assert row.actor is None
    assert row.note.startswith("Timed out (due at ")

    assert run_due_timers(now=instance.due_at + timedelta(days=1)) == 0


def test_the_due_time_is_cleared_on_leaving_the_step_and_set_by_the_next(orders):
    instance = start()
    assert update_workflow_step_status(instance, "Approved")
    assert instance.current_step.name == "Fulfilment"
    assert instance.due_at == fresh(instance).due_at
    assert instance.due_at - instance.updated_at == 2 * HOUR
    assert update_workflow_step_status(instance, "Shipped")
    assert instance.lifecycle == "completed"
    assert fresh(instance).due_at is None


def test_a_completion_timeout_takes_the_transition_and_starts_the_next_clock(orders):
    instance = start()
    assert update_workflow_step_status(instance, "Approved")
    now = instance.due_at + timedelta(seconds=1)
    assert run_due_timers(now=now) == 1
    done = fresh(instance)
    assert done.lifecycle == "completed"
    assert done.current_step.name == "Done"
    assert done.due_at is None
    rows = list(done.history.filter(timed_out=True).values_list("event", flat=True))
    assert rows == ["status_changed", "step_changed", "completed"]


def test_a_step_without_deadline_and_cancel_clear_the_due_time(orders):
    instance = start()
    assert cancel_workflow_instance(instance)
    assert fresh(instance).due_at is None
    assert run_due_timers(now=timezone.now() + timedelta(days=30)) == 0


def test_hold_stops_the_clock_and_resume_moves_the_due_time(orders):
    instance = start()
    due = instance.due_at
    assert set_workflow_on_hold(instance)
    held = fresh(instance)
    assert held.held_at is not None
    assert held.due_at == due
    # On hold: never due, however late.
    assert run_due_timers(now=due + timedelta(days=2)) == 0
    assert WorkflowInstance.objects.overdue(due + timedelta(days=2)).count() == 0

    assert resume_workflow_instance(instance)
    resumed = fresh(instance)
    assert resumed.held_at is None
    assert resumed.due_at == due + (resumed.updated_at - held.held_at)
    assert resumed.due_at > due
    # Not due at the old due time any more, only once the time held has passed too.
    assert run_due_timers(now=resumed.due_at - timedelta(microseconds=1)) == 0
    assert run_due_timers(now=resumed.due_at) == 1


def test_overdue_lists_the_running_instances_past_their_due_time(orders):
    first, second = start(1), start(2)
    assert update_workflow_step_status(second, "Approved")  # due in two hours
    now = first.due_at + timedelta(minutes=1)
    assert list(WorkflowInstance.objects.overdue(now)) == [first]
    assert set(WorkflowInstance.objects.overdue(second.due_at)) == {first, second}
    assert not WorkflowInstance.objects.overdue().exists()


def test_the_sweep_sends_workflow_due_once_before_the_timeout_status(orders):
    instance = start()
    seen = []

    def receiver(sender, instance, step, status, due_at, now, **kwargs):
        seen.append((instance.pk, step.name, status.name, due_at, now))
        # Sent before the timeout status is applied: the row still has the old status.
        assert fresh(instance).current_step_status.name == "Waiting"

    signals.workflow_due.connect(receiver)
    try:
        now = instance.due_at + timedelta(seconds=1)
        assert run_due_timers(now=now) == 1
        assert run_due_timers(now=now + HOUR) == 0
    finally:
        signals.workflow_due.disconnect(receiver)
    assert seen == [(instance.pk, "Approval", "Waiting", instance.due_at, now)]


def test_the_timeout_signals_carry_the_system_actor(orders):
    instance = start()
    actors = []

    def receiver(sender, actor, **kwargs):
        actors.append(actor)

    signals.workflow_status_changed.connect(receiver)
    try:
        assert run_due_timers(now=instance.due_at) == 1
    finally:
        signals.workflow_status_changed.disconnect(receiver)
    assert actors == [SYSTEM]


def test_a_failing_instance_is_logged_counted_and_skipped(orders, caplog):
    instances = [start(number) for number in range(3)]
    broken = instances[1]

    def receiver(sender, instance, **kwargs):
        if instance.pk == broken.pk:
            raise RuntimeError("receiver failed")

    now = max(i.due_at for i in instances) + timedelta(seconds=1)
    signals.workflow_due.connect(receiver)
    try:
        with caplog.at_level(logging.ERROR, logger="django_steps.timers"):
            result = sweep_due_timers(now=now)
    finally:
        signals.workflow_due.disconnect(receiver)
    assert result == (2, 1)
    assert str(broken.pk) in caplog.text
    assert "receiver failed" in caplog.text
    assert fresh(broken).current_step_status.name == "Waiting"  # rolled back, still due
    assert not fresh(broken).history.filter(timed_out=True).exists()
    assert [fresh(i).current_step_status.name for i in instances] == [
        "Escalated",
        "Waiting",
        "Escalated",
    ]
    assert run_due_timers(now=now) == 1  # the next run tries it again


def test_a_timeout_with_no_passing_transition_is_skipped(orders):
    data = orders_definition()
    data["steps"][0]["timeout_status"] = "Approved"
    data["transitions"][0]["condition"] = "false"
    data["transitions"].insert(1, {"from": "Approval", "to": "Done", "condition": "false"})
    create_orders(data)
    stuck, other = start(1), start(2)
    other_instance = fresh(other)
    assert update_workflow_step_status(other_instance, "Withdrawn")
    result = sweep_due_timers(now=stuck.due_at + timedelta(seconds=1))
    assert result == (0, 1)
    assert fresh(stuck).current_step_status.name == "Waiting"


def test_limit_caps_the_instances_moved(orders):
    instances = [start(number) for number in range(3)]
    now = max(i.due_at for i in instances)
    assert run_due_timers(now=now, limit=2) == 2
    assert run_due_timers(now=now, limit=2) == 1


def test_an_instance_already_at_its_timeout_status_only_loses_its_due_time(orders):
    instance = start()
    assert update_workflow_step_status(instance, "Escalated")  # by hand, before the sweep
    assert fresh(instance).due_at is not None
    assert run_due_timers(now=instance.due_at) == 0
    assert fresh(instance).due_at is None
    assert not fresh(instance).history.filter(timed_out=True).exists()


def test_strict_time_out_refuses_an_instance_that_is_not_due(orders):
    instance = start()
    with pytest.raises(OperationNotAllowed, match="not due") as caught:
        engine.time_out_workflow_instance(instance, now=instance.due_at - timedelta(seconds=1))
    assert caught.value.operation == "time_out"
    assert fresh(instance).current_step_status.name == "Waiting"


def test_system_is_recorded_for_any_service_call(orders):
    instance = start()
    assert update_workflow_step_status(instance, "Escalated", actor=SYSTEM)
    row = instance.history.latest("id")
    assert row.by_system
    assert row.actor is None
    assert not row.timed_out
    assert repr(SYSTEM) == "SYSTEM"


def test_system_survives_copy_and_pickle():
    import copy
    import pickle

    assert pickle.loads(pickle.dumps(SYSTEM)) is SYSTEM
    assert copy.deepcopy(SYSTEM) is SYSTEM
    assert SYSTEM.pk is None


# --- definitions ------------------------------------------------------------------------


def test_export_carries_the_deadlines_and_imports_them_back(orders):
    text = export_definitions(["Orders"], format="json")
    assert '"due_after": 3600' in text
    assert '"timeout_status": "Escalated"' in text
    approval = WorkflowStep.objects.get(workflow=orders, name="Approval")
    assert approval.due_after == HOUR
    assert approval.timeout_status.name == "Escalated"
    # Changing the timeout status to another status, and removing the old one.
    data = orders_definition()
    data["steps"][0]["timeout_status"] = "Withdrawn"
    data["steps"][0]["due_after"] = 60
    approval_data = data["steps"][0]
    approval_data["statuses"] = [s for s in approval_data["statuses"] if s["name"] != "Escalated"]
    report = import_definitions([WorkflowDefinition.from_dict(data)])
    assert "step 'Approval': due_after, timeout_status changed" in str(report)
    approval.refresh_from_db()
    assert approval.due_after == timedelta(minutes=1)
    assert approval.timeout_status.name == "Withdrawn"


def test_a_file_without_deadlines_still_imports(orders):
    data = orders_definition()
    for step in data["steps"]:
        step.pop("due_after", None)
        step.pop("timeout_status", None)
    import_definitions([WorkflowDefinition.from_dict(data)])
    approval = WorkflowStep.objects.get(workflow=orders, name="Approval")
    assert approval.due_after is None
    assert approval.timeout_status is None
    assert start().due_at is None


def test_timeout_status_of_another_step_is_refused(orders):
    approval = WorkflowStep.objects.get(workflow=orders, name="Approval")
    approval.timeout_status = WorkflowStepStatus.objects.get(step__name="Fulfilment", name="Open")
    with pytest.raises(ValidationError) as caught:
        approval.full_clean()
    assert "timeout_status" in caught.value.message_dict
    approval.save()
    codes = [problem.code for problem in validate_workflow(orders)]
    assert "timeout_status_other_step" in codes
    assert "unknown_timeout_status" not in codes


def test_a_deadline_on_a_final_step_is_refused():
    data = orders_definition()
    data["steps"][2]["due_after"] = 60
    data["steps"][2]["timeout_status"] = "Done"
    with pytest.raises(DefinitionError, match="final step 'Done' has a deadline"):
        import_definitions([WorkflowDefinition.from_dict(data)])


def test_the_database_keeps_due_after_and_timeout_status_together(orders):
    approval = WorkflowStep.objects.get(workflow=orders, name="Approval")
    approval.timeout_status = None
    with pytest.raises(ValidationError, match="Choose the status"):
        approval.full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        WorkflowStep.objects.filter(pk=approval.pk).update(timeout_status=None)
    with pytest.raises(IntegrityError), transaction.atomic():
        WorkflowStep.objects.filter(pk=approval.pk).update(due_after=timedelta(0))


def test_deleting_the_timeout_status_is_refused_but_the_step_can_go(orders):
    escalated = WorkflowStepStatus.objects.get(step__name="Approval", name="Escalated")
    with pytest.raises(RestrictedError, match="timeout status"):
        escalated.delete()
    orders.delete()
    assert not WorkflowStep.objects.filter(name="Approval").exists()


# --- the management command -------------------------------------------------------------


def test_the_management_command_moves_due_instances(orders):
    instance = start()
    WorkflowInstance.objects.filter(pk=instance.pk).update(
        due_at=timezone.now() - timedelta(seconds=1)
    )
    out = StringIO()
    call_command("steps_run_timers", stdout=out)
    assert out.getvalue().strip() == "1 due instance(s) moved."
    assert fresh(instance).current_step_status.name == "Escalated"
    out = StringIO()
    call_command("steps_run_timers", stdout=out)
    assert out.getvalue() == ""


# --- the admin --------------------------------------------------------------------------


def test_the_step_page_offers_only_the_steps_own_statuses_as_timeout_status(admin_client, orders):
    from django.urls import reverse

    approval = WorkflowStep.objects.get(workflow=orders, name="Approval")
    response = admin_client.get(
        reverse("admin:django_steps_workflowstep_change", args=[approval.pk])
    )
    assert response.status_code == 200
    field = response.context["adminform"].form.fields["timeout_status"]
    assert sorted(field.queryset.values_list("name", flat=True)) == sorted(
        approval.possible_statuses.values_list("name", flat=True)
    )
    assert "Deadline" in response.content.decode()
    response = admin_client.get(reverse("admin:django_steps_workflowstep_add"))
    assert not response.context["adminform"].form.fields["timeout_status"].queryset.exists()


def test_the_instance_page_shows_the_due_time(admin_client, orders):
    from django.urls import reverse

    instance = start()
    response = admin_client.get(
        reverse("admin:django_steps_workflowinstance_change", args=[instance.pk])
    )
    assert response.status_code == 200
    assert "Due at" in response.content.decode()


def test_an_instance_whose_step_lost_its_deadline_only_loses_its_due_time(orders):
    instance = start()
    WorkflowStep.objects.filter(workflow=orders, name="Approval").update(
        due_after=None, timeout_status=None
    )
    orders.save()  # bumps the definition version: the engine recompiles
    seen = []
    signals.workflow_due.connect(receiver := lambda **kwargs: seen.append(kwargs))
    try:
        assert sweep_due_timers(now=instance.due_at) == (0, 0)
    finally:
        signals.workflow_due.disconnect(receiver)
    assert seen == []
    assert fresh(instance).due_at is None
    assert fresh(instance).current_step_status.name == "Waiting"


def test_on_sqlite_the_sweep_query_reads_the_due_index(orders):
    from django.db import connection

    from django_steps.timers import _claim_query

    if connection.vendor != "sqlite":
        pytest.skip("the PostgreSQL plan is checked in test_timer_workers.py")
    start()
    plan = _claim_query("default", timezone.now(), set()).explain()
    assert "django_steps_instance_due" in plan, plan
    assert "TEMP B-TREE" not in plan, plan  # no sort: the index gives the order
