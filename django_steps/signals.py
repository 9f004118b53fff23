"""Signals sent by the engine after each change is saved, inside its transaction.

Every signal is sent with ``sender=WorkflowInstance`` and the same keyword arguments:

``instance``
    the :class:`~django_steps.models.WorkflowInstance`, already updated.
``from_step``, ``from_status``
    the :class:`~django_steps.models.WorkflowStep` and
    :class:`~django_steps.models.WorkflowStepStatus` before the change (``None`` for
    ``workflow_started``).
``to_step``, ``to_status``
    the step and status after the change.
``context_data``
    the dict given to the service (``None`` when none was given).
``actor``
    the user given to the service, or ``None``.
``note``
    the note given to the service (``""`` when none).

``workflow_assigned`` is sent with ``sender=WorkflowInstance``, ``instance``,
``assignee`` (the user now assigned, ``None`` when unassigned), ``previous`` (the
user assigned before, or ``None``), ``actor`` and ``note``.

Receivers run inside the change's transaction: a receiver that raises rolls the
whole change back, and the service refuses it.

:data:`workflow_due` is the exception to the shared arguments: the timer sweep
sends it, with ``sender=WorkflowInstance``, when an instance is due, just before it
sets the step's timeout status, inside that change's transaction:

``instance``
    the :class:`~django_steps.models.WorkflowInstance`, still at its step and status.
``step``, ``status``
    its current :class:`~django_steps.models.WorkflowStep` and
    :class:`~django_steps.models.WorkflowStepStatus`.
``due_at``
    the due time it reached.
``now``
    the time the sweep runs at (its ``now=`` argument, or the current time).

It is sent once for each timeout that is applied; a timeout that fails (and is
rolled back) sends it again on the next attempt, so send e-mail from
``transaction.on_commit``. Receivers see ``actor=SYSTEM`` in the signals of the
change that follows. Treat the step and status objects as
read-only: they are shared by the process's cache of compiled workflows.
"""

from __future__ import annotations

from django.dispatch import Signal

__all__ = [
    "workflow_assigned",
    "workflow_cancelled",
    "workflow_completed",
    "workflow_due",
    "workflow_held",
    "workflow_resumed",
    "workflow_started",
    "workflow_status_changed",
    "workflow_step_changed",
]

#: An instance was created at its workflow's initial step.
workflow_started = Signal()
#: The status of the current step changed (the step did not).
workflow_status_changed = Signal()
#: The instance moved to another step through a transition.
workflow_step_changed = Signal()
#: The instance was put on hold.
workflow_held = Signal()
#: The instance was resumed from hold.
workflow_resumed = Signal()
#: The instance was cancelled.
workflow_cancelled = Signal()
#: The instance completed its workflow.
workflow_completed = Signal()
#: The instance is due at its step; its timeout status is set next (see above).
workflow_due = Signal()
#: The instance was assigned to a user, or unassigned (see ``assign_workflow_instance``).
workflow_assigned = Signal()
