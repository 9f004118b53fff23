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

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import DatabaseError, IntegrityError, connections, models, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created
from django.db.models.signals import post_delete
from django.utils import timezone

from . import signals
from ._engine.cache import CachedWorkflow, cached_workflow, workflow_cache
from ._engine.context import surroundings_for
from ._engine.statements import STATE_FIELDS, statements_for
from .actors import SYSTEM, is_system
from .cel import convert_context
from .conf import current_limits, steps_settings
from .exceptions import (
    DefinitionError,
    InstanceError,
    InstanceFinished,
    InstanceNotFound,
    InvalidObject,
    OperationNotAllowed,
    PermissionDenied,
    WorkflowNotFound,
    WrongModel,
)
from .machines.context import Surroundings, check_reserved_keys
from .machines.deadlines import Deadline, next_deadline
from .machines.explain import RuleCheck
from .machines.explain import rule_checks as explained_rule_checks
from .machines.lifecycle import ChangeKind, Lifecycle
from .machines.runner import MachineState, Outcome, WorkflowRunner
from .models import Workflow, WorkflowHistory, WorkflowInstance

__all__ = [
    "SYSTEM",
    "assign_workflow_instance",
    "available_statuses",
    "cancel_workflow_instance",
    "check_context",
    "get_workflow_instance_for_object",
    "resume_workflow_instance",
    "rule_checks",
    "set_workflow_on_hold",
    "start_workflow_instance",
    "status_options",
    "update_workflow_step_status",
]

SIGNALS = {
    ChangeKind.STARTED: signals.workflow_started,
    ChangeKind.STATUS_CHANGED: signals.workflow_status_changed,
    ChangeKind.STEP_CHANGED: signals.workflow_step_changed,
    ChangeKind.HELD: signals.workflow_held,
    ChangeKind.RESUMED: signals.workflow_resumed,
    ChangeKind.CANCELLED: signals.workflow_cancelled,
    ChangeKind.COMPLETED: signals.workflow_completed,
    ChangeKind.ASSIGNED: signals.workflow_assigned,
}


logger = logging.getLogger("django_steps")

_RunnerCall = Callable[[WorkflowRunner, MachineState, Surroundings | None], Outcome]

# How many times a start inserts before giving up, when each insert conflicts with an
# instance another process started and finished before this one could return it.
START_ATTEMPTS = 3


class _StartConflict(Exception):
    """The insert of a start conflicted with an instance another process started."""

    def __init__(self, error: IntegrityError):
        super().__init__(str(error))
        self.error = error


def start_workflow_instance(
    workflow_name: str, content_object: models.Model, *, actor: Any = None, note: str = ""
) -> WorkflowInstance:
    """Start ``workflow_name`` for ``content_object``, or return its unfinished instance.

    Raises :class:`~django_steps.exceptions.WorkflowNotFound` for an unknown name,
    :class:`~django_steps.exceptions.WrongModel` when the workflow is for another model
    (``Workflow.content_type``), :class:`~django_steps.exceptions.DefinitionError` for a
    workflow that cannot be compiled and :class:`~django_steps.exceptions.InvalidObject`
    (a ``TypeError``) when ``content_object`` is not a model instance. Concurrent calls
    for one object create exactly one instance and all return it, under ``READ
    COMMITTED`` and, outside a caller's transaction, ``REPEATABLE READ`` too.

    The instance is written to ``router.db_for_write(WorkflowInstance,
    instance=content_object)`` (without a router: the object's database), in one
    transaction on that database, which is also where the workflow is read from.
    """
    _require_model(content_object, f"start workflow {workflow_name!r}")
    if content_object.pk is None:
        raise InstanceError(
            f"Cannot start workflow {workflow_name!r} for an unsaved "
            f"{type(content_object).__name__}; save it first."
        )
    using = router.db_for_write(WorkflowInstance, instance=content_object)
    try:
        workflow = Workflow.objects.using(using).get(name=workflow_name)
    except Workflow.DoesNotExist:
        raise WorkflowNotFound(workflow_name) from None
    compiled = cached_workflow(workflow)
    content_type = ContentType.objects.db_manager(using).get_for_model(content_object)
    if workflow.content_type_id is not None and workflow.content_type_id != content_type.pk:
        expected = ContentType.objects.db_manager(using).get_for_id(workflow.content_type_id)
        raise WrongModel(
            f"Workflow {workflow_name!r} is for {expected.app_label}.{expected.model} objects; "
            f"it cannot be started for a {content_object._meta.label} "
            f"({content_object.pk}). Start a workflow made for that model.",
            workflow=workflow_name,
            model=content_object._meta.label,
        )
    conflict: IntegrityError | None = None
    for _attempt in range(START_ATTEMPTS):
        try:
            return _start_once(using, workflow, compiled, content_type, content_object, actor, note)
        except _StartConflict as error:
            # Another process started one first and the constraint kept it unique. The
            # next attempt, in a new transaction (so with a new snapshot under
            # REPEATABLE READ), returns it, or starts again if it has finished meanwhile.
            conflict = error.error
    assert conflict is not None
    raise conflict


def _start_once(
    using: str,
    workflow: Workflow,
    compiled: CachedWorkflow,
    content_type: ContentType,
    content_object: models.Model,
    actor: Any,
    note: str,
) -> WorkflowInstance:
    object_id = str(content_object.pk)
    with transaction.atomic(using=using):
        existing = (
            WorkflowInstance.objects.using(using)
            .unfinished()
            .filter(workflow=workflow, content_type=content_type, object_id=object_id)
            .first()
        )
        if existing is not None:
            existing.workflow = workflow
            _attach_loaded(existing, compiled, content_type, content_object)
            return existing
        state, outcome = compiled.runner.start()
        now = timezone.now()
        instance = WorkflowInstance(
            workflow=workflow, content_type=content_type, object_id=object_id, started_at=now
        )
        _attach_object(instance, content_type, content_object)
        _copy_state(instance, compiled, state, now)
        _move_deadline(instance, compiled, state, outcome, now)
        try:
            with transaction.atomic(using=using):
                instance.save(force_insert=True, using=using)
        except IntegrityError as error:
            raise _StartConflict(error) from error
        recording = _Recording(compiled, outcome, None, actor, note)
        connection, statements = statements_for(using)
        with connection.cursor() as cursor:
            statements.insert_history(cursor, recording.history_rows(instance, timezone.now()))
        recording.send_signals(instance)
    watch_deletions(type(content_object))
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
    :class:`~django_steps.exceptions.ContextError` for unusable ``context_data`` (or
    one using a reserved name, such as ``object``, as a key).

    Conditions see ``context_data`` and ``object``, ``status``, ``actor``,
    ``instance`` and ``now`` (see :mod:`django_steps.machines.context`); the object
    is loaded only if a condition reads it, and not at all when
    ``workflow_instance.content_object`` is already loaded.
    """
    return _change(
        workflow_instance,
        lambda runner, state, surroundings: runner.set_status(
            state, new_status_name, context_data, surroundings
        ),
        context_data=context_data,
        actor=actor,
        note=note,
    )


def cancel_workflow_instance(
    workflow_instance: WorkflowInstance, *, actor: Any = None, note: str = ""
) -> Outcome:
    """Cancel an unfinished instance with its step's cancellation status."""
    return _change(
        workflow_instance,
        lambda runner, state, surroundings: runner.cancel(state, surroundings),
        actor=actor,
        note=note,
    )


def set_workflow_on_hold(
    workflow_instance: WorkflowInstance, *, actor: Any = None, note: str = ""
) -> Outcome:
    """Put a running instance on hold with its step's on-hold status."""
    return _change(
        workflow_instance,
        lambda runner, state, surroundings: runner.hold(state, surroundings),
        actor=actor,
        note=note,
    )


def resume_workflow_instance(
    workflow_instance: WorkflowInstance, *, actor: Any = None, note: str = ""
) -> Outcome:
    """Return an on-hold instance to the status it had before it was held."""
    return _change(
        workflow_instance,
        lambda runner, state, surroundings: runner.resume(state, surroundings),
        actor=actor,
        note=note,
    )


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
        workflow_instance,
        lambda runner, state, surroundings: runner.time_out(state, surroundings),
        actor=actor,
        note=note,
        now=now,
        timing_out=True,
    )


def get_workflow_instance_for_object(
    content_object: models.Model, workflow_name: str | None = None
) -> WorkflowInstance | None:
    """The object's unfinished instance, else its most recently started one (one query).

    The instance comes with its workflow, content type and object, and, once the
    workflow is compiled in this process, its step and statuses: reading them costs
    no query. Raises :class:`~django_steps.exceptions.InvalidObject` (a ``TypeError``)
    when ``content_object`` is not a model instance.
    """
    _require_model(content_object, "look up the workflow instance of")
    using = router.db_for_read(WorkflowInstance, instance=content_object)
    content_type = ContentType.objects.db_manager(using).get_for_model(content_object)
    connection, statements = statements_for(using)
    arguments = {"content_type": content_type.pk, "object_id": str(content_object.pk)}
    if workflow_name is None:
        lookup = statements.lookup
    else:
        lookup = statements.lookup_by_name
        arguments["workflow_name"] = workflow_name
    with connection.cursor() as cursor:
        instance = lookup.fetch(cursor, arguments)
    if instance is not None:
        workflow = instance.workflow
        compiled = workflow_cache.current(workflow.pk, workflow.revision, using)
        _attach_loaded(instance, compiled, content_type, content_object)
    return instance


def load_instance_relations(instance: WorkflowInstance) -> WorkflowInstance:
    """Make ``instance``'s workflow, step and statuses readable without a query.

    What the async services do before handing an instance to async code, where a
    query on attribute access raises ``SynchronousOnlyOperation``. Compiles the
    workflow on a cache miss (its queries run here, in sync code); returns ``instance``.
    An instance of a workflow that cannot be compiled is returned as it is.
    """
    if not WorkflowInstance._meta.get_field("current_step").is_cached(instance):
        try:
            compiled = cached_workflow(instance.workflow)
            state = compiled.state_of(instance)
        except DefinitionError:
            return instance
        _attach_rows(instance, compiled, state)
    return instance


def _attach_loaded(
    instance: WorkflowInstance,
    compiled: CachedWorkflow | None,
    content_type: ContentType,
    content_object: models.Model,
) -> None:
    """Attach what the caller and the cache already hold to a loaded instance (no query)."""
    _attach_object(instance, content_type, content_object)
    if compiled is not None and compiled.workflow_id == instance.workflow_id:
        try:
            state = compiled.state_of(instance)
        except DefinitionError:
            return  # left to load on access, as the ORM would
        _attach_rows(instance, compiled, state)


def _attach_object(
    instance: WorkflowInstance, content_type: ContentType, content_object: models.Model
) -> None:
    """Point the instance's content type and object at the caller's (no query)."""
    instance.content_type = content_type
    WorkflowInstance._meta.get_field("content_object").set_cached_value(instance, content_object)


def _require_model(content_object: Any, action: str) -> None:
    if not isinstance(content_object, models.Model):
        raise InvalidObject(
            f"Cannot {action} {content_object!r}: a workflow instance attaches to a model "
            f"instance, not a {type(content_object).__name__}.",
            value=content_object,
        )


# --- objects deleted ---------------------------------------------------------------

# Models whose deletions finish their objects' instances: those of the content types
# that have instances (read once per process and database, when its first connection
# opens) and those this process starts instances for. Only they get a ``post_delete``
# receiver: one for every model would cost every delete of every model (Django cannot
# fast-delete a model with delete receivers).
_watched: set[type[models.Model]] = set()
_watched_lock = threading.Lock()
_seeded: set[str] = set()


def watch_deletions(model: type[models.Model]) -> None:
    """Finish the instances of ``model``'s objects when they are deleted (idempotent).

    Its proxy models are watched too: Django sends a proxy object's delete signals
    with the proxy as sender, and its instances are stored under the concrete model.
    """
    concrete = model._meta.concrete_model or model
    if concrete in _watched:
        return
    with _watched_lock:
        if concrete in _watched:
            return
        senders = [concrete] + [
            other
            for other in apps.get_models()
            if other is not concrete and other._meta.concrete_model is concrete
        ]
        for sender in senders:
            post_delete.connect(
                object_deleted,
                sender=sender,
                weak=False,
                dispatch_uid=f"django_steps.object_deleted.{sender._meta.label_lower}",
            )
        _watched.add(concrete)


def object_deleted(sender: Any, instance: models.Model, using: str, **kwargs: Any) -> None:
    """Finish the instances of a deleted object, in the transaction of the delete.

    ``DJANGO_STEPS["ON_OBJECT_DELETE"]`` says how: ``"cancel"`` (the default) cancels
    each unfinished instance with its step's cancellation status and a history row
    noting the deletion (an instance that cannot be cancelled, its step having no
    cancellation status or its definition being unusable, is deleted instead, with a
    warning); ``"delete"`` deletes every instance of the object, and
    its history. Either way a new object that reuses the primary key starts afresh.
    """
    where = router.db_for_write(WorkflowInstance, instance=instance)
    content_type = ContentType.objects.db_manager(where).get_for_model(instance)
    attached = WorkflowInstance.objects.using(where).filter(
        content_type=content_type, object_id=str(instance.pk)
    )
    if steps_settings.ON_OBJECT_DELETE == "delete":
        attached.delete()
        return
    note = f"{content_type.model} {instance.pk} was deleted"
    for unfinished in attached.unfinished().order_by("pk"):
        try:
            _change(unfinished, lambda runner, state, _: runner.cancel(state), note=note)
        except (InstanceFinished, InstanceNotFound):
            pass  # finished or deleted meanwhile: nothing left to do
        except (OperationNotAllowed, DefinitionError) as error:
            logger.warning(
                "Deleted workflow instance %s, as %s and it cannot be cancelled: %s",
                unfinished.pk,
                note,
                error,
            )
            unfinished.delete()


def _seed_watched(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """Watch the models with instances on ``connection``'s database (once per process)."""
    alias = connection.alias
    if alias in _seeded or alias not in connections.settings or connection.in_atomic_block:
        return  # done, a connection of its own (PostgreSQL's "no database" one), or busy
    try:
        ids = WorkflowInstance.objects.using(alias).values("content_type_id")
        content_types = list(ContentType.objects.db_manager(alias).filter(pk__in=ids))
    except DatabaseError:
        return  # not migrated yet: the next connection tries again
    _seeded.add(alias)
    for content_type in content_types:
        model = content_type.model_class()
        if model is not None:
            watch_deletions(model)


connection_created.connect(_seed_watched, dispatch_uid="django_steps.watch_deletions")


def status_options(workflow_instance: WorkflowInstance, actor: Any) -> list[tuple[str, str]]:
    """Each status of the instance's current step, in step order, with why ``actor`` cannot
    set it now (``""``: it can). See :func:`available_statuses`."""
    compiled = cached_workflow(workflow_instance.workflow)
    state = compiled.state_of(workflow_instance)
    surroundings = surroundings_for(workflow_instance, actor=actor)
    return [
        (status.name, reason)
        for status, reason in compiled.runner.status_options(state, surroundings)
    ]


def rule_checks(workflow_instance: WorkflowInstance, actor: Any) -> tuple[RuleCheck, ...]:
    """For each status of the current step, whether ``actor`` passes its rule and why not."""
    compiled = cached_workflow(workflow_instance.workflow)
    state = compiled.state_of(workflow_instance)
    return explained_rule_checks(
        compiled.runner, state, surroundings_for(workflow_instance, actor=actor)
    )


def available_statuses(workflow_instance: WorkflowInstance, actor: Any) -> list[str]:
    """The names of the current step's statuses ``actor`` may set now, in step order.

    Lifecycle rules apply (nothing when finished, only a cancellation status while on
    hold, not the current status) and each status's ``permission`` and
    ``actor_condition``; transition conditions are not tried. Reads the instance as
    it is in memory; costs no query when the workflow is cached and the rules read
    neither the actor's groups nor the object (``has_perm`` may query, as Django's
    backends cache permissions per user object).
    """
    return [name for name, reason in status_options(workflow_instance, actor) if not reason]


def assign_workflow_instance(
    workflow_instance: WorkflowInstance, user: Any, *, actor: Any = None, note: str = ""
) -> WorkflowInstance:
    """Assign an unfinished instance to ``user`` (``None`` unassigns); one history row
    (``assigned``) and the ``workflow_assigned`` signal, in one transaction.

    With no actor or ``SYSTEM`` anyone may be assigned. A user acting may assign
    themselves (claim) when the instance is unassigned or theirs and they belong to
    the step's ``assignee_group`` (or it has none), and may unassign themselves;
    anything else needs the permission ``django_steps.assign_workflowinstance``, else
    :class:`~django_steps.exceptions.PermissionDenied`. Assigning the user already
    assigned changes nothing. Raises
    :class:`~django_steps.exceptions.InstanceFinished` for a finished instance.
    """
    using = router.db_for_write(WorkflowInstance, instance=workflow_instance)
    with transaction.atomic(using=using):
        locked = (
            WorkflowInstance.objects.using(using)
            .select_for_update(of=("self",))
            .select_related("current_step", "current_step_status")
            .filter(pk=workflow_instance.pk)
            .first()
        )
        if locked is None:
            raise InstanceNotFound(
                f"Workflow instance {workflow_instance.pk} no longer exists.",
                instance=workflow_instance,
            )
        step = locked.current_step
        if locked.is_finished:
            raise InstanceFinished(
                f"Workflow instance {locked.pk} is {locked.lifecycle}; a finished instance "
                "cannot be assigned.",
                instance=workflow_instance,
            )
        user_id = getattr(user, "pk", None)
        previous_id = locked.assignee_id
        if user_id != previous_id:
            _check_may_assign(locked, step, user, actor, workflow_instance)
            locked.assignee_id = user_id
            now = timezone.now()
            locked.updated_at = now
            locked.save(update_fields=["assignee", "updated_at"])
            step_name = step.name if step is not None else ""
            status_name = locked.current_step_status.name if locked.current_step_status else ""
            WorkflowHistory.objects.using(using).create(
                instance=locked,
                event=ChangeKind.ASSIGNED.value,
                timestamp=now,
                from_step=step,
                from_step_name=step_name,
                from_status=locked.current_step_status,
                from_status_name=status_name,
                to_step=step,
                to_step_name=step_name,
                to_status=locked.current_step_status,
                to_status_name=status_name,
                actor_id=getattr(actor, "pk", None),
                by_system=is_system(actor),
                assignee_id=user_id,
                note=note,
            )
            previous = (
                get_user_model()._default_manager.using(using).filter(pk=previous_id).first()
                if previous_id is not None
                else None
            )
            signals.workflow_assigned.send(
                sender=WorkflowInstance,
                instance=locked,
                assignee=user,
                previous=previous,
                actor=actor,
                note=note,
            )
    workflow_instance.assignee_id = user_id
    if user is not None:
        workflow_instance.assignee = user
    workflow_instance.updated_at = locked.updated_at
    return workflow_instance


def _check_may_assign(
    instance: WorkflowInstance, step: Any, user: Any, actor: Any, caller: WorkflowInstance
) -> None:
    if actor is None or is_system(actor):
        return
    if actor.has_perm("django_steps.assign_workflowinstance"):
        return
    actor_id = getattr(actor, "pk", None)
    unassigning_self = user is None and instance.assignee_id == actor_id
    claiming = (
        getattr(user, "pk", None) == actor_id
        and instance.assignee_id in (None, actor_id)
        and (
            step is None
            or step.assignee_group_id is None
            or actor.groups.filter(pk=step.assignee_group_id).exists()
        )
    )
    if unassigning_self or claiming:
        return
    raise PermissionDenied(
        f"Workflow instance {instance.pk}: this actor may not assign it "
        f"{'away' if user is None else 'to ' + str(user)}; a user may claim an unassigned "
        "instance at a step of their group, or unassign themselves; other assignments need "
        "the permission 'django_steps.assign_workflowinstance'. Nothing was changed.",
        instance=caller,
        step=step.name if step is not None else "",
        rule="permission django_steps.assign_workflowinstance",
        reason="the actor may not assign this instance",
    )


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
    outermost = not transaction.get_connection(using).in_atomic_block
    try:
        with transaction.atomic(using=using):
            locked, outcome = _change_locked(
                instance, operation, using, context_data, actor, note, now, timing_out
            )
    except IntegrityError as error:
        if not outermost:
            raise
        # PostgreSQL checks foreign keys at commit: a step or status this change moved
        # the instance to was deleted by a transaction that committed first.
        raise DefinitionError(
            f"Workflow instance {instance.pk}: a row the change refers to (the step or "
            "status it was moving to, or the actor) was deleted by a transaction that "
            "committed first, so nothing was changed. Try again: the change is checked "
            f"against the edited definition. The database said: {error}"
        ) from error
    _refresh_in_place(instance, locked)  # even unchanged: the caller's object may be stale
    return outcome


def _change_locked(
    instance: WorkflowInstance,
    operation: _RunnerCall,
    using: str,
    context_data: Mapping[str, Any] | None,
    actor: Any,
    note: str,
    now: datetime | None,
    timing_out: bool,
) -> tuple[WorkflowInstance, Outcome]:
    connection, statements = statements_for(using)
    with connection.cursor() as cursor:
        found = statements.lock.fetch(cursor, instance.pk)
        if found is None:
            raise InstanceNotFound(
                f"Workflow instance {instance.pk} no longer exists.", instance=instance
            )
        locked, revision = found
        compiled = workflow_cache.current(locked.workflow_id, revision, using)
        if compiled is None:  # first use, or the definition changed: compile it
            compiled = cached_workflow(Workflow.objects.using(using).get(pk=locked.workflow_id))
        locked.workflow = compiled.workflow_row(using)
        state = compiled.state_of(locked)
        now = now or timezone.now()
        if timing_out:
            note = note or _timeout_note(locked)
            if not _announce_due(locked, compiled, state, now, instance):
                operation = _no_change
        # Built only when the step's conditions read object, actor, instance... or
        # one of its statuses has a rule (permission, actor_condition).
        step_name = state.step or ""
        surroundings = (
            surroundings_for(locked, actor=actor, now=now, loaded=instance)
            if compiled.runner.reads.get(step_name) or step_name in compiled.runner.guarded
            else None
        )
        try:
            outcome = operation(compiled.runner, state, surroundings)
        except InstanceError as error:
            # Refused: the caller's object gets the state read under the lock, which
            # may be newer than what it held.
            _attach_rows(locked, compiled, state)
            _refresh_in_place(instance, locked)
            error.instance = instance
            raise
        if outcome.changed:
            _record_actor_and_assignee(locked, compiled, outcome, actor)
            _copy_state(locked, compiled, state, now)
            _move_deadline(locked, compiled, state, outcome, now, timed_out=timing_out)
            locked.updated_at = now
            recording = _Recording(compiled, outcome, context_data, actor, note, timing_out)
            try:
                statements.write(cursor, locked, recording.history_rows(locked, now))
            except IntegrityError as error:
                raise DefinitionError(
                    f"Workflow {compiled.definition.name!r}: instance {instance.pk} cannot "
                    f"move to step {state.step!r}, status {state.status!r}: a row the "
                    "change refers to was deleted meanwhile. Nothing was changed; try "
                    f"again. The database said: {error}",
                    workflow=compiled.definition.name,
                ) from error
            recording.send_signals(locked)
        else:
            _attach_rows(locked, compiled, state)  # so the refresh below loads nothing
            if timing_out:  # already at the timeout status, or none: the deadline is spent
                locked.due_at = None
                WorkflowInstance.objects.using(using).filter(pk=locked.pk).update(due_at=None)
    return locked, outcome


def _record_actor_and_assignee(
    instance: WorkflowInstance, compiled: CachedWorkflow, outcome: Outcome, actor: Any
) -> None:
    """Keep who set a status at each step (``instance.actors``, for separation of duties)
    and clear the assignee when the instance moves to a step that does not keep it.

    Only users are recorded (by primary key); ``SYSTEM`` and no actor leave the entry
    as it was. A step keeps the assignee when it has no ``assignee_group`` or the
    same one as the step left.
    """
    actor_id = getattr(actor, "pk", None) if not is_system(actor) else None
    if actor_id is not None and outcome.acted_at is not None:
        instance.actors = {**(instance.actors or {}), outcome.acted_at: actor_id}
    for change in outcome.changes:
        if change.kind is ChangeKind.STEP_CHANGED and instance.assignee_id is not None:
            left, entered = compiled.step_row(change.from_step), compiled.step_row(change.to_step)
            group = getattr(entered, "assignee_group_id", None)
            if group is not None and group != getattr(left, "assignee_group_id", None):
                instance.assignee_id = None


def _attach_rows(instance: WorkflowInstance, compiled: CachedWorkflow, state: MachineState) -> None:
    """Point the instance's step and status relations at the cached rows (no query)."""
    instance.current_step = compiled.step_row(state.step)
    instance.current_step_status = compiled.status_row(state.step, state.status)
    instance.status_before_hold = compiled.status_row(state.step, state.status_before_hold)


def _copy_state(
    instance: WorkflowInstance, compiled: CachedWorkflow, state: MachineState, now: Any
) -> None:
    step = compiled.step_row(state.step)
    if instance.step_entered_at is None or instance.current_step_id != getattr(step, "pk", None):
        instance.step_entered_at = now
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


def _no_change(
    runner: WorkflowRunner, state: MachineState, surroundings: Surroundings | None
) -> Outcome:
    return Outcome()


def _timeout_note(instance: WorkflowInstance) -> str:
    due_at = instance.due_at.isoformat() if instance.due_at is not None else "?"
    return f"Timed out (due at {due_at})."


def _refresh_in_place(target: WorkflowInstance, source: WorkflowInstance) -> None:
    """Update the caller's Python object with the saved state (no query)."""
    target.workflow = source.workflow
    for name in STATE_FIELDS:
        if name == "assignee":  # by key: the user row is not loaded for this
            target.assignee_id = source.assignee_id
        else:
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
        by_system = is_system(self.actor)
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
                    "by_system": by_system,
                    "timed_out": self.timed_out,
                    "assignee_id": None,
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
    """Raise :class:`~django_steps.exceptions.ContextError` if conditions cannot use it.

    Refused: values conditions cannot use, and a reserved name (``object``,
    ``status``, ``actor``, ``instance``, ``now``) as a key.
    """
    check_reserved_keys(context_data)
    convert_context(context_data, backend=steps_settings.CEL_BACKEND, limits=current_limits())
