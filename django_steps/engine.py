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
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import DEFAULT_DB_ALIAS, IntegrityError, models, router, transaction
from django.utils import timezone

from . import signals
from ._engine.cache import CachedWorkflow, cached_workflow, workflow_cache
from ._engine.context import surroundings_for
from ._engine.statements import STATE_FIELDS, statements_for
from .actors import SYSTEM, is_system
from .cel import convert_context
from .conf import current_limits, steps_settings
from .exceptions import (
    InstanceError,
    InstanceFinished,
    InstanceNotFound,
    PermissionDenied,
    WorkflowNotFound,
    WrongModel,
)
from .machines.context import Surroundings, check_reserved_keys
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


_RunnerCall = Callable[[WorkflowRunner, MachineState, Surroundings | None], Outcome]

# How many times a start inserts before giving up, when each insert conflicts with an
# instance another process started and finished before this one could return it.
START_ATTEMPTS = 3


def start_workflow_instance(
    workflow_name: str, content_object: models.Model, *, actor: Any = None, note: str = ""
) -> WorkflowInstance:
    """Start ``workflow_name`` for ``content_object``, or return its unfinished instance.

    Raises :class:`~django_steps.exceptions.WorkflowNotFound` for an unknown name,
    :class:`~django_steps.exceptions.WrongModel` when the workflow is for another model
    (``Workflow.content_type``) and :class:`~django_steps.exceptions.DefinitionError`
    for a workflow that cannot be compiled. Concurrent calls for one object create
    exactly one instance.
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
    if workflow.content_type_id is not None and workflow.content_type_id != content_type.pk:
        expected = ContentType.objects.get_for_id(workflow.content_type_id)
        raise WrongModel(
            f"Workflow {workflow_name!r} is for {expected.app_label}.{expected.model} objects; "
            f"it cannot be started for a {content_object._meta.label} "
            f"({content_object.pk}). Start a workflow made for that model.",
            workflow=workflow_name,
            model=content_object._meta.label,
        )
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
            now = timezone.now()
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
                error.instance = instance
                raise
            if outcome.changed:
                _record_actor_and_assignee(locked, compiled, outcome, actor)
                _copy_state(locked, compiled, state, now)
                locked.updated_at = now
                recording = _Recording(compiled, outcome, context_data, actor, note)
                statements.write(cursor, locked, recording.history_rows(locked, now))
                recording.send_signals(locked)
            else:
                _attach_rows(locked, compiled, state)  # so the refresh below loads nothing
    _refresh_in_place(instance, locked)  # even unchanged: the caller's object may be stale
    return outcome


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
