"""Build workflow definitions in the database for tests, from export-format dicts."""

from __future__ import annotations

import copy
from typing import Any

from django.contrib.auth.models import Group

from django_steps.machines.definition import (
    STATUS_FIELDS,
    STEP_FIELDS,
    TRANSITION_FIELDS,
    DefinitionField,
)
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
    """A fresh copy of the claims workflow of the documentation's examples."""
    return copy.deepcopy(CLAIMS)


def values_from_data(fields: tuple[DefinitionField, ...], data: dict[str, Any]) -> dict[str, Any]:
    """The model field values of an export-format item, defaults for the keys left out."""
    return {f.model_field: data.get(f.key, f.default) for f in fields}


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
            assignee_group=(
                Group.objects.get_or_create(name=step_data["assignee_group"])[0]
                if step_data.get("assignee_group")
                else None
            ),
            **values_from_data(STEP_FIELDS, step_data),
        )
        steps[step.name] = step
        for status_data in step_data.get("statuses", []):
            WorkflowStepStatus.objects.create(
                step=step, name=status_data["name"], **values_from_data(STATUS_FIELDS, status_data)
            )
    for transition_data in data.get("transitions", []):
        WorkflowTransition.objects.create(
            workflow=workflow,
            name=transition_data.get("name", ""),
            from_step=steps[transition_data["from"]],
            to_step=steps[transition_data["to"]],
            **values_from_data(TRANSITION_FIELDS, transition_data),
        )
    workflow.refresh_from_db()
    return workflow
