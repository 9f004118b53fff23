"""The workflow the concurrency workload drives: it loops, holds, cancels and finishes."""

from __future__ import annotations

import copy
from typing import Any

LOOP_NAME = "Reliability loop"

# Completing Check goes on to Archive (final) when x > 90, back to Intake when x > 3,
# and is refused (no transition) otherwise or when x is missing (fail closed). So an
# instance lives for a few dozen operations, and objects get several instances.
LOOP: dict[str, Any] = {
    "name": LOOP_NAME,
    "steps": [
        {
            "name": "Intake",
            "order": 1,
            "initial": True,
            "statuses": [
                {"name": "Open", "default": True},
                {"name": "Working"},
                {"name": "Done", "completion": True},
                {"name": "Paused", "on_hold": True},
                {"name": "Dropped", "cancellation": True},
            ],
        },
        {
            "name": "Check",
            "order": 2,
            "statuses": [
                {"name": "Pending", "default": True},
                {"name": "Working"},
                {"name": "Passed", "completion": True},
                {"name": "Paused", "on_hold": True},
                {"name": "Dropped", "cancellation": True},
            ],
        },
        {
            "name": "Archive",
            "order": 3,
            "final": True,
            "statuses": [{"name": "Archived", "default": True, "completion": True}],
        },
    ],
    "transitions": [
        {"from": "Intake", "to": "Check"},
        {"from": "Check", "to": "Archive", "condition": "x > 90", "priority": 10},
        {"from": "Check", "to": "Intake", "condition": "x > 3", "priority": 5},
    ],
}

#: The transition the ``edit`` workers save over and over (its description only).
LOOP_EDITED_TRANSITION = "Check -> Intake"

#: Every status name of the loop workflow (some belong to several steps).
STATUS_NAMES = sorted({s["name"] for step in LOOP["steps"] for s in step["statuses"]})


def loop_definition() -> dict[str, Any]:
    """A fresh copy of the loop workflow in the export format."""
    return copy.deepcopy(LOOP)
