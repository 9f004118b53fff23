"""The admin in headless Chromium: build a workflow through the forms, operate instances."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from django_steps import engine
from django_steps.models import Workflow, WorkflowInstance, WorkflowTransition
from tests.factories import claims_definition, create_workflow
from tests.programs import requires_graphviz
from tests.testapp.models import Claim

from .conftest import log_in, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

STATUSES = {
    "Request": [("Open", "default"), ("Submitted", "completion"), ("Withdrawn", "cancellation")],
    "Review": [
        ("Pending", "default"),
        ("Approved", "completion"),
        ("Rejected", "cancellation"),
        ("Waiting", "on_hold"),
    ],
    "Done": [("Closed", "default"), ("Archived", "completion")],
}


def add_statuses(page: Any, statuses: list[tuple[str, str]]) -> None:
    """Fill the step page's status rows, adding rows with the inline's “Add another” link."""
    for index, (name, flag) in enumerate(statuses):
        if page.locator(f"#id_possible_statuses-{index}-name").count() == 0:
            page.click("#possible_statuses-group .add-row a")
        page.fill(f"#id_possible_statuses-{index}-name", name)
        page.check(f"#id_possible_statuses-{index}-is_{flag}_status")


@requires_graphviz  # the diagram image
def test_build_a_workflow_through_the_forms(page, live_server, administrator):
    log_in(page, live_server, administrator)

    # The workflow and its steps, on one page.
    page.goto(f"{live_server.url}/admin/django_steps/workflow/add/")
    page.fill("#id_name", "Leave")
    page.fill("#id_description", "Leave requests")
    for index, (name, flag) in enumerate(
        [("Request", "initial"), ("Review", None), ("Done", "final")]
    ):
        page.fill(f"#id_steps-{index}-name", name)
        page.fill(f"#id_steps-{index}-order", str(index + 1))
        if flag:
            page.check(f"#id_steps-{index}-is_{flag}_step")
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")
    workflow = Workflow.objects.get(name="Leave")
    # Without statuses the workflow cannot run yet: the summary says why.
    assert page.locator("#steps-validation .steps-severity-error").count() > 0

    # Each step's statuses are one click away from its row.
    for step_name, statuses in STATUSES.items():
        row = page.locator("#steps-group tr.has_original").filter(
            has=page.locator(f"input[value='{step_name}']")
        )
        row.locator("a.steps-edit-statuses").click()
        page.wait_for_selector("#possible_statuses-group")
        add_statuses(page, statuses)
        if step_name == "Review":
            screenshot(page, "admin-step", docs=True)
        page.click("input[name=_save]")
        page.wait_for_selector(".messagelist .success")
        page.goto(f"{live_server.url}/admin/django_steps/workflow/{workflow.pk}/change/")

    # Transitions, edited on the workflow page: a broken condition is reported on its
    # field with its line and column, and nothing is saved.
    steps = {step.name: str(step.pk) for step in workflow.steps.all()}
    page.select_option("#id_transitions-0-from_step", steps["Request"])
    page.select_option("#id_transitions-0-to_step", steps["Review"])
    page.fill("#id_transitions-0-condition", "request.days >")
    page.click("input[name=_continue]")
    error = page.locator("#transitions-group td.field-condition ul.errorlist")
    error.wait_for()
    assert re.search(r"line 1, column \d+", error.inner_text())
    assert not WorkflowTransition.objects.filter(workflow=workflow).exists()

    page.fill("#id_transitions-0-condition", "request.days < 20")
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")
    page.click("#transitions-group .add-row a")
    page.select_option("#id_transitions-1-from_step", steps["Review"])
    page.select_option("#id_transitions-1-to_step", steps["Done"])
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")

    assert list(
        WorkflowTransition.objects.filter(workflow=workflow).values_list("name", "condition")
    ) == [("Request -> Review", "request.days < 20"), ("Review -> Done", "")]
    assert "No problems found" in page.inner_text("#steps-validation")
    diagram = page.locator("#steps-diagram img")
    assert diagram.evaluate("img => img.complete && img.naturalWidth > 0")
    screenshot(page, "admin-workflow")

    # The workflow just built runs.
    instance = engine.start_workflow_instance("Leave", Claim.objects.create(title="Holiday"))
    engine.update_workflow_step_status(instance, "Submitted", {"request": {"days": 5}})
    assert instance.current_step.name == "Review"


@requires_graphviz  # the diagram image
def test_operate_instances_with_the_actions_and_the_status_form(page, live_server, administrator):
    claims = create_workflow(claims_definition())
    first = engine.start_workflow_instance("Claims", Claim.objects.create(title="Windscreen"))
    second = engine.start_workflow_instance("Claims", Claim.objects.create(title="Flooded cellar"))
    engine.set_workflow_on_hold(second)
    moving = engine.start_workflow_instance("Claims", Claim.objects.create(title="Stolen bike"))
    engine.update_workflow_step_status(moving, "Accepted")
    done = engine.start_workflow_instance("Claims", Claim.objects.create(title="Broken window"))
    engine.cancel_workflow_instance(done)
    log_in(page, live_server, administrator)

    # Actions on the list: one instance is held, the other was already on hold.
    page.goto(f"{live_server.url}/admin/django_steps/workflowinstance/")
    for instance in (first, second):
        page.check(f"input.action-select[value='{instance.pk}']")
    page.select_option("select[name=action]", "hold_instances")
    page.click("button[name=index]")
    assert "Put 1 instance on hold." in page.inner_text(".messagelist .success")
    refused = page.inner_text(".messagelist .error")
    assert "1 instance was refused" in refused
    assert "already on hold" in refused
    screenshot(page, "admin-instances", docs=True)
    page.check(f"input.action-select[value='{first.pk}']")
    page.select_option("select[name=action]", "resume_instances")
    page.click("button[name=index]")
    assert "Resumed 1 instance." in page.inner_text(".messagelist .success")

    # The status form on the instance's page.
    page.goto(f"{live_server.url}/admin/django_steps/workflowinstance/{first.pk}/change/")
    page.select_option("#id_steps-status", "Accepted")
    page.fill("#id_steps-note", "Documents complete")
    page.click("input[name=_steps_set_status]")
    assert "to “Review”" in page.inner_text(".messagelist .success")

    # Unusable context is refused on the form, next to the field.
    page.select_option("#id_steps-status", "Approved")
    page.fill("#id_steps-context_data", '{"claim": {"amount": 5000,}}')
    page.click("input[name=_steps_set_status]")
    assert "Not valid JSON" in page.inner_text("#steps-set-status .field-context_data .errorlist")

    # A refused transition says why, condition by condition.
    page.fill("#id_steps-context_data", "{}")
    page.click("input[name=_steps_set_status]")
    assert "claim.is_high_risk == true" in page.inner_text(".messagelist .error")

    context = {"claim": {"amount": 25000.0, "is_high_risk": False}}
    page.select_option("#id_steps-status", "Approved")
    page.fill("#id_steps-context_data", json.dumps(context))
    page.click("input[name=_steps_set_status]")
    message = page.inner_text(".messagelist .success")
    assert "Moved from step “Review” to “Senior Review”" in message
    first = WorkflowInstance.objects.get(pk=first.pk)
    assert first.current_step.name == "Senior Review"

    assert page.locator("#steps-diagram img").evaluate(
        "img => img.complete && img.naturalWidth > 0"
    )
    assert "Senior Review -> Payment" in page.inner_text("#steps-explain .steps-table")
    history = page.inner_text("#steps-history")
    assert "Documents complete" in history
    assert administrator.get_username() in history
    screenshot(page, "admin-instance", docs=True)

    page.goto(f"{live_server.url}/admin/django_steps/workflow/{claims.pk}/change/")
    assert "No problems found" in page.inner_text("#steps-validation")
    screenshot(page, "admin-workflow-claims", docs=True)


def test_dark_mode_uses_the_admin_colours(dark_page, live_server, administrator):
    workflow = create_workflow(claims_definition())
    instance = engine.start_workflow_instance("Claims", Claim.objects.create(title="Hail"))
    engine.update_workflow_step_status(
        instance, "Accepted", {"claim": {"amount": 100.0}}, actor=administrator
    )
    log_in(dark_page, live_server, administrator)
    dark_page.goto(f"{live_server.url}/admin/django_steps/workflowinstance/{instance.pk}/change/")

    colours = dark_page.evaluate(
        """() => {
            const style = (selector) => getComputedStyle(document.querySelector(selector));
            const root = getComputedStyle(document.documentElement);
            return {
                body: style("body").backgroundColor,
                darkened: root.getPropertyValue("--darkened-bg").trim(),
                block: style("#steps-history .steps-code-block").backgroundColor,
                text: style("#steps-history td").color,
                bodyFg: style("body").color,
            };
        }"""
    )
    assert colours["body"] != "rgb(255, 255, 255)"  # the admin's dark theme is on
    assert colours["block"] != "rgb(255, 255, 255)"  # and the panels follow it
    assert colours["text"] == colours["bodyFg"]
    screenshot(dark_page, "admin-instance-dark", docs=True)
    dark_page.goto(f"{live_server.url}/admin/django_steps/workflow/{workflow.pk}/change/")
    screenshot(dark_page, "admin-workflow-dark")
