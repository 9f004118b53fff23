"""The documented services: start, update status, hold, resume, cancel, look up.

Each function has the signature the documentation gives and returns
``True``/``False`` (or the instance/``None``). A refusal changes nothing; its reason
is left on the instance as ``workflow_instance.refusal`` (the
:class:`~django_steps.exceptions.StepsError`, ``None`` again after the next successful
change) and logged on the ``django.steps`` logger, which Django's default logging
shows on the console when ``DEBUG`` is on. Call the strict counterparts in
:mod:`django_steps.engine` to get the reason as an exception.
Unusable ``context_data`` (a value conditions cannot use) is a programming error and
raises :class:`~django_steps.exceptions.ContextError`, a ``TypeError``; so is an object
that is not a model instance (:class:`~django_steps.exceptions.InvalidObject`, a
``TypeError``).

State-changing functions accept keyword-only ``actor`` (a user, recorded in the
history, or :data:`SYSTEM` for background code acting for the system: recorded as
``by_system``) and ``note``. A status with a ``permission`` or ``actor_condition`` is
refused (``False``, the refusal a :class:`~django_steps.exceptions.PermissionDenied`)
when the actor fails the rule or no actor is given; ``SYSTEM`` passes every rule.
Each has an async counterpart prefixed with ``a``; the instances the async ones
return have their workflow, step, statuses, content type and object loaded, so async
code can read them without a query.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import sync_to_async
from django.db import models

from . import engine
from .actors import SYSTEM
from .exceptions import ContextError, InvalidObject, StepsError
from .models import WorkflowInstance

# A child of Django's own logger: its default configuration prints INFO records of
# "django.*" on the console when DEBUG is on, and nowhere in production.
logger = logging.getLogger("django.steps")


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
    except InvalidObject:
        raise
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
    that could not be evaluated; ``workflow_instance.refusal`` then holds the reason.
    ``workflow_instance`` is updated in place. Conditions also see ``object``,
    ``status``, ``actor``, ``instance`` and ``now``; ``context_data`` using one of
    these as a key raises :class:`~django_steps.exceptions.ContextError`.
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


def get_available_statuses(workflow_instance: WorkflowInstance, actor: Any) -> list[str]:
    """The names of the current step's statuses ``actor`` may set now, in step order.

    Lifecycle rules included: nothing for a finished instance, only a cancellation
    status while on hold, never the current status; each status's ``permission`` and
    ``actor_condition`` are checked as the services check them (``None`` as actor
    passes no rule, ``SYSTEM`` every rule). Transition conditions are not tried, so a
    completion status listed may still be refused when no transition passes.
    """
    return engine.available_statuses(workflow_instance, actor)


def assign_workflow_instance(
    workflow_instance: WorkflowInstance, user: Any, *, actor: Any = None, note: str = ""
) -> bool:
    """Assign an unfinished instance to ``user``; ``None`` unassigns.

    Returns ``False`` (with ``workflow_instance.refusal``) for a finished instance or
    when ``actor`` may not make this assignment: a user may claim an unassigned
    instance at a step of their group (or a step with no group) and unassign
    themselves; other assignments need ``django_steps.assign_workflowinstance``. With
    no actor or ``SYSTEM``, any assignment is made. Records an ``assigned`` history
    row and sends ``workflow_assigned``.
    """
    return _attempt(
        "assign", engine.assign_workflow_instance, workflow_instance, user, actor=actor, note=note
    )


def _attempt(
    action: str, function: Any, instance: WorkflowInstance, *args: Any, **kwargs: Any
) -> bool:
    try:
        function(instance, *args, **kwargs)
    except ContextError:
        raise
    except StepsError as error:
        instance.refusal = error
        logger.info("Refused to %s workflow instance %s: %s", action, instance.pk, error)
        return False
    instance.refusal = None
    return True


def _for_async_code(function: Any) -> Any:
    """``function`` for async code: run in a thread, its instance returned fully loaded."""

    def call(*args: Any, **kwargs: Any) -> Any:
        instance = function(*args, **kwargs)
        if isinstance(instance, WorkflowInstance):
            engine.load_instance_relations(instance)
        return instance

    call.__name__, call.__doc__ = function.__name__, function.__doc__
    return sync_to_async(call)


astart_workflow_instance = _for_async_code(start_workflow_instance)
aupdate_workflow_step_status = sync_to_async(update_workflow_step_status)
acancel_workflow_instance = sync_to_async(cancel_workflow_instance)
aset_workflow_on_hold = sync_to_async(set_workflow_on_hold)
aresume_workflow_instance = sync_to_async(resume_workflow_instance)
aget_workflow_instance_for_object = _for_async_code(get_workflow_instance_for_object)
aget_available_statuses = sync_to_async(get_available_statuses)
aassign_workflow_instance = sync_to_async(assign_workflow_instance)

__all__ = [
    "SYSTEM",
    "aassign_workflow_instance",
    "acancel_workflow_instance",
    "aget_available_statuses",
    "aget_workflow_instance_for_object",
    "aresume_workflow_instance",
    "aset_workflow_on_hold",
    "assign_workflow_instance",
    "astart_workflow_instance",
    "aupdate_workflow_step_status",
    "cancel_workflow_instance",
    "get_available_statuses",
    "get_workflow_instance_for_object",
    "resume_workflow_instance",
    "set_workflow_on_hold",
    "start_workflow_instance",
    "update_workflow_step_status",
]
