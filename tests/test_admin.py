"""The admin with Django's test client: definitions, instances, actions, set-status form."""

from __future__ import annotations

import base64
import json
import re
from decimal import Decimal
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from django_steps import engine
from django_steps.admin import panels
from django_steps.admin.panels import diagram_cache
from django_steps.machines.lifecycle import Lifecycle
from django_steps.models import (
    Workflow,
    WorkflowHistory,
    WorkflowInstance,
    WorkflowStep,
    WorkflowStepStatus,
    WorkflowTransition,
    bump_version,
)
from tests.factories import claims_definition, create_workflow
from tests.programs import requires_graphviz
from tests.testapp.models import Claim, Document, PurchaseOrder

pytestmark = pytest.mark.django_db

INSTANCES_URL = reverse("admin:django_steps_workflowinstance_changelist")
WORKFLOW_ADD_URL = reverse("admin:django_steps_workflow_add")


@pytest.fixture(autouse=True)
def no_cached_diagrams() -> Any:
    diagram_cache.clear()
    yield
    diagram_cache.clear()


def start(workflow: Workflow, title: str = "Claim", **kwargs: Any) -> WorkflowInstance:
    claim = Claim.objects.create(title=title, **kwargs)
    return engine.start_workflow_instance(workflow.name, claim)


def change_url(instance: WorkflowInstance) -> str:
    return reverse("admin:django_steps_workflowinstance_change", args=[instance.pk])


def workflow_url(workflow: Workflow) -> str:
    return reverse("admin:django_steps_workflow_change", args=[workflow.pk])


def svg_in(page: str) -> bytes:
    """The SVG of the diagram panel's data URL in ``page``."""
    found = re.search(r'src="data:image/svg\+xml;base64,([^"]+)"', page)
    assert found is not None, "no SVG diagram on the page"
    return base64.b64decode(found.group(1))


def messages_of(response: Any) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def staff_user(*codenames: str) -> Any:
    user = get_user_model().objects.create_user("operator", password="pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="django_steps", codename__in=codenames)
    )
    return get_user_model().objects.get(pk=user.pk)


# --- forms posted to the workflow page ---------------------------------------------------


def management(prefix: str, total: int, initial: int = 0) -> dict[str, str]:
    return {
        f"{prefix}-TOTAL_FORMS": str(total),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


def workflow_post(workflow: Workflow, **transition_fields: str) -> dict[str, str]:
    """The change form of ``workflow`` as stored, plus one new transition row."""
    data = {"name": workflow.name, "description": workflow.description, "context_variables": "{}"}
    steps = list(workflow.steps.order_by("order", "pk"))
    data |= management("steps", len(steps), len(steps))
    for index, step in enumerate(steps):
        data |= {
            f"steps-{index}-id": str(step.pk),
            f"steps-{index}-workflow": str(workflow.pk),
            f"steps-{index}-name": step.name,
            f"steps-{index}-order": str(step.order),
            f"steps-{index}-description": step.description,
        }
        if step.is_initial_step:
            data[f"steps-{index}-is_initial_step"] = "on"
        if step.is_final_step:
            data[f"steps-{index}-is_final_step"] = "on"
    transitions = list(
        WorkflowTransition.objects.filter(workflow=workflow).order_by(
            "from_step__order", "-priority", "pk"
        )
    )
    data |= management("transitions", len(transitions) + 1, len(transitions))
    for index, transition in enumerate(transitions):
        data |= {
            f"transitions-{index}-id": str(transition.pk),
            f"transitions-{index}-workflow": str(workflow.pk),
            f"transitions-{index}-name": transition.name,
            f"transitions-{index}-from_step": str(transition.from_step_id),
            f"transitions-{index}-to_step": str(transition.to_step_id),
            f"transitions-{index}-condition": transition.condition,
            f"transitions-{index}-priority": str(transition.priority),
            f"transitions-{index}-description": transition.description,
        }
    new = len(transitions)
    data |= {f"transitions-{new}-{key}": value for key, value in transition_fields.items()}
    data.setdefault(f"transitions-{new}-priority", "0")
    return data


def test_a_workflow_is_built_through_the_forms(admin_client):
    response = admin_client.post(
        WORKFLOW_ADD_URL,
        {
            "name": "Leave",
            "description": "Leave requests",
            "context_variables": "{}",
            **management("steps", 2),
            "steps-0-name": "Request",
            "steps-0-order": "1",
            "steps-0-is_initial_step": "on",
            "steps-1-name": "Done",
            "steps-1-order": "2",
            "steps-1-is_final_step": "on",
            "_continue": "1",
        },
    )
    assert response.status_code == 302, response.context and response.context["errors"]
    workflow = Workflow.objects.get(name="Leave")
    request, done = workflow.steps.order_by("order")
    assert (request.is_initial_step, done.is_final_step) == (True, True)

    step_url = reverse("admin:django_steps_workflowstep_change", args=[request.pk])
    page = admin_client.get(workflow_url(workflow)).content.decode()
    assert step_url in page  # "Edit statuses" is one click from the step's row

    response = admin_client.post(
        step_url,
        {
            "name": "Request",
            "order": "1",
            "is_initial_step": "on",
            "description": "",
            **management("possible_statuses", 2),
            "possible_statuses-0-name": "Open",
            "possible_statuses-0-is_default_status": "on",
            "possible_statuses-1-name": "Granted",
            "possible_statuses-1-is_completion_status": "on",
        },
    )
    assert response.status_code == 302
    assert list(request.possible_statuses.values_list("name", flat=True)) == ["Open", "Granted"]

    response = admin_client.post(
        workflow_url(workflow),
        workflow_post(
            workflow,
            from_step=str(request.pk),
            to_step=str(done.pk),
            condition="days < 20",
        ),
    )
    assert response.status_code == 302
    transition = WorkflowTransition.objects.get(workflow=workflow)
    assert (transition.name, transition.condition) == ("Request -> Done", "days < 20")


def test_the_workflow_page_shows_the_validation_summary(admin_client, claims):
    response = admin_client.get(workflow_url(claims))
    page = response.content.decode()
    assert response.context["steps_validation"].problems == ()
    assert "No problems found" in page


@requires_graphviz
def test_the_workflow_page_shows_the_diagram_as_svg(admin_client, claims):
    page = admin_client.get(workflow_url(claims)).content.decode()
    assert b"Senior Review" in svg_in(page)


def test_validation_problems_are_listed_on_the_workflow_page(admin_client, claims):
    WorkflowStep.objects.filter(workflow=claims, name="Closed").update(is_final_step=False)
    page = admin_client.get(workflow_url(claims)).content.decode()
    panel = re.search(r'<section[^>]*id="steps-validation".*?</section>', page, re.S)
    assert panel is not None
    assert "steps-severity-error" in panel.group()
    assert "final step" in panel.group().lower()


def test_each_problem_links_to_the_page_where_it_is_fixed(admin_client, claims):
    payment = claims.steps.get(name="Payment")
    payment.possible_statuses.filter(name="Scheduled").update(is_default_status=False)
    bump_version(claims.pk)
    page = admin_client.get(workflow_url(claims)).content.decode()
    step_url = reverse("admin:django_steps_workflowstep_change", args=[payment.pk])
    row = re.search(r'<tr class="steps-problem steps-problem-error">.*?</tr>', page, re.S)
    assert row is not None
    assert "Payment" in row.group()
    assert f'href="{step_url}"' in row.group()
    assert "The diagram is drawn once the workflow has no errors" in page


def test_the_diagram_falls_back_to_mermaid_text_without_graphviz(admin_client, claims, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    response = admin_client.get(workflow_url(claims))
    page = response.content.decode()
    assert response.status_code == 200
    assert "data:image/svg+xml" not in page
    assert "Graphviz" in page
    assert "stateDiagram" in page  # the Mermaid text


@pytest.mark.parametrize("model", [Workflow, WorkflowStep, WorkflowStepStatus, WorkflowTransition])
def test_names_with_control_characters_are_refused_by_model_validation(claims, model):
    # Finding 13 of issue 14: such names broke the SVG and the YAML round trip.
    row = model.objects.first()
    row.name = "Pay\x1bment"
    with pytest.raises(ValidationError) as raised:
        row.full_clean()
    assert "control character U+001B (character 4)" in " ".join(raised.value.message_dict["name"])


def test_a_slow_graphviz_is_stopped_and_each_revision_drawn_once(
    admin_client, claims, monkeypatch, settings, tmp_path
):
    # Finding 9 of issue 14: every view ran Graphviz with no time limit (47.5 s a view
    # for 150 steps and 1,192 transitions).
    fake = tmp_path / "dot"
    fake.write_text(f"#!/bin/sh\necho run >> {tmp_path / 'runs'}\nexec /bin/sleep 60\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    settings.DJANGO_STEPS = {"DIAGRAM_TIMEOUT": 0.3}

    def runs() -> int:
        log = tmp_path / "runs"
        return len(log.read_text().splitlines()) if log.exists() else 0

    first = admin_client.get(workflow_url(claims)).content.decode()
    assert "longer than 0.3 s" in first
    assert "stateDiagram" in first  # the Mermaid text instead
    assert "data:image/svg+xml" not in first
    assert "stateDiagram" in admin_client.get(workflow_url(claims)).content.decode()
    assert runs() == 1
    bump_version(claims.pk)  # a new revision is drawn again
    admin_client.get(workflow_url(claims))
    assert runs() == 2
    instance = start(claims)
    for _ in range(2):
        assert "stateDiagram" in admin_client.get(change_url(instance)).content.decode()
    assert runs() == 3


def test_a_broken_condition_is_reported_on_its_field_with_line_and_column(admin_client, claims):
    review = claims.steps.get(name="Review")
    payment = claims.steps.get(name="Payment")
    response = admin_client.post(
        workflow_url(claims),
        workflow_post(
            claims,
            name="Broken",
            from_step=str(review.pk),
            to_step=str(payment.pk),
            condition="claim.amount >",
            priority="5",
        ),
    )
    assert response.status_code == 200
    formset = next(
        formset
        for formset in response.context["inline_admin_formsets"]
        if "transitions" in formset.formset.prefix
    ).formset
    errors = formset.forms[-1].errors
    assert "condition" in errors
    assert re.search(r"line 1, column \d+", " ".join(errors["condition"]))
    assert not WorkflowTransition.objects.filter(name="Broken").exists()


def test_transition_steps_are_limited_to_the_workflow(admin_client, claims):
    other = create_workflow({**claims_definition(), "name": "Other"})
    foreign = other.steps.get(name="Review")
    response = admin_client.get(workflow_url(claims))
    formset = response.context["inline_admin_formsets"][1].formset
    choices = {value for value, _ in formset.forms[0].fields["from_step"].choices if value}
    assert {int(str(value)) for value in choices} == set(claims.steps.values_list("pk", flat=True))
    response = admin_client.post(
        workflow_url(claims),
        workflow_post(
            claims,
            from_step=str(foreign.pk),
            to_step=str(claims.steps.get(name="Payment").pk),
        ),
    )
    assert response.status_code == 200
    assert "from_step" in response.context["inline_admin_formsets"][1].formset.forms[-1].errors


def test_two_initial_steps_in_one_submission_are_refused_on_the_form(admin_client):
    response = admin_client.post(
        WORKFLOW_ADD_URL,
        {
            "name": "Twice",
            "context_variables": "{}",
            **management("steps", 2),
            "steps-0-name": "A",
            "steps-0-order": "1",
            "steps-0-is_initial_step": "on",
            "steps-1-name": "B",
            "steps-1-order": "2",
            "steps-1-is_initial_step": "on",
        },
    )
    assert response.status_code == 200
    assert "Only one step can be the initial step" in response.content.decode()
    assert not Workflow.objects.filter(name="Twice").exists()


def test_two_default_statuses_in_one_submission_are_refused_on_the_form(admin_client, claims):
    step = WorkflowStep.objects.create(workflow=claims, name="Appeal", order=7)
    response = admin_client.post(
        reverse("admin:django_steps_workflowstep_change", args=[step.pk]),
        {
            "name": step.name,
            "order": str(step.order),
            "description": "",
            **management("possible_statuses", 2),
            "possible_statuses-0-name": "One",
            "possible_statuses-0-is_default_status": "on",
            "possible_statuses-1-name": "Two",
            "possible_statuses-1-is_default_status": "on",
        },
    )
    assert response.status_code == 200
    assert "Only one status can be the default" in response.content.decode()


def test_definition_changelists_render_and_filter(admin_client, claims):
    create_workflow({**claims_definition(), "name": "Other"})
    for name in ("workflow", "workflowstep", "workflowstepstatus", "workflowtransition"):
        response = admin_client.get(reverse(f"admin:django_steps_{name}_changelist"))
        assert response.status_code == 200, name
    response = admin_client.get(
        reverse("admin:django_steps_workflowtransition_changelist"),
        {"workflow__id__exact": claims.pk},
    )
    assert response.context["cl"].result_count == claims.transitions.count()


def test_the_workflow_list_counts_steps_transitions_and_instances(admin_client, claims):
    start(claims)
    start(claims)
    response = admin_client.get(reverse("admin:django_steps_workflow_changelist"))
    row = next(row for row in response.context["cl"].result_list if row.pk == claims.pk)
    assert (row._step_count, row._transition_count, row._instance_count) == (6, 7, 2)
    assert f"?workflow__id__exact={claims.pk}" in response.content.decode()


# --- instances: list --------------------------------------------------------------------


def changelist_queries(client: Any) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(INSTANCES_URL)
    assert response.status_code == 200
    return len(queries)


def test_the_instance_list_costs_the_same_queries_for_1_and_20_rows(
    admin_client, claims, django_assert_num_queries
):
    start(claims)
    one_row = changelist_queries(admin_client)
    for index in range(19):
        start(claims, title=f"Claim {index}")
    with django_assert_num_queries(one_row):
        response = admin_client.get(INSTANCES_URL)
    assert response.context["cl"].result_count == 20


def test_the_instance_list_links_each_object_to_its_admin_page(admin_client, claims):
    instance = start(claims, title="Broken window")
    document = Document.objects.create(title="Report")
    other = engine.start_workflow_instance("Claims", document)
    page = admin_client.get(INSTANCES_URL).content.decode()
    claim_url = reverse("admin:testapp_claim_change", args=[instance.object_id])
    document_url = reverse("admin:testapp_document_change", args=[other.object_id])
    assert f'href="{claim_url}"' in page
    assert "Broken window" in page
    assert f'href="{document_url}"' in page


def test_the_instance_list_filters_and_searches(admin_client, claims):
    first = start(claims)
    second = start(claims)
    engine.update_workflow_step_status(second, "Accepted")
    engine.set_workflow_on_hold(second)
    review = claims.steps.get(name="Review")

    def listed(**params: Any) -> set[Any]:
        response = admin_client.get(INSTANCES_URL, params)
        assert response.status_code == 200
        return {row.pk for row in response.context["cl"].result_list}

    assert listed(workflow__id__exact=claims.pk) == {first.pk, second.pk}
    assert listed(current_step=review.pk) == {second.pk}
    assert listed(lifecycle__exact="on_hold") == {second.pk}
    assert listed(q=first.object_id) == {first.pk}


def test_instances_cannot_be_added_or_edited_in_the_admin(admin_client, claims):
    instance = start(claims)
    assert admin_client.get(reverse("admin:django_steps_workflowinstance_add")).status_code == 403
    page = admin_client.get(change_url(instance)).content.decode()
    assert 'name="_save"' not in page
    response = admin_client.post(change_url(instance), {"lifecycle": "completed"})
    assert response.status_code == 403
    instance.refresh_from_db()
    assert instance.lifecycle == Lifecycle.RUNNING.value


# --- instances: actions -------------------------------------------------------------------


def run_action(client: Any, action: str, instances: list[WorkflowInstance]) -> Any:
    return client.post(
        INSTANCES_URL,
        {"action": action, "_selected_action": [str(instance.pk) for instance in instances]},
        follow=True,
    )


def test_the_hold_action_reports_successes_and_refusals_and_logs(admin_client, admin_user, claims):
    running = start(claims, title="Running")
    held = start(claims, title="Held")
    engine.set_workflow_on_hold(held)

    response = run_action(admin_client, "hold_instances", [running, held])

    texts = messages_of(response)
    assert "Put 1 instance on hold." in texts
    refusal = next(text for text in texts if "refused" in text)
    assert "already on hold" in refusal
    assert str(held) in refusal
    running.refresh_from_db()
    assert running.lifecycle == Lifecycle.ON_HOLD.value
    assert WorkflowHistory.objects.filter(instance=running, event="held").get().actor == admin_user
    entry = LogEntry.objects.get(object_id=str(running.pk))
    assert (entry.action_flag, entry.user) == (CHANGE, admin_user)
    assert not LogEntry.objects.filter(object_id=str(held.pk)).exists()


def test_resume_and_cancel_actions(admin_client, claims):
    instance = start(claims)
    engine.set_workflow_on_hold(instance)
    assert "Resumed 1 instance." in messages_of(
        run_action(admin_client, "resume_instances", [instance])
    )
    assert "Cancelled 1 instance." in messages_of(
        run_action(admin_client, "cancel_instances", [instance])
    )
    instance.refresh_from_db()
    assert instance.lifecycle == Lifecycle.CANCELLED.value
    refused = messages_of(run_action(admin_client, "cancel_instances", [instance]))
    assert any("cancelled" in text and "refused" in text for text in refused)


@pytest.mark.parametrize(
    ("action", "permission"),
    [
        ("hold_instances", "hold_workflowinstance"),
        ("resume_instances", "resume_workflowinstance"),
        ("cancel_instances", "cancel_workflowinstance"),
    ],
)
def test_each_action_needs_its_own_permission(client, claims, action, permission):
    instance = start(claims)
    engine.set_workflow_on_hold(instance) if action == "resume_instances" else None
    before = WorkflowHistory.objects.filter(instance=instance).count()
    others = {"hold_workflowinstance", "resume_workflowinstance", "cancel_workflowinstance"}
    client.force_login(staff_user("view_workflowinstance", *(others - {permission})))
    page = client.get(INSTANCES_URL)
    assert action not in {name for name, _ in page.context["action_form"].fields["action"].choices}
    run_action(client, action, [instance])
    assert WorkflowHistory.objects.filter(instance=instance).count() == before

    client.force_login(staff_user_with(permission))
    run_action(client, action, [instance])
    assert WorkflowHistory.objects.filter(instance=instance).count() == before + 1


def staff_user_with(permission: str) -> Any:
    user = get_user_model().objects.create_user(f"op-{permission}", password="pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="django_steps",
            codename__in=["view_workflowinstance", permission],
        )
    )
    return user


# --- instances: the set-status form and panels -------------------------------------------------


def set_status(client: Any, instance: WorkflowInstance, status: str, **fields: Any) -> Any:
    data = {
        "_steps_set_status": "1",
        "steps-status": status,
        "steps-context_data": fields.get("context_data", ""),
        "steps-note": fields.get("note", ""),
    }
    return client.post(change_url(instance), data, follow=True)


def test_setting_a_status_moves_the_instance_and_records_who_did_it(
    admin_client, admin_user, claims
):
    instance = start(claims)
    engine.update_workflow_step_status(instance, "Accepted")
    context = {"claim": {"amount": 50000.0, "is_high_risk": False}}

    response = set_status(
        admin_client, instance, "Approved", context_data=json.dumps(context), note="Looks fine"
    )

    text = " ".join(messages_of(response))
    assert "Moved from step “Review” to “Senior Review”" in text
    assert "Review -> Senior Review" in text
    instance.refresh_from_db()
    assert instance.current_step.name == "Senior Review"
    row = WorkflowHistory.objects.filter(instance=instance, event="step_changed").last()
    assert (row.actor, row.note, row.context_data) == (admin_user, "Looks fine", context)
    assert LogEntry.objects.filter(object_id=str(instance.pk), action_flag=CHANGE).exists()


def test_a_refused_status_change_says_why_and_changes_nothing(admin_client, claims):
    instance = start(claims)
    engine.update_workflow_step_status(instance, "Accepted")
    before = WorkflowHistory.objects.filter(instance=instance).count()

    response = set_status(admin_client, instance, "Approved", context_data="{}")

    text = " ".join(messages_of(response))
    assert "was not set" in text
    assert "claim.is_high_risk == true" in text
    instance.refresh_from_db()
    assert instance.current_step.name == "Review"
    assert WorkflowHistory.objects.filter(instance=instance).count() == before


@pytest.mark.parametrize(
    ("context_data", "error"),
    [
        ("{not json", "Not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        (json.dumps({"deep": [[[[[[[[[[[[1]]]]]]]]]]]]}), "deep"),
    ],
)
def test_bad_context_data_is_refused_on_the_form(admin_client, claims, context_data, error):
    instance = start(claims)
    response = set_status(admin_client, instance, "Accepted", context_data=context_data)
    assert response.status_code == 200
    form = response.context["steps_status_form"]
    assert error in " ".join(form.errors["context_data"])
    assert response.context["original"].pk == instance.pk  # the instance page, shown again
    instance.refresh_from_db()
    assert instance.current_step.name == "Submitted"


def test_status_choices_are_the_current_steps_statuses(admin_client, claims):
    instance = start(claims)
    form = admin_client.get(change_url(instance)).context["steps_status_form"]
    names = [value for value, _ in form.fields["status"].choices]
    assert names == ["New", "Accepted", "Withdrawn", "Waiting for documents"]
    page = admin_client.get(change_url(instance)).content.decode()
    assert "What each status does now" in page
    assert "cancels the instance" in page  # Withdrawn
    response = set_status(admin_client, instance, "Approved")
    assert "status" in response.context["steps_status_form"].errors


def viewer(*codenames: tuple[str, str]) -> Any:
    user = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    wanted = [("django_steps", "view_workflowinstance"), *codenames]
    user.user_permissions.set(
        Permission.objects.get(content_type__app_label=app, codename=codename)
        for app, codename in wanted
    )
    return user


def test_viewing_instances_shows_only_what_the_permissions_allow(client, claims):
    # Finding 7 of issue 14: a user who may only view instances saw the str() of
    # objects they may not view, and every stored context.
    instance = start(claims, title="Secret claim of Mr X")
    engine.update_workflow_step_status(
        instance, "Accepted", {"claim": {"amount": 123456.0, "is_high_risk": False}}
    )
    client.force_login(viewer())
    for url in (INSTANCES_URL, change_url(instance)):
        page = client.get(url).content.decode()
        assert "Secret claim of Mr X" not in page
        assert f"claim {instance.object_id}" in page
    page = client.get(change_url(instance)).content.decode()
    assert "123456" not in page
    assert "seeing it needs the permission to set statuses" in page


def test_viewing_objects_and_context_data_needs_their_permissions(client, claims):
    instance = start(claims, title="Secret claim of Mr X")
    engine.update_workflow_step_status(
        instance, "Accepted", {"claim": {"amount": 123456.0, "is_high_risk": False}}
    )
    client.force_login(
        viewer(("testapp", "view_claim"), ("django_steps", "set_status_workflowinstance"))
    )
    claim_url = reverse("admin:testapp_claim_change", args=[instance.object_id])
    for url in (INSTANCES_URL, change_url(instance)):
        page = client.get(url).content.decode()
        assert "Secret claim of Mr X" in page
        assert claim_url in page
    assert "123456" in client.get(change_url(instance)).content.decode()


def test_setting_a_status_needs_its_permission(client, claims):
    instance = start(claims)
    client.force_login(staff_user("view_workflowinstance"))
    response = client.get(change_url(instance))
    assert response.status_code == 200
    assert response.context["steps_status_form"] is None
    assert set_status(client, instance, "Accepted").status_code == 403
    instance.refresh_from_db()
    assert instance.current_step.name == "Submitted"


def test_the_instance_page_shows_explanation_and_history(admin_client, admin_user, claims):
    instance = start(claims)
    engine.update_workflow_step_status(instance, "Accepted", actor=admin_user, note="ok")
    engine.update_workflow_step_status(
        instance, "In progress", {"claim": {"amount": 20000.0, "is_high_risk": False}}
    )

    response = admin_client.get(change_url(instance))

    page = response.content.decode()
    explanation = response.context["steps_explain"].explanation
    # The live context, never the context stored in the history: no claim key now.
    assert explanation.context is None
    assert not explanation.allowed
    assert "Senior Review" in page
    history = response.context["steps_history"]
    assert [entry["row"].event for entry in history] == [
        "status_changed",
        "step_changed",
        "status_changed",
        "started",
    ]
    assert history[2]["row"].actor == admin_user
    assert "claim.amount &gt; 10000.0" in page or "claim.amount > 10000.0" in page


@requires_graphviz
def test_the_instance_page_shows_the_diagram_as_svg(admin_client, claims):
    instance = start(claims)
    svg = svg_in(admin_client.get(change_url(instance)).content.decode())
    assert b">(New)</text>" in svg  # the current status, under the highlighted step
    assert svg.count(b'fill="#40e0d0"') == 1


def test_the_instance_page_falls_back_to_mermaid_text_without_graphviz(
    admin_client, claims, monkeypatch
):
    instance = start(claims)
    monkeypatch.setenv("PATH", "/nonexistent")
    response = admin_client.get(change_url(instance))
    page = response.content.decode()
    assert response.status_code == 200
    assert "data:image/svg+xml" not in page
    assert "Graphviz" in page
    assert "class step_submitted active" in page  # the Mermaid text marks the current step


def test_a_finished_instance_has_no_status_form(admin_client, claims):
    instance = start(claims)
    engine.cancel_workflow_instance(instance)
    response = admin_client.get(change_url(instance))
    assert response.context["steps_status_form"] is None
    assert "finished" in response.content.decode()


def test_an_instance_of_a_broken_workflow_still_shows_its_page(admin_client, claims):
    instance = start(claims)
    WorkflowStepStatus.objects.filter(step__workflow=claims, name="New").update(
        is_default_status=False
    )
    bump_version(claims.pk)  # a queryset update sends no signal
    response = admin_client.get(change_url(instance))
    assert response.status_code == 200
    assert "The diagram is drawn once the workflow has no errors" in response.content.decode()


def test_transitions_left_unnamed_are_named_after_their_steps(admin_client, claims):
    review = claims.steps.get(name="Review")
    payment = claims.steps.get(name="Payment")
    data = workflow_post(claims, from_step=str(review.pk), to_step=str(payment.pk), priority="7")
    new = int(data["transitions-TOTAL_FORMS"])
    data["transitions-TOTAL_FORMS"] = str(new + 1)
    data |= {
        f"transitions-{new}-from_step": str(review.pk),
        f"transitions-{new}-to_step": str(payment.pk),
        f"transitions-{new}-priority": "8",
    }
    response = admin_client.post(workflow_url(claims), data)
    assert response.status_code == 302
    names = set(
        claims.transitions.filter(from_step=review, to_step=payment).values_list("name", flat=True)
    )
    assert names == {"Review -> Payment", "Review -> Payment (2)", "Review -> Payment (3)"}


def test_explain_first_shows_what_the_status_would_do_and_changes_nothing(admin_client, claims):
    instance = start(claims)
    engine.update_workflow_step_status(instance, "Accepted")
    before = WorkflowHistory.objects.filter(instance=instance).count()
    context = {"claim": {"amount": 500.0, "is_high_risk": True}}

    response = admin_client.post(
        change_url(instance),
        {
            "_steps_explain": "1",
            "steps-status": "Approved",
            "steps-context_data": json.dumps(context),
            "steps-note": "",
        },
    )

    assert response.status_code == 200
    panel = response.context["steps_explain"]
    assert panel.asked
    assert panel.explanation.taken.to_step == "Investigation"
    assert response.context["steps_status_form"]["context_data"].value() == json.dumps(context)
    assert "What setting “Approved” would do" in response.content.decode()
    assert WorkflowHistory.objects.filter(instance=instance).count() == before


def test_a_plain_view_of_the_instance_page_never_replays_the_stored_context(
    admin_client, claims, monkeypatch
):
    # Finding 3 of issue 14: every view replayed the stored context through every
    # condition (7.1 s per view with a maximal context). A plain view explains with
    # the live context only: the object, the logged-in user, no stored keys.
    instance = start(claims)
    big = {"claim": {"amount": 1.0, "is_high_risk": False}, "pad": ["x" * 40] * 1000}
    engine.update_workflow_step_status(instance, "Accepted", big)
    given: list[Any] = []
    real = panels.explain

    def spy(subject: Any, context: Any = None, **kwargs: Any) -> Any:
        given.append(context)
        return real(subject, context, **kwargs)

    monkeypatch.setattr(panels, "explain", spy)
    response = admin_client.get(change_url(instance))
    assert response.status_code == 200
    assert given == [None]  # one completion status, explained with no stored context
    assert response.context["steps_explain"].explanation.context is None


def test_the_explanation_agrees_with_the_engine_for_decimal_amounts(admin_client, claims):
    # Finding 14 of issue 14: history stores a Decimal as a string ('30000'); the
    # panel replayed it and predicted a refusal that the engine would not make.
    instance = start(claims, amount=30000)
    engine.update_workflow_step_status(
        instance, "Accepted", {"claim": {"amount": Decimal("30000"), "is_high_risk": False}}
    )
    stored = WorkflowHistory.objects.filter(instance=instance).last().context_data
    assert stored == {"claim": {"amount": "30000", "is_high_risk": False}}

    page = admin_client.get(change_url(instance))
    assert page.context["steps_explain"].explanation.context is None  # never the stored one

    typed = json.dumps({"claim": {"amount": 30000, "is_high_risk": False}})
    fields = {"steps-status": "Approved", "steps-context_data": typed, "steps-note": ""}
    asked = admin_client.post(change_url(instance), {"_steps_explain": "1", **fields})
    explanation = asked.context["steps_explain"].explanation
    assert explanation.allowed
    assert explanation.next_step == "Senior Review"
    set_status(admin_client, instance, "Approved", context_data=typed)
    instance.refresh_from_db()
    assert instance.current_step.name == explanation.next_step


def bigger_claims(extra_steps: int) -> dict[str, Any]:
    """The claims workflow with ``extra_steps`` more steps between Payment and Closed."""
    data = claims_definition()
    data["name"] = f"Claims + {extra_steps}"
    for number in range(extra_steps):
        name = f"Extra {number}"
        statuses = [{"name": "Open", "default": True}, {"name": "Done", "completion": True}]
        data["steps"].insert(-1, {"name": name, "order": 10 + number, "statuses": statuses})
        data["transitions"] += [
            {"from": "Payment", "to": name, "condition": f"n == {number}", "priority": number + 1},
            {"from": name, "to": "Closed"},
        ]
    return data


def test_the_workflow_page_costs_the_same_queries_for_any_number_of_rows(
    admin_client, claims, django_assert_num_queries
):
    admin_client.get(workflow_url(claims))  # compiles and caches the machine
    with CaptureQueriesContext(connection) as small:
        admin_client.get(workflow_url(claims))
    small_count = len(small)  # read now: the next request resets the query log
    bigger = create_workflow(bigger_claims(8))
    admin_client.get(workflow_url(bigger))
    with django_assert_num_queries(small_count):
        response = admin_client.get(workflow_url(bigger))
    assert len(response.context["inline_admin_formsets"][1].formset.forms) == 7 + 16 + 1


def test_context_data_is_checked_against_the_declared_variables(admin_client):
    workflow = create_workflow({**claims_definition(), "context_variables": {"claim": "map"}})
    instance = start(workflow)
    response = set_status(admin_client, instance, "Accepted", context_data='{"claim": 5}')
    errors = " ".join(response.context["steps_status_form"].errors["context_data"])
    assert "'claim' is declared as map" in errors
    instance.refresh_from_db()
    assert instance.current_step.name == "Submitted"


def test_a_step_that_instances_are_at_cannot_be_deleted_from_the_workflow_page(
    admin_client, claims
):
    start(claims)
    data = workflow_post(claims)
    submitted = next(key for key, value in data.items() if value == "Submitted")
    data[submitted.replace("-name", "-DELETE")] = "on"
    response = admin_client.post(workflow_url(claims), data)
    assert response.status_code == 200
    assert "protected related objects: workflow instance Claims for" in response.content.decode()
    assert claims.steps.filter(name="Submitted").exists()


def test_the_transition_page_offers_only_its_workflows_steps(admin_client, claims):
    other = create_workflow({**claims_definition(), "name": "Other"})
    transition = claims.transitions.first()
    response = admin_client.get(
        reverse("admin:django_steps_workflowtransition_change", args=[transition.pk])
    )
    field = response.context["adminform"].form.fields["to_step"]
    assert set(field.queryset) == set(claims.steps.all())
    assert not set(field.queryset) & set(other.steps.all())


def test_the_instance_list_shows_filter_counts(admin_client, claims):
    if not hasattr(admin.ModelAdmin, "show_facets"):
        pytest.skip("filter counts (facets) arrived in Django 5.0")
    start(claims)
    response = admin_client.get(INSTANCES_URL, {"_facets": "True"})
    assert response.status_code == 200
    assert re.search(r"Claims: Submitted\s*\(1\)", response.content.decode())


def test_a_changed_transition_of_a_step_deleted_in_the_same_submission_is_refused(
    admin_client, claims
):
    data = workflow_post(claims)
    investigation = claims.steps.get(name="Investigation")
    step_row = next(
        key
        for key, value in data.items()
        if key.startswith("steps-") and key.endswith("-id") and value == str(investigation.pk)
    )
    data[step_row.replace("-id", "-DELETE")] = "on"
    transition_row = next(
        key
        for key, value in data.items()
        if key.endswith("-from_step") and value == str(investigation.pk)
    )
    data[transition_row.replace("-from_step", "-priority")] = "99"

    response = admin_client.post(workflow_url(claims), data)

    assert response.status_code == 200
    assert "“Investigation” is being deleted" in response.content.decode()
    assert claims.steps.filter(name="Investigation").exists()


ORDERS_FOR_ADMIN: dict[str, Any] = {
    "name": "Admin orders",
    "steps": [
        {
            "name": "Review",
            "order": 1,
            "initial": True,
            "statuses": [
                {"name": "Pending", "default": True},
                {"name": "Approved", "completion": True},
                {"name": "Sent back", "completion": True},
            ],
        },
        {
            "name": "Rework",
            "order": 2,
            "final": True,
            "statuses": [{"name": "Open", "default": True, "completion": True}],
        },
        {
            "name": "Senior",
            "order": 3,
            "final": True,
            "statuses": [{"name": "Open", "default": True, "completion": True}],
        },
        {
            "name": "Ordered",
            "order": 4,
            "final": True,
            "statuses": [{"name": "Done", "default": True, "completion": True}],
        },
    ],
    "transitions": [
        {"from": "Review", "to": "Rework", "condition": 'status == "Sent back"', "priority": 30},
        {
            "from": "Review",
            "to": "Senior",
            "condition": 'object.amount > 10000 && actor.username == "admin"',
            "priority": 20,
        },
        {"from": "Review", "to": "Ordered"},
    ],
}


def test_the_panel_explains_each_completion_status_with_the_live_object_and_user(
    admin_client, admin_user
):
    workflow = create_workflow(ORDERS_FOR_ADMIN)
    order = PurchaseOrder.objects.create(amount=25000)
    instance = engine.start_workflow_instance(workflow.name, order)

    response = admin_client.get(change_url(instance))

    panel = response.context["steps_explain"]
    assert [(e.status, e.next_step) for e in panel.explanations] == [
        ("Approved", "Senior"),
        ("Sent back", "Rework"),
    ]


def test_the_set_status_form_builds_the_context_from_the_object_and_the_user(
    admin_client, admin_user
):
    workflow = create_workflow(ORDERS_FOR_ADMIN)
    instance = engine.start_workflow_instance(
        workflow.name, PurchaseOrder.objects.create(amount=25000)
    )

    admin_client.post(
        change_url(instance),
        {
            "steps-status": "Approved",
            "steps-context_data": "",
            "steps-note": "",
            "_steps_set_status": "1",
        },
    )

    instance.refresh_from_db()
    assert instance.current_step.name == "Senior"


def test_the_set_status_form_refuses_a_reserved_key(admin_client, admin_user):
    workflow = create_workflow(ORDERS_FOR_ADMIN)
    instance = engine.start_workflow_instance(workflow.name, PurchaseOrder.objects.create(amount=1))

    response = admin_client.post(
        change_url(instance),
        {
            "steps-status": "Approved",
            "steps-context_data": '{"object": {"amount": 99999}}',
            "steps-note": "",
            "_steps_set_status": "1",
        },
    )

    assert "context_data cannot have the key &#x27;object&#x27;" in response.content.decode()
    instance.refresh_from_db()
    assert instance.current_step.name == "Review"
