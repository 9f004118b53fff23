"""Strict workflow operations: each one raises a typed error when it is refused.

These are the functions behind :mod:`django_steps.services`: same arguments, but a
refusal raises a :class:`~django_steps.exceptions.StepsError` subclass that says why
(and, for transitions, lists every condition tried with its result), and successful
changes return the :class:`~django_steps.machines.Outcome`.

Every change follows one path: open a transaction, lock the instance row, check,
change, save the state and record history, send signals, return. The statements are
written once per connection by :mod:`django_steps._engine.statements`. A refused change
writes nothing; an exception from a signal receiver rolls the whole change back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import DEFAULT_DB_ALIAS, IntegrityError, models, router, transaction
from django.utils import timezone

from . import signals
from ._engine.cache import CachedWorkflow, cached_workflow, workflow_cache
from ._engine.statements import STATE_FIELDS, statements_for
from .cel import convert_context
from .conf import current_limits, steps_settings
from .exceptions import InstanceError, InstanceNotFound, OperationNotAllowed, WorkflowNotFound
from .machines.actors import SYSTEM
from .machines.deadlines import Deadline, next_deadline
from .machines.lifecycle import ChangeKind, Lifecycle
from .machines.runner import MachineState, Outcome, WorkflowRunner
from .models import Workflow, WorkflowInstance

SIGNALS = {
    ChangeKind.STARTED: signals.workflow_started,
    ChangeKind.STATUS_CHANGED: signals.workflow_status_changed,
    ChangeKind.STEP_CHANGED: signals.workflow_step_changed,
    ChangeKind.HELD: signals.workflow_held,
    ChangeKind.RESUMED: signals.workflow_resumed,
    ChangeKind.CANCELLED: signals.workflow_cancelled,
    ChangeKind.COMPLETED: signals.workflow_completed,
}


_RunnerCall = Callable[[WorkflowRunner, MachineState], Outcome]

# How many times a start inserts before giving up, when each insert conflicts with an
# instance another process started and finished before this one could return it.
START_ATTEMPTS = 3


def start_workflow_instance(
    workflow_name: str, content_object: models.Model, *, actor: Any = None, note: str = ""
) -> WorkflowInstance:
    """Start ``workflow_name`` for ``content_object``, or return its unfinished instance.

    Raises :class:`~django_steps.exceptions.WorkflowNotFound` for an unknown name and
    :class:`~django_steps.exceptions.DefinitionError` for a workflow that cannot be
    compiled. Concurrent calls for one object create exactly one instance.
    """
    if content_object.pk is None:
        raise InstanceError(
            f"Cannot start workflow {workflow_name!r} for an unsaved "
            f"{type(content_object).__name__}; save it first."
        )
    try:
        workflow = Workflow.objects.get(name=workflow_name)
    except Workflow.DoesNotExist:
        raise WorkflowNotFound(workflow_name) from None
    compiled = cached_workflow(workflow)
    content_type = ContentType.objects.get_for_model(content_object)
    object_id = str(content_object.pk)
    unfinished = WorkflowInstance.objects.unfinished().filter(
        workflow=workflow, content_type=content_type, object_id=object_id
    )
    state, outcome = compiled.runner.start()
    with transaction.atomic():
        conflict: IntegrityError | None = None
        for _attempt in range(START_ATTEMPTS):
            existing = unfinished.first()
            if existing is not None:
                return existing
            now = timezone.now()
            instance = WorkflowInstance(
                workflow=workflow,
                content_type=content_type,
                object_id=object_id,
                started_at=now,
            )
            _copy_state(instance, compiled, state, now)
            _move_deadline(instance, compiled, state, outcome, now)
            try:
                with transaction.atomic():
                    instance.save(force_insert=True)
            except IntegrityError as error:
                # Another process started one first and the constraint kept it unique:
                # the next turn returns it, or starts again if it has finished meanwhile.
                conflict = error
                continue
            break
        else:
            assert conflict is not None
            raise conflict
        recording = _Recording(compiled, outcome, None, actor, note)
        connection, statements = statements_for(instance._state.db or DEFAULT_DB_ALIAS)
        with connection.cursor() as cursor:
            statements.insert_history(cursor, recording.history_rows(instance, timezone.now()))
        recording.send_signals(instance)
    return instance


def update_workflow_step_status(
    workflow_instance: WorkflowInstance,
    new_status_name: str,
    context_data: Mapping[str, Any] | None = None,
    *,
    actor: Any = None,
    note: str = "",
) -> Outcome:
    """Set the current step's status; completing a step takes the first passing transition.

    Raises :class:`~django_steps.exceptions.InvalidStatus`,
    :class:`~django_steps.exceptions.InstanceFinished`,
    :class:`~django_steps.exceptions.OperationNotAllowed` (on hold),
    :class:`~django_steps.exceptions.NoTransitionAvailable` or
    :class:`~django_steps.exceptions.TransitionConditionError` (fail closed), and
    :class:`~django_steps.exceptions.ContextError` for unusable ``context_data``.
    """
    return _change(
        workflow_instance,
        lambda runner, state: runner.set_status(state, new_status_name, context_data),
        context_data=context_data,
        actor=actor,
        note=note,
    )


def cancel_workflow_instance(
    workflow_instance: WorkflowInstance, *, actor: Any = None, note: str = ""
) -> Outcome:
    """Cancel an unfinished instance with its step's cancellation status."""
    return _change(workflow_instance, WorkflowRunner.cancel, actor=actor, note=note)


def set_workflow_on_hold(
    workflow_instance: WorkflowInstance, *, actor: Any = None, note: str = ""
) -> Outcome:
    """Put a running instance on hold with its step's on-hold status."""
    return _change(workflow_instance, WorkflowRunner.hold, actor=actor, note=note)


def resume_workflow_instance(
    workflow_instance: WorkflowInstance, *, actor: Any = None, note: str = ""
) -> Outcome:
    """Return an on-hold instance to the status it had before it was held."""
    return _change(workflow_instance, WorkflowRunner.resume, actor=actor, note=note)


def time_out_workflow_instance(
    workflow_instance: WorkflowInstance,
    *,
    now: datetime | None = None,
    actor: Any = SYSTEM,
    note: str = "",
) -> Outcome:
    """Give a due instance its step's timeout status, as the timer sweep does.

    Under the row lock, the instance must still be running and due at ``now``
    (default: the current time), else
    :class:`~django_steps.exceptions.OperationNotAllowed` (``operation="time_out"``)
    and nothing is written. :data:`~django_steps.signals.workflow_due` is sent, then
    the status is set as :func:`update_workflow_step_status` would (so the same
    errors can be raised), recorded at ``now`` with ``timed_out`` history rows, by
    ``actor`` (:data:`~django_steps.services.SYSTEM` by default) with ``note``
    (default: "Timed out", with the due time). When the instance already has the
    timeout status, nothing changes but its due time is cleared (the outcome has no
    changes).
    """
    return _change(
        workflow_instance, WorkflowRunner.time_out, actor=actor, note=note, now=now, timing_out=True
    )


def get_workflow_instance_for_object(
    content_object: models.Model, workflow_name: str | None = None
) -> WorkflowInstance | None:
    """The object's unfinished instance, else its most recently started one (one query)."""
    content_type = ContentType.objects.get_for_model(content_object)
    using = router.db_for_read(WorkflowInstance)
    connection, statements = statements_for(using)
    arguments = {"content_type": content_type.pk, "object_id": str(content_object.pk)}
    if workflow_name is None:
        lookup = statements.lookup
    else:
        lookup = statements.lookup_by_name
        arguments["workflow_name"] = workflow_name
    with connection.cursor() as cursor:
        return lookup.fetch(cursor, arguments)


# --- the one write path ------------------------------------------------------------


def _change(
    instance: WorkflowInstance,
    operation: _RunnerCall,
    *,
    context_data: Mapping[str, Any] | None = None,
    actor: Any = None,
    note: str = "",
    now: datetime | None = None,
    timing_out: bool = False,
) -> Outcome:
    using = router.db_for_write(WorkflowInstance, instance=instance)
    with transaction.atomic(using=using):
        connection, statements = statements_for(using)
        with connection.cursor() as cursor:
            found = statements.lock.fetch(cursor, instance.pk)
            if found is None:
                raise InstanceNotFound(
                    f"Workflow instance {instance.pk} no longer exists.", instance=instance
                )
            locked, version, created_at = found
            compiled = workflow_cache.current(locked.workflow_id, version, created_at)
            if compiled is None:  # first use, or the definition changed: compile it
                compiled = cached_workflow(Workflow.objects.using(using).get(pk=locked.workflow_id))
            locked.workflow = compiled.workflow_row(using)
            state = compiled.state_of(locked)
            if timing_out:
                now = now or timezone.now()
                note = note or _timeout_note(locked)
                if not _announce_due(locked, compiled, state, now, instance):
                    operation = _no_change
            try:
                outcome = operation(compiled.runner, state)
            except InstanceError as error:
                error.instance = instance
                raise
            if outcome.changed:
                now = now or timezone.now()
                _copy_state(locked, compiled, state, now)
                _move_deadline(locked, compiled, state, outcome, now, timed_out=timing_out)
                locked.updated_at = now
                recording = _Recording(compiled, outcome, context_data, actor, note, timing_out)
                statements.write(cursor, locked, recording.history_rows(locked, now))
                recording.send_signals(locked)
            else:
                _attach_rows(locked, compiled, state)  # so the refresh below loads nothing
                if timing_out:  # already at the timeout status, or none: the deadline is spent
                    locked.due_at = None
                    WorkflowInstance.objects.using(using).filter(pk=locked.pk).update(due_at=None)
    _refresh_in_place(instance, locked)  # even unchanged: the caller's object may be stale
    return outcome


def _attach_rows(instance: WorkflowInstance, compiled: CachedWorkflow, state: MachineState) -> None:
    """Point the instance's step and status relations at the cached rows (no query)."""
    instance.current_step = compiled.step_row(state.step)
    instance.current_step_status = compiled.status_row(state.step, state.status)
    instance.status_before_hold = compiled.status_row(state.step, state.status_before_hold)


def _copy_state(
    instance: WorkflowInstance, compiled: CachedWorkflow, state: MachineState, now: Any
) -> None:
    _attach_rows(instance, compiled, state)
    lifecycle = Lifecycle(state.lifecycle)
    if lifecycle is Lifecycle.COMPLETED and instance.completed_at is None:
        instance.completed_at = now
    if lifecycle is Lifecycle.CANCELLED and instance.cancelled_at is None:
        instance.cancelled_at = now
    instance.lifecycle = lifecycle.value


def _move_deadline(
    instance: WorkflowInstance,
    compiled: CachedWorkflow,
    state: MachineState,
    outcome: Outcome,
    now: datetime,
    *,
    timed_out: bool = False,
) -> None:
    deadline = next_deadline(
        compiled.definition,
        state,
        outcome,
        Deadline(instance.due_at, instance.held_at),
        now,
        timed_out=timed_out,
    )
    instance.due_at, instance.held_at = deadline.due_at, deadline.held_at


def _announce_due(
    locked: WorkflowInstance,
    compiled: CachedWorkflow,
    state: MachineState,
    now: datetime,
    instance: WorkflowInstance,
) -> bool:
    """Refuse unless ``locked`` is due at ``now``; then send ``workflow_due``.

    ``False`` (and no signal) when its step has no timeout status any more: the
    deadline was removed from the definition after the instance entered the step.
    """
    if locked.lifecycle != Lifecycle.RUNNING.value or not Deadline(
        locked.due_at, locked.held_at
    ).is_due(now):
        raise OperationNotAllowed(
            f"Workflow {compiled.definition.name!r}: the instance at step {state.step!r} is not "
            f"due at {now.isoformat()} (due at: {locked.due_at}, lifecycle: {locked.lifecycle}).",
            instance=instance,
            operation="time_out",
        )
    if compiled.runner.step_of(state).timeout_status is None:
        return False
    signals.workflow_due.send(
        sender=WorkflowInstance,
        instance=locked,
        step=compiled.step_row(state.step),
        status=compiled.status_row(state.step, state.status),
        due_at=locked.due_at,
        now=now,
    )
    return True


def _no_change(runner: WorkflowRunner, state: MachineState) -> Outcome:
    return Outcome()


def _timeout_note(instance: WorkflowInstance) -> str:
    due_at = instance.due_at.isoformat() if instance.due_at is not None else "?"
    return f"Timed out (due at {due_at})."


def _refresh_in_place(target: WorkflowInstance, source: WorkflowInstance) -> None:
    """Update the caller's Python object with the saved state (no query)."""
    target.workflow = source.workflow
    for name in STATE_FIELDS:
        setattr(target, name, getattr(source, name))


@dataclass(frozen=True)
class _Recording:
    """An outcome to persist for an instance, with what the caller passed along."""

    compiled: CachedWorkflow
    outcome: Outcome
    context_data: Mapping[str, Any] | None
    actor: Any
    note: str
    timed_out: bool = False

    def history_rows(self, instance: WorkflowInstance, now: Any) -> list[dict[str, Any]]:
        """One history row per change, as column values by attribute name."""
        compiled, outcome = self.compiled, self.outcome
        stored_context = dict(self.context_data) if self.context_data is not None else None
        actor_id = getattr(self.actor, "pk", None)
        rows = []
        for change in outcome.changes:
            from_step = compiled.step_row(change.from_step)
            from_status = compiled.status_row(change.from_step, change.from_status)
            to_step = compiled.step_row(change.to_step)
            to_status = compiled.status_row(change.to_step, change.to_status)
            rows.append(
                {
                    "instance_id": instance.pk,
                    "event": change.kind.value,
                    "timestamp": now,
                    "from_step_id": from_step.pk if from_step is not None else None,
                    "from_step_name": change.from_step or "",
                    "from_status_id": from_status.pk if from_status is not None else None,
                    "from_status_name": change.from_status or "",
                    "to_step_id": to_step.pk if to_step is not None else None,
                    "to_step_name": change.to_step or "",
                    "to_status_id": to_status.pk if to_status is not None else None,
                    "to_status_name": change.to_status or "",
                    "context_data": stored_context,
                    "conditions": (
                        [evaluation.as_dict() for evaluation in outcome.evaluations]
                        if change.kind is ChangeKind.STEP_CHANGED
                        else []
                    ),
                    "actor_id": actor_id,
                    "by_system": self.actor is SYSTEM,
                    "timed_out": self.timed_out,
                    "note": self.note,
                }
            )
        return rows

    def send_signals(self, instance: WorkflowInstance) -> None:
        """One signal per change, inside the transaction (a receiver's error undoes it)."""
        compiled = self.compiled
        for change in self.outcome.changes:
            SIGNALS[change.kind].send(
                sender=WorkflowInstance,
                instance=instance,
                from_step=compiled.step_row(change.from_step),
                from_status=compiled.status_row(change.from_step, change.from_status),
                to_step=compiled.step_row(change.to_step),
                to_status=compiled.status_row(change.to_step, change.to_status),
                context_data=self.context_data,
                actor=self.actor,
                note=self.note,
            )


def check_context(context_data: Mapping[str, Any] | None) -> None:
    """Raise :class:`~django_steps.exceptions.ContextError` if conditions cannot use it."""
    convert_context(context_data, backend=steps_settings.CEL_BACKEND, limits=current_limits())
