"""When an instance is due: the deadline rules of steps with ``due_after``, with no database.

A step with a ``due_after`` duration and a ``timeout_status`` gives every instance
entering it a due time; :func:`next_deadline` says how an operation's
:class:`~django_steps.machines.runner.Outcome` moves it:

- entering a step (a start, a transition) sets it to the time of entry plus the
  step's ``due_after``, or clears it when the step has none;
- finishing (completed or cancelled) clears it;
- a hold stops the clock (``held_at`` records when) and a resume moves the due time
  on by the time held;
- the timeout itself (``timed_out``) spends it: the instance is not due again at
  that step, unless the timeout took it into a step with a deadline of its own;
- any other change of status within the step leaves it alone.

The engine stores the result on the instance (``due_at``, ``held_at``); the testing
helpers keep it on their plain state. Both share these rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from .definition import WorkflowDefinition
from .lifecycle import ChangeKind, Lifecycle
from .runner import MachineState, Outcome

__all__ = ["Deadline", "next_deadline"]


@dataclass(frozen=True)
class Deadline:
    """An instance's due time, and since when it is on hold (the clock stopped)."""

    due_at: datetime | None = None
    held_at: datetime | None = None

    def is_due(self, now: datetime) -> bool:
        """Whether the due time has come at ``now`` (never while on hold)."""
        return self.held_at is None and self.due_at is not None and self.due_at <= now


def next_deadline(
    definition: WorkflowDefinition,
    state: MachineState,
    outcome: Outcome,
    deadline: Deadline,
    now: datetime,
    *,
    timed_out: bool = False,
) -> Deadline:
    """The deadline after ``outcome`` took an instance to ``state`` at ``now``.

    ``deadline`` is the one it had before; ``timed_out`` tells that the outcome is the
    step's timeout firing. An outcome without changes keeps ``deadline``.
    """
    if not outcome.changed:
        return deadline
    if state.lifecycle.is_finished:
        return Deadline()
    held_at = now if state.lifecycle is Lifecycle.ON_HOLD else None
    kinds = outcome.kinds
    if ChangeKind.STARTED in kinds or ChangeKind.STEP_CHANGED in kinds:
        step = definition.get_step(state.step or "")
        due_at = now + step.due_after if step.due_after and step.timeout_status else None
        return Deadline(due_at, held_at)
    if timed_out:
        return Deadline(None, held_at)
    if ChangeKind.HELD in kinds:
        return Deadline(deadline.due_at, now)
    if ChangeKind.RESUMED in kinds:
        due_at = deadline.due_at
        if due_at is not None and deadline.held_at is not None:
            due_at += max(now - deadline.held_at, timedelta(0))
        return Deadline(due_at, None)
    return deadline
