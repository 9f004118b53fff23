"""A workflow with deadlines for the timer tests, in the export format."""

from __future__ import annotations

import copy
from typing import Any

from django_steps.machines.definition import WorkflowDefinition
from django_steps.models import Workflow
from django_steps.transfer import import_definitions

ORDERS: dict[str, Any] = {
    "name": "Orders",
    "steps": [
        {
            "name": "Approval",
            "order": 1,
            "initial": True,
            "due_after": 3600,
            "timeout_status": "Escalated",
            "statuses": [
                {"name": "Waiting", "default": True},
                {"name": "Escalated"},
                {"name": "Approved", "completion": True},
                {"name": "Withdrawn", "cancellation": True},
                {"name": "Parked", "on_hold": True},
            ],
        },
        {
            "name": "Fulfilment",
            "order": 2,
            "due_after": 7200,
            "timeout_status": "Shipped",
            "statuses": [
                {"name": "Open", "default": True},
                {"name": "Shipped", "completion": True},
            ],
        },
        {
            "name": "Done",
            "order": 3,
            "final": True,
            "statuses": [{"name": "Done", "default": True, "completion": True}],
        },
    ],
    "transitions": [
        {"from": "Approval", "to": "Fulfilment"},
        {"from": "Fulfilment", "to": "Done"},
    ],
}


def orders_definition() -> dict[str, Any]:
    """A fresh copy of the Orders workflow: one hour to approve, two to ship."""
    return copy.deepcopy(ORDERS)


def create_orders(data: dict[str, Any] | None = None) -> Workflow:
    """Store the Orders workflow (or ``data``) through the importer."""
    definition = WorkflowDefinition.from_dict(data or orders_definition())
    import_definitions([definition])
    return Workflow.objects.get(name=definition.name)
