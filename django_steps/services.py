"""The documented services: start, update status, hold, resume, cancel, look up.

Each function keeps the signature of the product description and returns
``True``/``False`` (or the instance/``None``). A refusal is logged on the
``django_steps`` logger with its reason and changes nothing; call the strict
counterparts in :mod:`django_steps.engine` to get the reason as an exception.
Unusable ``context_data`` (a value conditions cannot use) is a programming error and
raises :class:`~django_steps.exceptions.ContextError`, a ``TypeError``.

State-changing functions accept keyword-only ``actor`` (a user, recorded in the
history, or :data:`SYSTEM` for background code acting for the system: recorded as
``by_system``) and ``note``. Each has an async counterpart prefixed with ``a``.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import sync_to_async
from django.db import models

from . import engine
from .exceptions import ContextError, StepsError
from .machines.actors import SYSTEM
from .models import WorkflowInstance

logger = logging.getLogger("django_steps")


def start_workflow_instance(
    workflow_name: str, content_object: models.Model, *, actor: Any = None, note: str = ""
) -> WorkflowInstance | None:
    """Starts a new workflow instance for a given content object and workflow name.

    Returns the new instance at the workflow's initial step with its default status,
    or the object's existing unfinished instance of that workflow. Returns ``None``
    when the workflow does not exist or its definition cannot be used.
    """
    try:
        return engine.start_workflow_instance(workflow_name, content_object, actor=actor, note=note)
    except StepsError as error:
        logger.warning("Workflow %r not started for %r: %s", workflow_name, content_object, error)
        return None


def update_workflow_step_status(
    workflow_instance: WorkflowInstance,
    new_status_name: str,
    context_data: dict | None = None,
    *,
    actor: Any = None,
    note: str = "",
) -> bool:
    """Updates the current step's status for a given workflow instance.

    A completion status on a non-final step takes the first outgoing transition (by
    priority) whose CEL condition is true for ``context_data``. Returns ``True`` when
    the status was set (or already was), ``False`` when the update was refused:
    unknown status, finished instance, on hold, no condition passed, or a condition
    that could not be evaluated. ``workflow_instance`` is updated in place.
    """
    return _attempt(
        "update the status of",
        engine.update_workflow_step_status,
        workflow_instance,
        new_status_name,
        context_data,
        actor=actor,
        note=note,
    )


def cancel_workflow_instance(
    workflow_instance: WorkflowInstance, *, actor: Any = None, note: str = ""
) -> bool:
    """Attempts to cancel a workflow instance.

    Returns ``False`` when it is finished or its current step has no cancellation
    status.
    """
    return _attempt(
        "cancel", engine.cancel_workflow_instance, workflow_instance, actor=actor, note=note
    )


def set_workflow_on_hold(
    workflow_instance: WorkflowInstance, *, actor: Any = None, note: str = ""
) -> bool:
    """Attempts to put a workflow instance on hold.

    Returns ``False`` when it is not running or its current step has no on-hold status.
    """
    return _attempt(
        "put on hold", engine.set_workflow_on_hold, workflow_instance, actor=actor, note=note
    )


def resume_workflow_instance(
    workflow_instance: WorkflowInstance, *, actor: Any = None, note: str = ""
) -> bool:
    """Attempts to resume a workflow instance from an on-hold state.

    Returns ``False`` when it is not on hold.
    """
    return _attempt(
        "resume", engine.resume_workflow_instance, workflow_instance, actor=actor, note=note
    )


def get_workflow_instance_for_object(
    content_object: models.Model, workflow_name: str | None = None
) -> WorkflowInstance | None:
    """Retrieves a workflow instance associated with a given content object.

    The unfinished instance when there is one, else the most recently started one;
    ``None`` when the object has none. One query.
    """
    return engine.get_workflow_instance_for_object(content_object, workflow_name)


def _attempt(
    action: str, function: Any, instance: WorkflowInstance, *args: Any, **kwargs: Any
) -> bool:
    try:
        function(instance, *args, **kwargs)
    except ContextError:
        raise
    except StepsError as error:
        logger.info("Refused to %s workflow instance %s: %s", action, instance.pk, error)
        return False
    return True


astart_workflow_instance = sync_to_async(start_workflow_instance)
aupdate_workflow_step_status = sync_to_async(update_workflow_step_status)
acancel_workflow_instance = sync_to_async(cancel_workflow_instance)
aset_workflow_on_hold = sync_to_async(set_workflow_on_hold)
aresume_workflow_instance = sync_to_async(resume_workflow_instance)
aget_workflow_instance_for_object = sync_to_async(get_workflow_instance_for_object)

__all__ = [
    "SYSTEM",
    "acancel_workflow_instance",
    "aget_workflow_instance_for_object",
    "aresume_workflow_instance",
    "aset_workflow_on_hold",
    "astart_workflow_instance",
    "aupdate_workflow_step_status",
    "cancel_workflow_instance",
    "get_workflow_instance_for_object",
    "resume_workflow_instance",
    "set_workflow_on_hold",
    "start_workflow_instance",
    "update_workflow_step_status",
]
