"""Where an instance is in its life, and the kinds of history event: a leaf module.

It imports nothing, so :mod:`django_steps.models` can use these enums without
loading the machine compiler or CEL.
"""

from __future__ import annotations

import enum

__all__ = ["ChangeKind", "Lifecycle"]


class Lifecycle(str, enum.Enum):
    """Where a workflow instance is in its life."""

    RUNNING = "running"
    ON_HOLD = "on_hold"
    COMPLETED = "completed"
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()

    @property
    def is_finished(self) -> bool:
        return self in (Lifecycle.COMPLETED, Lifecycle.CANCELLED)


class ChangeKind(str, enum.Enum):
    """The kinds of history event."""

    STARTED = "started"
    STATUS_CHANGED = "status_changed"
    STEP_CHANGED = "step_changed"
    HELD = "held"
    RESUMED = "resumed"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    ASSIGNED = "assigned"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()
