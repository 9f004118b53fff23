"""Who may act (issue 16): status permissions and actor conditions enforced on every
path, SYSTEM, separation of duties through ``instance.actors``, the statuses a user
may set, assignment and the ``awaiting(user)`` inbox.

The acceptance scenarios: a status with ``permission`` is refused for a user without
it and with no actor, accepted with it (also granted per object by a backend like
django-guardian) and with ``actor=SYSTEM``; an ``actor_condition`` "not the
submitter" refuses the submitter and accepts another user; ``get_available_statuses``
lists exactly what a user may set; ``awaiting(user)`` returns the instances of the
user's group and assignments in one query. Every refusal writes nothing.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError
from django.db import connection

from django_steps import engine, signals
from django_steps.actors import SYSTEM, SystemActor
from django_steps.exceptions import InstanceFinished, PermissionDenied, StepsError
from django_steps.introspection import describe_instance, explain
from django_steps.machines.definition import WorkflowDefinition
from django_steps.models import Workflow, WorkflowHistory, WorkflowInstance, WorkflowStepStatus
from django_steps.services import SYSTEM as SERVICES_SYSTEM
from django_steps.services import (
    aget_available_statuses,
    assign_workflow_instance,
    cancel_workflow_instance,
    get_available_statuses,
    resume_workflow_instance,
    set_workflow_on_hold,
    start_workflow_instance,
    update_workflow_step_status,
)
from django_steps.validation import validate_workflow
from tests import object_permissions
from tests.factories import create_workflow
from tests.testapp.models import Claim

pytestmark = pytest.mark.django_db

CHECK = "testapp.change_claim"
NOT_SUBMITTER = 'actor.id != instance.actors["Draft"]'

ORDERS: dict[str, Any] = {
    "name": "Orders",
    "steps": [
        {
            "name": "Draft",
            "order": 1,
            "initial": True,
            "assignee_group": "clerks",
            "statuses": [
                {"name": "Open", "default": True},
                {"name": "Submitted", "completion": True},
                {"name": "Withdrawn", "cancellation": True, "permission": CHECK},
                {"name": "Paused", "on_hold": True, "permission": CHECK},
            ],
        },
        {
            "name": "Approval",
            "order": 2,
            "assignee_group": "managers",
            "statuses": [
                {"name": "Pending", "default": True},
                {"name": "Checked", "permission": CHECK},
                {"name": "Approved", "completion": True, "actor_condition": NOT_SUBMITTER},
                {"name": "Rejected", "cancellation": True},
            ],
        },
        {
            "name": "Done",
            "order": 3,
            "final": True,
            "statuses": [{"name": "Closed", "default": True, "completion": True}],
        },
    ],
    "transitions": [
        {"from": "Draft", "to": "Approval"},
        {"from": "Approval", "to": "Done"},
    ],
}


@pytest.fixture(autouse=True)
def _no_object_grants():
    yield
    object_permissions.clear()


@pytest.fixture
def workflow():
    return create_workflow(copy.deepcopy(ORDERS))


@pytest.fixture
def users():
    clerks, _ = Group.objects.get_or_create(name="clerks")
    managers, _ = Group.objects.get_or_create(name="managers")
    clerk = User.objects.create_user("clerk")
    clerk.groups.add(clerks)
    manager = User.objects.create_user("manager")
    manager.groups.add(managers)
    checker = User.objects.create_user("checker")
    checker.user_permissions.add(Permission.objects.get(codename="change_claim"))
    nobody = User.objects.create_user("nobody")
    return {"clerk": clerk, "manager": manager, "checker": checker, "nobody": nobody}


def fresh(user: User) -> User:
    """The user read again, so Django's per-object permission cache starts empty."""
    return User.objects.get(pk=user.pk)


def at_approval(workflow, clerk) -> WorkflowInstance:
    instance = start_workflow_instance("Orders", Claim.objects.create(title="c"))
    assert update_workflow_step_status(instance, "Submitted", actor=clerk)
    assert instance.current_step.name == "Approval"
    return instance


def snapshot(instance: WorkflowInstance) -> tuple[Any, ...]:
    row = WorkflowInstance.objects.get(pk=instance.pk)
    return (
        row.current_step_id,
        row.current_step_status_id,
        row.lifecycle,
        row.actors,
        row.assignee_id,
        WorkflowHistory.objects.filter(instance=instance).count(),
    )


# --- a status with a permission ----------------------------------------------------


def test_permission_refuses_a_user_without_it_and_writes_nothing(workflow, users):
    instance = at_approval(workflow, users["clerk"])
    before = snapshot(instance)
    assert not update_workflow_step_status(instance, "Checked", actor=users["nobody"])
    refusal = instance.refusal
    assert isinstance(refusal, PermissionDenied)
    assert refusal.status == "Checked"
    assert refusal.step == "Approval"
    assert refusal.rule == f"permission {CHECK}"
    assert "'Checked'" in str(refusal)
    assert CHECK in str(refusal)
    assert snapshot(instance) == before
    assert instance.current_step_status.name == "Pending"


def test_permission_refuses_when_no_actor_is_given(workflow, users):
    instance = at_approval(workflow, users["clerk"])
    before = snapshot(instance)
    assert not update_workflow_step_status(instance, "Checked")
    assert "no actor was given" in str(instance.refusal)
    assert snapshot(instance) == before


def test_the_strict_engine_raises_a_django_permission_denied(workflow, users):
    instance = at_approval(workflow, users["clerk"])
    with pytest.raises(PermissionDenied) as caught:
        engine.update_workflow_step_status(instance, "Checked", actor=users["nobody"])
    assert isinstance(caught.value, StepsError)
    assert isinstance(caught.value, DjangoPermissionDenied)
    assert caught.value.instance is instance


def test_permission_accepts_a_user_holding_it(workflow, users):
    instance = at_approval(workflow, users["clerk"])
    assert update_workflow_step_status(instance, "Checked", actor=users["checker"])
    assert instance.current_step_status.name == "Checked"
    row = WorkflowHistory.objects.filter(instance=instance).last()
    assert row.actor == users["checker"]
    assert not row.by_system


def test_permission_granted_per_object_by_an_object_level_backend(workflow, users):
    instance = at_approval(workflow, users["clerk"])
    other = start_workflow_instance("Orders", Claim.objects.create(title="other"))
    assert update_workflow_step_status(other, "Submitted", actor=users["clerk"])
    nobody = users["nobody"]
    object_permissions.grant(nobody, CHECK, instance.content_object)
    assert not fresh(nobody).has_perm(CHECK)
    assert update_workflow_step_status(instance, "Checked", actor=fresh(nobody))
    assert not update_workflow_step_status(other, "Checked", actor=fresh(nobody))


def test_system_passes_every_rule_and_is_recorded_as_such(workflow, users):
    assert SERVICES_SYSTEM is SYSTEM
    assert repr(SYSTEM) == "SYSTEM"
    assert isinstance(SYSTEM, SystemActor)
    instance = at_approval(workflow, users["clerk"])
    assert update_workflow_step_status(instance, "Checked", actor=SYSTEM)
    assert update_workflow_step_status(instance, "Approved", actor=SYSTEM)
    rows = list(WorkflowHistory.objects.filter(instance=instance, by_system=True))
    assert [row.to_status_name for row in rows] == ["Checked", "Approved", "Closed", "Closed"]
    assert all(row.actor_id is None for row in rows)
    assert "Approval" not in WorkflowInstance.objects.get(pk=instance.pk).actors


# --- hold, resume and cancel carry their statuses' rules ---------------------------


def test_hold_resume_and_cancel_take_their_statuses_rules(workflow, users):
    instance = start_workflow_instance("Orders", Claim.objects.create(title="c"))
    before = snapshot(instance)
    assert not set_workflow_on_hold(instance, actor=users["nobody"])
    assert instance.refusal.status == "Paused"
    assert not set_workflow_on_hold(instance)
    assert not update_workflow_step_status(instance, "Paused", actor=users["nobody"])
    assert not cancel_workflow_instance(instance, actor=users["nobody"])
    assert instance.refusal.status == "Withdrawn"
    assert snapshot(instance) == before

    assert set_workflow_on_hold(instance, actor=users["checker"])
    before = snapshot(instance)
    assert not resume_workflow_instance(instance, actor=users["nobody"])
    assert instance.refusal.status == "Paused"
    assert snapshot(instance) == before
    assert resume_workflow_instance(instance, actor=users["checker"])
    assert cancel_workflow_instance(instance, actor=users["checker"])
    assert instance.lifecycle == "cancelled"


# --- separation of duties ----------------------------------------------------------


def test_not_the_submitter_refuses_the_submitter_and_accepts_another_user(workflow, users):
    clerk, manager = users["clerk"], users["manager"]
    instance = at_approval(workflow, clerk)
    assert WorkflowInstance.objects.get(pk=instance.pk).actors == {"Draft": clerk.pk}
    before = snapshot(instance)
    assert not update_workflow_step_status(instance, "Approved", actor=clerk)
    assert instance.refusal.rule == f"actor_condition {NOT_SUBMITTER}"
    assert "false" in instance.refusal.reason
    assert snapshot(instance) == before
    assert update_workflow_step_status(instance, "Approved", actor=manager)
    assert instance.lifecycle == "completed"
    # The final step was completed by the engine on entry: no actor is recorded there.
    assert WorkflowInstance.objects.get(pk=instance.pk).actors == {
        "Draft": clerk.pk,
        "Approval": manager.pk,
    }


def test_an_actor_condition_that_cannot_be_evaluated_refuses(workflow, users):
    instance = start_workflow_instance("Orders", Claim.objects.create(title="c"))
    # Submitted by SYSTEM: no actor is recorded at Draft, so the condition's key is
    # missing and evaluating it fails: fail closed.
    assert update_workflow_step_status(instance, "Submitted", actor=SYSTEM)
    before = snapshot(instance)
    assert not update_workflow_step_status(instance, "Approved", actor=users["manager"])
    assert "could not be evaluated" in instance.refusal.reason
    assert snapshot(instance) == before


def test_reading_instance_actors_costs_no_query_beyond_an_update(
    workflow, users, django_assert_num_queries
):
    instance = at_approval(workflow, users["clerk"])
    manager = User.objects.prefetch_related("groups").get(pk=users["manager"].pk)
    # instance.actors is a column of the locked row: the same statements as any state
    # change (savepoint, lock, update, history insert, release; PostgreSQL combines
    # the update and the insert). The actor's groups are prefetched.
    assert assign_workflow_instance(instance, manager)
    instance = WorkflowInstance.objects.get(pk=instance.pk)  # the assignee is not loaded
    state_change = 4 if connection.vendor == "postgresql" else 5
    with django_assert_num_queries(state_change):
        assert update_workflow_step_status(instance, "Approved", actor=manager)
    assert instance.assignee_id == manager.pk


# --- what may this user do now -----------------------------------------------------


def test_get_available_statuses_lists_exactly_what_a_user_may_set(workflow, users):
    clerk, manager, checker = users["clerk"], users["manager"], users["checker"]
    instance = start_workflow_instance("Orders", Claim.objects.create(title="c"))
    assert get_available_statuses(instance, fresh(clerk)) == ["Submitted"]
    assert get_available_statuses(instance, fresh(checker)) == [
        "Submitted",
        "Withdrawn",
        "Paused",
    ]
    assert get_available_statuses(instance, None) == ["Submitted"]
    assert get_available_statuses(instance, SYSTEM) == ["Submitted", "Withdrawn", "Paused"]
    assert update_workflow_step_status(instance, "Submitted", actor=clerk)
    assert get_available_statuses(instance, fresh(clerk)) == ["Rejected"]
    assert get_available_statuses(instance, fresh(manager)) == ["Approved", "Rejected"]
    assert get_available_statuses(instance, fresh(checker)) == ["Checked", "Approved", "Rejected"]
    assert update_workflow_step_status(instance, "Approved", actor=manager)
    assert get_available_statuses(instance, fresh(manager)) == []


def test_get_available_statuses_on_hold_offers_only_cancellation(workflow, users):
    instance = start_workflow_instance("Orders", Claim.objects.create(title="c"))
    assert set_workflow_on_hold(instance, actor=SYSTEM)
    assert get_available_statuses(instance, fresh(users["checker"])) == ["Withdrawn"]
    assert get_available_statuses(instance, fresh(users["clerk"])) == []


def test_aget_available_statuses(workflow):
    from asgiref.sync import async_to_sync

    instance = start_workflow_instance("Orders", Claim.objects.create(title="c"))
    found = async_to_sync(aget_available_statuses)(instance, SYSTEM)
    assert found == ["Submitted", "Withdrawn", "Paused"]


def test_explain_and_describe_report_each_status_rule(workflow, users):
    instance = at_approval(workflow, users["clerk"])
    report = explain(instance, status="Approved", actor=users["clerk"])
    assert not report.allowed
    assert report.refused_by is PermissionDenied
    rules = {check.status: check for check in report.rules}
    assert rules["Approved"].rule == f"actor_condition {NOT_SUBMITTER}"
    assert not rules["Approved"].allowed
    assert rules["Approved"].reason == "the actor condition is false for this actor"
    assert rules["Rejected"].allowed
    assert rules["Rejected"].rule == ""
    assert "Approved: actor_condition" in str(report)

    described = describe_instance(instance, actor=users["manager"])
    assert described.allowed_statuses == ["Pending", "Approved", "Rejected"]
    checked = {check.status: check for check in described.rules}
    assert checked["Approved"].allowed
    assert "the actor does not have the permission 'testapp.change_claim'" in (
        checked["Checked"].reason
    )
    assert explain(instance, status="Approved", actor=users["manager"]).allowed


# --- validation at save time -------------------------------------------------------


def test_a_permission_that_does_not_exist_is_an_error_naming_it(workflow):
    status = WorkflowStepStatus.objects.get(step__name="Approval", name="Checked")
    status.permission = "testapp.fly_claim"
    with pytest.raises(ValidationError) as caught:
        status.full_clean()
    assert "testapp.fly_claim" in str(caught.value.message_dict["permission"])
    status.save()
    problems = [p for p in validate_workflow(workflow) if p.code == "unknown_permission"]
    assert [(p.step, p.name, p.field) for p in problems] == [("Approval", "Checked", "permission")]
    assert "'testapp.fly_claim'" in problems[0].message


def test_a_permission_must_be_app_label_dot_codename(workflow):
    status = WorkflowStepStatus.objects.get(step__name="Approval", name="Checked")
    status.permission = "change_claim"
    with pytest.raises(ValidationError) as caught:
        status.full_clean()
    assert "app_label.codename" in str(caught.value.message_dict["permission"])
    data = copy.deepcopy(ORDERS)
    data["steps"][1]["statuses"][1]["permission"] = "change claim"
    problems = validate_workflow(WorkflowDefinition.from_dict(data))
    assert [p.code for p in problems if p.field == "permission"] == ["invalid_permission"]


def test_an_actor_condition_is_checked_with_line_and_column(workflow):
    status = WorkflowStepStatus.objects.get(step__name="Approval", name="Approved")
    status.actor_condition = "actor.id !=\n  )"
    with pytest.raises(ValidationError) as caught:
        status.full_clean()
    assert "line 2" in str(caught.value.message_dict["actor_condition"])
    status.actor_condition = "actor.name == 'x'"
    with pytest.raises(ValidationError) as caught:
        status.full_clean()
    assert "name" in str(caught.value.message_dict["actor_condition"])
    status.save()
    problems = [p for p in validate_workflow(workflow) if p.field == "actor_condition"]
    assert problems
    assert problems[0].line == 1
    assert problems[0].column is not None


# --- import and export -------------------------------------------------------------


def test_definitions_carry_the_rules_and_round_trip_identically(workflow):
    from django_steps._engine.loading import definition_from_db

    exported = definition_from_db(workflow).to_dict()
    approval = exported["steps"][1]
    assert approval["assignee_group"] == "managers"
    assert approval["statuses"][1]["permission"] == CHECK
    assert approval["statuses"][2]["actor_condition"] == NOT_SUBMITTER
    assert WorkflowDefinition.from_dict(exported).to_dict() == exported
    assert "permission" not in exported["steps"][2]["statuses"][0]


# --- assignment and the inbox ------------------------------------------------------


def test_assignment_writes_history_sends_the_signal_and_clears_on_another_group(workflow, users):
    clerk, manager = users["clerk"], users["manager"]
    instance = start_workflow_instance("Orders", Claim.objects.create(title="c"))
    received = []

    def receiver(**kwargs: Any) -> None:
        received.append((kwargs["assignee"], kwargs["previous"], kwargs["actor"]))

    signals.workflow_assigned.connect(receiver)
    try:
        assert assign_workflow_instance(instance, clerk, actor=clerk)  # a claim
        assert assign_workflow_instance(instance, clerk, actor=clerk)  # no change
    finally:
        signals.workflow_assigned.disconnect(receiver)
    assert received == [(clerk, None, clerk)]
    row = WorkflowHistory.objects.filter(instance=instance, event="assigned").get()
    assert row.assignee == clerk
    assert row.actor == clerk
    assert row.to_step_name == "Draft"
    assert WorkflowInstance.objects.get(pk=instance.pk).assignee == clerk

    assert update_workflow_step_status(instance, "Submitted", actor=clerk)
    assert instance.assignee_id is None  # Approval has another group
    assert WorkflowInstance.objects.get(pk=instance.pk).assignee_id is None

    assert assign_workflow_instance(instance, manager)
    assert update_workflow_step_status(instance, "Approved", actor=manager)
    assert instance.assignee_id == manager.pk  # Done has no group: kept


def test_who_may_assign(workflow, users):
    clerk, manager, nobody = users["clerk"], users["manager"], users["nobody"]
    instance = start_workflow_instance("Orders", Claim.objects.create(title="c"))
    before = snapshot(instance)
    assert not assign_workflow_instance(instance, nobody, actor=nobody)  # not a clerk
    assert isinstance(instance.refusal, PermissionDenied)
    assert not assign_workflow_instance(instance, manager, actor=clerk)  # someone else
    assert snapshot(instance) == before
    assert assign_workflow_instance(instance, clerk, actor=clerk)
    assert not assign_workflow_instance(instance, manager, actor=manager)  # taken
    assert assign_workflow_instance(instance, None, actor=clerk)  # unassign oneself
    admin = User.objects.create_user("admin")
    admin.user_permissions.add(Permission.objects.get(codename="assign_workflowinstance"))
    assert assign_workflow_instance(instance, nobody, actor=admin)
    assert cancel_workflow_instance(instance, actor=SYSTEM)
    with pytest.raises(InstanceFinished):
        engine.assign_workflow_instance(instance, clerk)


def test_awaiting_returns_the_groups_and_the_assigned_instances_in_one_query(
    workflow, users, django_assert_num_queries
):
    clerk, manager = users["clerk"], users["manager"]

    def started() -> WorkflowInstance:
        return start_workflow_instance("Orders", Claim.objects.create(title="c"))

    at_draft = started()
    claimed_by_other = started()
    assign_workflow_instance(claimed_by_other, users["nobody"])
    at_approval_unassigned = started()
    update_workflow_step_status(at_approval_unassigned, "Submitted", actor=clerk)
    assigned_to_manager_at_draft = started()
    assign_workflow_instance(assigned_to_manager_at_draft, manager)
    held = started()
    set_workflow_on_hold(held, actor=SYSTEM)
    finished = started()
    cancel_workflow_instance(finished, actor=SYSTEM)

    with django_assert_num_queries(1):
        clerk_inbox = {instance.pk for instance in WorkflowInstance.objects.awaiting(clerk)}
    assert clerk_inbox == {at_draft.pk}
    with django_assert_num_queries(1):
        manager_inbox = {instance.pk for instance in WorkflowInstance.objects.awaiting(manager)}
    assert manager_inbox == {at_approval_unassigned.pk, assigned_to_manager_at_draft.pk}
    assert not WorkflowInstance.objects.awaiting(None).exists()


def test_export_and_import_carry_the_rules_and_old_files_still_load(workflow):
    from django_steps.machines.serialization import dump_definitions, parse_definitions
    from django_steps.transfer import export_definitions, import_definitions

    text = export_definitions(["Orders"])
    assert "assignee_group: managers" in text
    assert f"permission: {CHECK}" in text
    WorkflowStepStatus.objects.filter(name="Checked").update(permission="")
    import_definitions(parse_definitions(text, format="yaml"))
    assert WorkflowStepStatus.objects.get(name="Checked").permission == CHECK
    assert export_definitions(["Orders"]) == text

    old = copy.deepcopy(ORDERS)
    old["name"] = "Old orders"
    for transition in old["transitions"]:
        transition["name"] = f"{transition['from']} -> {transition['to']}"
    for step in old["steps"]:
        step.pop("assignee_group", None)
        for status in step["statuses"]:
            status.pop("permission", None)
            status.pop("actor_condition", None)
    old_text = dump_definitions([WorkflowDefinition.from_dict(old)], format="yaml")
    import_definitions(parse_definitions(old_text, format="yaml"))
    assert export_definitions(["Old orders"]) == old_text


def test_import_refuses_an_unknown_group_and_writes_nothing(workflow):
    from django_steps.transfer import import_definitions

    data = copy.deepcopy(ORDERS)
    data["name"] = "Elsewhere"
    data["steps"][0]["assignee_group"] = "nobody-has-this"
    with pytest.raises(StepsError, match="nobody-has-this"):
        import_definitions([WorkflowDefinition.from_dict(data)])
    assert not Workflow.objects.filter(name="Elsewhere").exists()


# --- the testing helpers drive a definition as a given actor -----------------------


def test_a_scenario_acts_as_plain_actors_with_the_services_rules():
    from django_steps.testing import WorkflowScenario

    clerk = {"id": 1, "username": "clara", "groups": ["clerks"], "permissions": []}
    manager = {"id": 2, "username": "max", "groups": ["managers"], "permissions": [CHECK]}
    run = WorkflowScenario(copy.deepcopy(ORDERS), actor=clerk)
    assert run.available() == ["Submitted"]
    with pytest.raises(PermissionDenied):
        run.hold()
    run.set_status("Submitted")
    assert run.actors == {"Draft": 1}
    assert run.available() == ["Rejected"]
    with pytest.raises(PermissionDenied, match="actor condition is false"):
        run.set_status("Approved")
    run.acting_as(manager)
    assert run.available() == ["Checked", "Approved", "Rejected"]
    run.set_status("Checked").set_status("Approved")
    assert run.lifecycle.value == "completed"
    assert WorkflowScenario(copy.deepcopy(ORDERS), actor=SYSTEM).hold().lifecycle.value == (
        "on_hold"
    )
    with pytest.raises(PermissionDenied, match="no actor was given"):
        WorkflowScenario(copy.deepcopy(ORDERS)).cancel()


def test_the_diagram_shows_groups_and_guarded_statuses():
    from django_steps.machines.diagram import render_diagram
    from django_steps.machines.runner import WorkflowRunner

    runner = WorkflowRunner(WorkflowDefinition.from_dict(copy.deepcopy(ORDERS)))
    dot = render_diagram(runner, format="dot")
    assert "group: managers" in dot
    assert "\N{LOCK} Checked, Approved" in dot
    assert "\N{LOCK} Withdrawn, Paused" in dot
    assert "\N{LOCK}" in render_diagram(runner, format="mermaid")


# --- the admin ---------------------------------------------------------------------


def _staff(user: User, *codenames: str) -> User:
    user.is_staff = True
    user.save()
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="django_steps",
            codename__in=["view_workflowinstance", *codenames],
        )
    )
    return user


def test_admin_awaiting_me_filter_and_claim(client, workflow, users):
    from django.urls import reverse

    clerk = _staff(users["clerk"])
    mine = start_workflow_instance("Orders", Claim.objects.create(title="mine"))
    elsewhere = start_workflow_instance("Orders", Claim.objects.create(title="elsewhere"))
    update_workflow_step_status(elsewhere, "Submitted", actor=SYSTEM)
    client.force_login(clerk)
    elsewhere_page = reverse("admin:django_steps_workflowinstance_change", args=[elsewhere.pk])
    assert "<td>SYSTEM</td>" in client.get(elsewhere_page).content.decode()
    changelist = reverse("admin:django_steps_workflowinstance_changelist")
    response = client.get(changelist, {"awaiting": "me"})
    shown = {instance.pk for instance in response.context["cl"].result_list}
    assert shown == {mine.pk}

    page = reverse("admin:django_steps_workflowinstance_change", args=[mine.pk])
    assert "Claim" in client.get(page).content.decode()
    client.post(page, {"_steps_claim": "1"})
    assert WorkflowInstance.objects.get(pk=mine.pk).assignee_id == clerk.pk
    assert "assigned to clerk" in client.get(page).content.decode()
    other_page = reverse("admin:django_steps_workflowinstance_change", args=[elsewhere.pk])
    client.post(other_page, {"_steps_claim": "1"})  # not a manager: refused
    assert WorkflowInstance.objects.get(pk=elsewhere.pk).assignee_id is None


def test_admin_set_status_form_offers_only_what_the_user_may_set(client, workflow, users):
    from django.urls import reverse

    clerk = _staff(users["clerk"], "set_status_workflowinstance")
    instance = at_approval(workflow, clerk)
    client.force_login(clerk)
    page = reverse("admin:django_steps_workflowinstance_change", args=[instance.pk])
    form = client.get(page).context["steps_status_form"]
    assert [name for name, _ in form.fields["status"].choices] == ["Pending", "Rejected"]
    # Posting a status the form does not offer is refused by the form and the engine.
    client.post(page, {"steps-status": "Approved", "_steps_set_status": "1"})
    assert WorkflowInstance.objects.get(pk=instance.pk).current_step_status.name == "Pending"


def test_admin_status_page_reports_rule_errors_at_line_and_column(admin_client, workflow):
    import re

    from django.urls import reverse

    status = WorkflowStepStatus.objects.get(step__name="Approval", name="Approved")
    url = reverse("admin:django_steps_workflowstepstatus_change", args=[status.pk])
    response = admin_client.post(
        url,
        {
            "name": "Approved",
            "is_completion_status": "on",
            "permission": "testapp.nope_claim",
            "actor_condition": "actor.id !=",
            "description": "",
        },
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "testapp.nope_claim" in " ".join(errors["permission"])
    assert re.search(r"line 1, column \d+", " ".join(errors["actor_condition"]))
    assert WorkflowStepStatus.objects.get(pk=status.pk).actor_condition == NOT_SUBMITTER


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL")
def test_awaiting_is_served_by_the_indexes_on_postgresql(workflow, users):
    clerk = users["clerk"]
    for index in range(20):
        instance = start_workflow_instance("Orders", Claim.objects.create(title=str(index)))
        if index % 2:
            assign_workflow_instance(instance, clerk)
    with connection.cursor() as cursor:
        # On a table this small a sequential scan is cheapest; forbid it to see which
        # indexes the plan can use (bench/run.py times it among 100,000 instances).
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("ANALYZE django_steps_workflowinstance")
    plan = WorkflowInstance.objects.awaiting(clerk).explain()
    # Both branches of the union and the outer look-up read instances by an index;
    # none scans the table.
    assert "Seq Scan on django_steps_workflowinstance" not in plan
    # An index is read by an index scan, or by a bitmap index scan (the planner's choice
    # once other tests have filled the auth tables).
    found = re.findall(r"(?:Index (?:Only )?Scan using|Bitmap Index Scan on) (\w+)", plan)
    instance_indexes = {index.name for index in WorkflowInstance._meta.indexes} | {
        "django_steps_workflowinstance_pkey"
    }
    scans = [name for name in found if name in instance_indexes]
    assert len(scans) == 3, plan
    assert set(scans) <= {
        "django_steps_assignee",
        "django_steps_unassigned",
        "django_steps_workflowinstance_pkey",
    }, plan


def test_explain_definition_and_assert_transition_take_plain_actors():
    from django_steps.testing import assert_transition, explain_definition

    data = copy.deepcopy(ORDERS)
    checker = {"id": 3, "username": "c", "groups": [], "permissions": [CHECK]}
    assert explain_definition(data, step="Approval", status="Checked", actor=checker).allowed
    refused = explain_definition(data, step="Approval", status="Checked", actor={"id": 4})
    assert refused.refused_by is PermissionDenied
    assert explain_definition(data, step="Approval", status="Checked", actor=SYSTEM).allowed
    assert_transition(data, from_step="Draft", status="Submitted", to_step="Approval")


def test_import_refuses_an_unknown_permission_naming_it(workflow):
    from django_steps.transfer import import_definitions

    data = copy.deepcopy(ORDERS)
    data["name"] = "Misspelt"
    data["steps"][1]["statuses"][1]["permission"] = "testapp.chnage_claim"
    with pytest.raises(StepsError, match=re.escape("'testapp.chnage_claim' does not exist")):
        import_definitions([WorkflowDefinition.from_dict(data)])
    assert not Workflow.objects.filter(name="Misspelt").exists()


def test_aassign_workflow_instance(workflow, users):
    from asgiref.sync import async_to_sync

    from django_steps.services import aassign_workflow_instance

    instance = start_workflow_instance("Orders", Claim.objects.create(title="c"))
    assert async_to_sync(aassign_workflow_instance)(instance, users["clerk"], actor=SYSTEM)
    row = WorkflowHistory.objects.get(instance=instance, event="assigned")
    assert row.by_system
    assert row.assignee == users["clerk"]


def test_a_permission_rule_reads_no_groups_for_the_actor(
    workflow, users, django_assert_num_queries
):
    instance = at_approval(workflow, users["clerk"])
    checker = fresh(users["checker"])
    assert checker.has_perm(CHECK)  # Django caches the user's permissions on the object
    state_change = 4 if connection.vendor == "postgresql" else 5
    with django_assert_num_queries(state_change):
        assert update_workflow_step_status(instance, "Checked", actor=checker)


def test_describe_workflow_shows_the_rules(workflow):
    from django_steps.introspection import describe_workflow

    text = str(describe_workflow("Orders"))
    assert "Approval (group managers)" in text
    assert f"status Checked [permission {CHECK}]" in text
    assert f"status Approved [completion, actor condition {NOT_SUBMITTER}]" in text
