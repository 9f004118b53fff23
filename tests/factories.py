"""Build workflow definitions in the database for tests, from export-format dicts."""

from __future__ import annotations

import copy
from typing import Any

from django.contrib.auth.models import Group

from django_steps.models import Workflow, WorkflowStep, WorkflowStepStatus, WorkflowTransition

CLAIMS: dict[str, Any] = {
    "name": "Claims",
    "description": "Insurance claims, from submission to payment.",
    "steps": [
        {
            "name": "Submitted",
            "order": 1,
            "initial": True,
            "statuses": [
                {"name": "New", "default": True},
                {"name": "Accepted", "completion": True},
                {"name": "Withdrawn", "cancellation": True},
                {"name": "Waiting for documents", "on_hold": True},
            ],
        },
        {
            "name": "Review",
            "order": 2,
            "statuses": [
                {"name": "Pending", "default": True},
                {"name": "In progress"},
                {"name": "Approved", "completion": True},
                {"name": "Rejected", "cancellation": True},
                {"name": "On hold", "on_hold": True},
            ],
        },
        {
            "name": "Investigation",
            "order": 3,
            "statuses": [
                {"name": "Open", "default": True},
                {"name": "Cleared", "completion": True},
                {"name": "Fraud", "cancellation": True},
            ],
        },
        {
            "name": "Senior Review",
            "order": 4,
            "statuses": [
                {"name": "Pending", "default": True},
                {"name": "Approved", "completion": True},
                {"name": "Rejected", "cancellation": True},
            ],
        },
        {
            "name": "Payment",
            "order": 5,
            "statuses": [
                {"name": "Scheduled", "default": True},
                {"name": "Paid", "completion": True},
            ],
        },
        {
            "name": "Closed",
            "order": 6,
            "final": True,
            "statuses": [{"name": "Closed", "default": True, "completion": True}],
        },
    ],
    "transitions": [
        {"from": "Submitted", "to": "Review"},
        {
            "from": "Review",
            "to": "Investigation",
            "condition": "claim.is_high_risk == true",
            "priority": 30,
        },
        {
            "from": "Review",
            "to": "Senior Review",
            "condition": "claim.amount > 10000.0",
            "priority": 20,
        },
        {"from": "Review", "to": "Payment", "condition": "", "priority": 0},
        {"from": "Investigation", "to": "Payment"},
        {"from": "Senior Review", "to": "Payment"},
        {"from": "Payment", "to": "Closed"},
    ],
}


def claims_definition() -> dict[str, Any]:
    """A fresh copy of the claims workflow of the product description."""
    return copy.deepcopy(CLAIMS)


def create_workflow(data: dict[str, Any]) -> Workflow:
    """Create a workflow with its steps, statuses and transitions from plain data."""
    workflow = Workflow.objects.create(
        name=data["name"],
        description=data.get("description", ""),
        context_variables=data.get("context_variables", {}),
    )
    steps = {}
    for step_data in data["steps"]:
        step = WorkflowStep.objects.create(
            workflow=workflow,
            name=step_data["name"],
            order=step_data.get("order", 0),
            is_initial_step=step_data.get("initial", False),
            is_final_step=step_data.get("final", False),
            assignee_group=(
                Group.objects.get_or_create(name=step_data["assignee_group"])[0]
                if step_data.get("assignee_group")
                else None
            ),
        )
        steps[step.name] = step
        for status_data in step_data.get("statuses", []):
            WorkflowStepStatus.objects.create(
                step=step,
                name=status_data["name"],
                is_default_status=status_data.get("default", False),
                is_completion_status=status_data.get("completion", False),
                is_cancellation_status=status_data.get("cancellation", False),
                is_on_hold_status=status_data.get("on_hold", False),
                permission=status_data.get("permission", ""),
                actor_condition=status_data.get("actor_condition", ""),
            )
    for transition_data in data.get("transitions", []):
        WorkflowTransition.objects.create(
            workflow=workflow,
            name=transition_data.get("name", ""),
            from_step=steps[transition_data["from"]],
            to_step=steps[transition_data["to"]],
            condition=transition_data.get("condition", ""),
            priority=transition_data.get("priority", 0),
        )
    workflow.refresh_from_db()
    return workflow
