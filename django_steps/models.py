"""Workflow definitions (workflow, steps, statuses, transitions), instances and history.

The definition models are edited by administrators; every change to a step, status
or transition bumps :attr:`Workflow.version`, which invalidates compiled machines in
every process (see :mod:`django_steps._engine.cache`). Instances attach a workflow to any
object through a generic relation; their state changes only through
:mod:`django_steps.services`. History rows are append-only.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import django
from django.conf import settings
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, models, router, transaction
from django.db.models import F, ProtectedError, Q, RestrictedError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .cel.variables import declaration_errors
from .conf import current_limits, readable_object_fields, steps_settings
from .exceptions import DefinitionInUse, StepsError
from .machines.definition import (
    STATUS_FIELDS,
    STEP_FIELDS,
    StatusDefinition,
    StepDefinition,
    definition_values,
    transition_name,
)
from .machines.lifecycle import ChangeKind, Lifecycle
from .machines.validation import (
    ConditionIssue,
    condition_issues,
    conflicting_kinds,
    default_status_ends_step,
    final_step_transitions,
    is_permission_name,
)

__all__ = [
    "Workflow",
    "WorkflowHistory",
    "WorkflowInstance",
    "WorkflowInstanceManager",
    "WorkflowInstanceQuerySet",
    "WorkflowManager",
    "WorkflowStep",
    "WorkflowStepManager",
    "WorkflowStepStatus",
    "WorkflowStepStatusManager",
    "WorkflowTransition",
    "WorkflowTransitionManager",
]

LIFECYCLE_CHOICES = [(item.value, item.label) for item in Lifecycle]
EVENT_CHOICES = [(item.value, item.label) for item in ChangeKind]
UNFINISHED = (Lifecycle.RUNNING.value, Lifecycle.ON_HOLD.value)
# CheckConstraint's argument is ``condition`` from Django 5.1 (``check`` before, removed in 6.0).
CHECK_ARGUMENT = "condition" if django.VERSION >= (5, 1) else "check"


def check_constraint(condition: Q, **kwargs: Any) -> models.CheckConstraint:
    """A ``CheckConstraint`` of ``condition`` on every supported Django version."""
    arguments: dict[str, Any] = {CHECK_ARGUMENT: condition, **kwargs}
    return models.CheckConstraint(**arguments)


# --- definitions -------------------------------------------------------------------

# Unicode categories refused in names: control characters (C0, DEL, C1: NUL is
# refused by PostgreSQL, U+0085 is a line break to YAML, none is valid in XML),
# line and paragraph separators, and lone surrogates (not encodable).
_REFUSED_IN_NAMES = {
    "Cc": "control character",
    "Zl": "line separator",
    "Zp": "paragraph separator",
    "Cs": "surrogate",
}


def validate_name(value: str) -> None:
    """Refuse control characters, line and paragraph separators and surrogates in a name.

    Names of workflows, steps, statuses and transitions are single lines shown in the
    admin, in diagrams and in definitions files; such characters would be invisible,
    break the line, or not survive a YAML round trip or an SVG.
    """
    for position, char in enumerate(str(value), start=1):
        kind = _REFUSED_IN_NAMES.get(unicodedata.category(char))
        if kind is not None:
            raise ValidationError(
                _(
                    "Names cannot contain the %(kind)s U+%(code)04X (character %(position)d); "
                    "remove it."
                ),
                code="invalid_character",
                params={"kind": kind, "code": ord(char), "position": position},
            )


class WorkflowQuerySet(models.QuerySet["Workflow"]):
    """Workflows; ``update()`` writes a new revision, so compiled machines are rebuilt."""

    def update(self, **kwargs: Any) -> int:
        kwargs.setdefault("revision", uuid.uuid4())
        return super().update(**kwargs)


class WorkflowManager(models.Manager["Workflow"]):
    def get_queryset(self) -> WorkflowQuerySet:
        return WorkflowQuerySet(self.model, using=self._db)

    def get_by_natural_key(self, name: str) -> Workflow:
        return self.get(name=name)


class DefinitionQuerySet(models.QuerySet[Any]):
    """Steps, statuses or transitions; ``update()`` and ``bulk_create()`` mark their
    workflows changed (as ``save()`` and ``delete()`` do through signals), so every
    process recompiles them. Raw SQL does not: call :func:`bump_version` after it.
    """

    workflow_lookup = "workflow"

    def update(self, **kwargs: Any) -> int:
        with transaction.atomic(using=self.db):
            workflow_ids = set(self.values_list(self.workflow_lookup, flat=True))
            count = super().update(**kwargs)
            if self.workflow_lookup in kwargs or f"{self.workflow_lookup}_id" in kwargs:
                # Rows moved to another workflow change that one too.
                workflow_ids |= set(self.values_list(self.workflow_lookup, flat=True))
            bump_versions(workflow_ids, using=self.db)
        return count

    def bulk_create(self, objs: Any, *args: Any, **kwargs: Any) -> list[Any]:
        with transaction.atomic(using=self.db):
            created = super().bulk_create(objs, *args, **kwargs)
            pks = [obj.pk for obj in created if obj.pk is not None]
            workflow_ids = set(
                self.model._default_manager.using(self.db)
                .filter(pk__in=pks)
                .values_list(self.workflow_lookup, flat=True)
            )
            bump_versions(workflow_ids, using=self.db)
        return created


class StatusQuerySet(DefinitionQuerySet):
    workflow_lookup = "step__workflow"


class Workflow(models.Model):
    """A workflow definition, looked up by its unique name."""

    name = models.CharField(_("name"), max_length=100, unique=True, validators=[validate_name])
    description = models.TextField(_("description"), blank=True)
    context_variables = models.JSONField(
        _("context variables"),
        default=dict,
        blank=True,
        help_text=_(
            'Optional declaration of the variables conditions may use, e.g. {"claim": "map"}. '
            "When set, conditions naming other variables are rejected."
        ),
    )
    content_type = models.ForeignKey(
        ContentType,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("for model"),
        help_text=_(
            "Optional: the model this workflow is for. Starting it for another model is "
            "refused, and conditions reading object.<field> are checked against the fields "
            "the model declares."
        ),
    )
    version = models.PositiveIntegerField(
        _("definition version"),
        default=1,
        editable=False,
        help_text=_("Bumped on every change to the workflow, its steps, statuses or transitions."),
    )
    revision = models.UUIDField(
        _("definition revision"),
        default=uuid.uuid4,
        editable=False,
        help_text=_(
            "A new random value with every change to the workflow, its steps, statuses or "
            "transitions, and every load of them: what compiled workflows are cached by."
        ),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = WorkflowManager()

    class Meta:
        ordering = ["name"]
        verbose_name = _("workflow")
        verbose_name_plural = _("workflows")

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self._state.adding:
            super().save(*args, **kwargs)
            return
        # The version is only ever bumped in the database (F() + 1), never written from
        # a possibly stale Python object, so a version number is never reused.
        if kwargs.get("update_fields") is None:
            kwargs["update_fields"] = [
                f.name for f in self._meta.concrete_fields if not f.primary_key
            ]
        kwargs["update_fields"] = [
            name for name in kwargs["update_fields"] if name not in ("version", "revision")
        ]
        using = kwargs.get("using") or router.db_for_write(Workflow, instance=self)
        with transaction.atomic(using=using):
            super().save(*args, **kwargs)
            bump_version(self.pk, using=using)
        self.refresh_from_db(using=using, fields=["version", "revision"])

    def natural_key(self) -> tuple[str]:
        return (self.name,)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        try:
            return super().delete(*args, **kwargs)
        except ProtectedError as error:
            raise explain_protected(error, f"workflow {self.name!r}") from None

    def clean(self) -> None:
        super().clean()
        errors = declaration_errors(self.context_variables)
        if not errors and self.context_variables and self.pk is not None:
            errors = self.undeclared_variable_errors()
        if errors:
            raise ValidationError({"context_variables": errors})
        if self.pk is not None and self.content_type_id is not None:
            object_errors = self.object_field_errors()
            others = self.instances.exclude(content_type_id=self.content_type_id).count()
            if others:
                object_errors.append(
                    _(
                        "%(count)d instance(s) of this workflow are attached to objects of "
                        "other models; it can only be made for one model once they are gone."
                    )
                    % {"count": others}
                )
            if object_errors:
                raise ValidationError({"content_type": object_errors})

    @property
    def model_label(self) -> str:
        """The label of the model this workflow is for (``"app_label.ModelName"``), or ``""``."""
        if self.content_type_id is None:
            return ""
        content_type = ContentType.objects.get_for_id(self.content_type_id)
        model = content_type.model_class()
        return (
            model._meta.label
            if model is not None
            else f"{content_type.app_label}.{content_type.model}"
        )

    def object_fields(self) -> tuple[str, ...] | None:
        """The keys of ``object`` this workflow's conditions can read, when they are known.

        Known when the workflow names its model (``content_type``) and the model
        declares its fields in ``DJANGO_STEPS["OBJECT_FIELDS"]`` (or nothing: ``pk``);
        ``None`` without a model, or for a model declaring them with
        ``workflow_context()``.
        """
        if self.content_type_id is None:
            return None
        model = ContentType.objects.get_for_id(self.content_type_id).model_class()
        return readable_object_fields(model) if model is not None else None

    def object_field_errors(self) -> list[str]:
        """Conditions of this workflow reading fields its model does not declare."""
        fields = self.object_fields()
        if fields is None:
            return []
        errors = []
        for name, condition in self.transitions.exclude(condition="").values_list(
            "name", "condition"
        ):
            for issue in _condition_issues(condition, None, object_fields=fields):
                if issue.variable == "object":
                    errors.append(
                        _("Transition “%(transition)s”: %(problem)s")
                        % {"transition": name, "problem": issue.message}
                    )
        return errors

    def undeclared_variable_errors(self) -> list[str]:
        """Conditions of this workflow that read variables the declaration leaves out."""
        errors = []
        for name, condition in self.transitions.exclude(condition="").values_list(
            "name", "condition"
        ):
            # A condition refused for another reason is reported on its own field.
            for issue in _condition_issues(condition, self.context_variables):
                if issue.code == "undeclared_variable":
                    errors.append(
                        _("Transition “%(transition)s”: %(problem)s")
                        % {"transition": name, "problem": issue.message}
                    )
        return errors


def bump_version(workflow_id: Any, *, using: str | None = None) -> None:
    """Mark a workflow's definition as changed, so compiled machines are rebuilt.

    Bumps the version and writes a new random revision, on ``using`` (by default the
    database the router picks for writing workflows). Call it after changing
    definition rows with raw SQL; ``save()``, ``delete()``, ``QuerySet.update()``,
    ``bulk_create()`` and ``loaddata`` call it themselves.
    """
    bump_versions([workflow_id], using=using)


def bump_versions(workflow_ids: Any, *, using: str | None = None) -> None:
    """:func:`bump_version` for several workflows at once (one query; none for none)."""
    ids = [pk for pk in workflow_ids if pk is not None]
    if not ids:
        return
    using = using or router.db_for_write(Workflow)
    Workflow.objects.using(using).filter(pk__in=ids).update(
        version=F("version") + 1, revision=uuid.uuid4(), updated_at=timezone.now()
    )


def explain_protected(error: ProtectedError, subject: str) -> ProtectedError:
    """Django's ``ProtectedError`` with a message that names what is in use, and by what.

    Django's own message names foreign keys only (deleting a workflow even blames
    ``WorkflowStep.workflow``, a cascade); this one names the workflow, step or status
    and counts the instances that still point at it.
    """
    in_use = {obj.pk for obj in error.protected_objects if isinstance(obj, WorkflowInstance)}
    if not in_use:
        return error
    count = len(in_use)
    return ProtectedError(
        f"Cannot delete {subject}: {count} workflow instance{'s' if count > 1 else ''} "
        f"{'are' if count > 1 else 'is'} at it (finished instances too). Keep it (renaming "
        "is safe) or delete those instances first.",
        error.protected_objects,
    )


def moved_in_meanwhile(
    error: IntegrityError, subject: str, workflow: str, *, step: str, status: str = ""
) -> DefinitionInUse:
    """The error of a delete whose row an instance moved to while it was being deleted.

    On PostgreSQL a change that commits after the delete checked for instances, and
    before the delete committed, makes the commit fail on the foreign key; the
    transaction is rolled back, so nothing was deleted.
    """
    return DefinitionInUse(
        f"Cannot delete {subject}: a workflow instance moved to it while it was being "
        f"deleted, so nothing was deleted ({error}). Keep it, or delete it once no "
        "instance is at it.",
        workflow=workflow,
        step=step,
        status=status,
        instances=1,
    )


class WorkflowStepManager(models.Manager["WorkflowStep"]):
    def get_queryset(self) -> DefinitionQuerySet:
        return DefinitionQuerySet(self.model, using=self._db)

    def get_by_natural_key(self, name: str, workflow_name: str) -> WorkflowStep:
        return self.get(name=name, workflow__name=workflow_name)


class WorkflowStep(models.Model):
    """A step of a workflow; exactly one step of a workflow is its initial step."""

    workflow = models.ForeignKey(
        Workflow, related_name="steps", on_delete=models.CASCADE, verbose_name=_("workflow")
    )
    name = models.CharField(_("name"), max_length=100, validators=[validate_name])
    description = models.TextField(_("description"), blank=True)
    order = models.PositiveIntegerField(_("order"))
    is_initial_step = models.BooleanField(_("initial step"), default=False)
    is_final_step = models.BooleanField(_("final step"), default=False)
    due_after = models.DurationField(
        _("due after"),
        null=True,
        blank=True,
        help_text=_(
            "How long an instance may stay at this step before it times out, e.g. "
            "“3 00:00:00” for three days (the clock stops while it is on hold)."
        ),
    )
    timeout_status = models.ForeignKey(
        "WorkflowStepStatus",
        null=True,
        blank=True,
        on_delete=models.RESTRICT,
        related_name="+",
        verbose_name=_("timeout status"),
        help_text=_(
            "One of this step's statuses, set by the timer sweep when an instance is due: a "
            "completion status moves it on, a cancellation status cancels it, an on-hold "
            "status parks it, a plain one (say “Escalated”) marks it. Set with due after."
        ),
    )
    assignee_group = models.ForeignKey(
        "auth.Group",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("assignee group"),
        help_text=_(
            "Optional: the group responsible for instances at this step. Its members see "
            "the unassigned instances here in WorkflowInstance.objects.awaiting(user)."
        ),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = WorkflowStepManager()

    class Meta:
        ordering = ["workflow", "order", "pk"]
        verbose_name = _("workflow step")
        verbose_name_plural = _("workflow steps")
        constraints = [
            models.UniqueConstraint(
                fields=["workflow", "name"], name="django_steps_step_name_unique"
            ),
            models.UniqueConstraint(
                fields=["workflow"],
                condition=Q(is_initial_step=True),
                name="django_steps_one_initial_step",
            ),
            check_constraint(
                Q(due_after__isnull=True, timeout_status__isnull=True)
                | Q(due_after__gt=timedelta(0), timeout_status__isnull=False, is_final_step=False),
                name="django_steps_step_deadline",
                violation_error_message=_(
                    "A deadline needs both a positive due after and a timeout status, on a "
                    "step that is not final."
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.workflow_id and self.workflow.name}: {self.name}"

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        subject = f"step {self.name!r} of workflow {self.workflow.name!r}"
        try:
            return super().delete(*args, **kwargs)
        except ProtectedError as error:
            raise explain_protected(error, subject) from None
        except IntegrityError as error:
            raise moved_in_meanwhile(error, subject, self.workflow.name, step=self.name) from None

    def natural_key(self) -> tuple[str, ...]:
        return (self.name, *self.workflow.natural_key())

    natural_key.dependencies = ["django_steps.workflow"]  # type: ignore[attr-defined]

    def clean(self) -> None:
        super().clean()
        if self.is_initial_step and self.workflow_id:
            others = WorkflowStep.objects.filter(workflow_id=self.workflow_id, is_initial_step=True)
            other = others.exclude(pk=self.pk).first()
            if other is not None:
                raise ValidationError(
                    {
                        "is_initial_step": _(
                            "Workflow “%(workflow)s” already has an initial step: “%(step)s”."
                        )
                        % {"workflow": self.workflow.name, "step": other.name}
                    }
                )
        self.clean_deadline()
        if self.is_final_step and self.pk is not None:
            leaving = final_step_transitions(
                self._definition(), list(self.outgoing_transitions.values_list("name", flat=True))
            )
            if leaving:
                raise ValidationError(
                    {
                        "is_final_step": _(
                            "Step “%(step)s” cannot be final: it has outgoing transitions "
                            "(%(transitions)s), and a final step ends the workflow."
                        )
                        % {"step": self.name, "transitions": ", ".join(leaving)}
                    }
                )

    def _definition(self) -> StepDefinition:
        """This row's fields as a plain step (without its statuses), for the rules."""
        return StepDefinition(id=self.pk, name=self.name, **definition_values(STEP_FIELDS, self))

    def clean_deadline(self) -> None:
        """``due_after`` and ``timeout_status`` together, the status one of this step's own."""
        if self.due_after is None and self.timeout_status_id is None:
            return
        errors: dict[str, Any] = {}
        if self.is_final_step:
            errors["is_final_step"] = _(
                "Step “%(step)s” cannot be final: it has a deadline (due after, timeout "
                "status), and nothing times out at a final step."
            ) % {"step": self.name}
        if self.due_after is not None and self.due_after <= timedelta(0):
            errors["due_after"] = _("Due after must be a positive duration.")
        elif self.due_after is None:
            errors["due_after"] = _("Set how long instances may stay before they time out.")
        status = self.timeout_status if self.timeout_status_id is not None else None
        if status is None:
            errors["timeout_status"] = _(
                "Choose the status (one of this step's own) instances get when they are due."
            )
        elif status.step_id != self.pk:
            errors["timeout_status"] = _(
                "Status “%(status)s” belongs to step “%(other)s”; the timeout status must be "
                "one of this step's own statuses."
            ) % {"status": status.name, "other": status.step.name}
        if errors:
            raise ValidationError(errors)


class WorkflowStepStatusManager(models.Manager["WorkflowStepStatus"]):
    def get_queryset(self) -> StatusQuerySet:
        return StatusQuerySet(self.model, using=self._db)

    def get_by_natural_key(
        self, name: str, step_name: str, workflow_name: str
    ) -> WorkflowStepStatus:
        return self.get(name=name, step__name=step_name, step__workflow__name=workflow_name)


class WorkflowStepStatus(models.Model):
    """A status a step can have; exactly one per step is its default."""

    step = models.ForeignKey(
        WorkflowStep,
        related_name="possible_statuses",
        on_delete=models.CASCADE,
        verbose_name=_("step"),
    )
    name = models.CharField(_("name"), max_length=100, validators=[validate_name])
    description = models.TextField(_("description"), blank=True)
    is_default_status = models.BooleanField(_("default status"), default=False)
    is_completion_status = models.BooleanField(_("completion status"), default=False)
    is_cancellation_status = models.BooleanField(_("cancellation status"), default=False)
    is_on_hold_status = models.BooleanField(_("on-hold status"), default=False)
    permission = models.CharField(
        _("permission"),
        max_length=255,
        blank=True,
        help_text=_(
            "Optional: the Django permission (app_label.codename) an actor needs to set this "
            "status, checked with actor.has_perm(permission) or "
            "actor.has_perm(permission, object)."
        ),
    )
    actor_condition = models.TextField(
        _("actor condition"),
        blank=True,
        help_text=_(
            "Optional: a CEL expression that must be true for the actor to set this status, "
            "over the names transition conditions see (actor, object, instance, status, now "
            'and the context variables), e.g. actor.id != instance.actors["Draft"].'
        ),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = WorkflowStepStatusManager()

    class Meta:
        ordering = ["step", "pk"]
        verbose_name = _("workflow step status")
        verbose_name_plural = _("workflow step statuses")
        constraints = [
            models.UniqueConstraint(
                fields=["step", "name"], name="django_steps_status_name_unique"
            ),
            models.UniqueConstraint(
                fields=["step"],
                condition=Q(is_default_status=True),
                name="django_steps_one_default_status",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def natural_key(self) -> tuple[str, ...]:
        return (self.name, *self.step.natural_key())

    natural_key.dependencies = ["django_steps.workflowstep"]  # type: ignore[attr-defined]

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        subject = (
            f"status {self.name!r} of step {self.step.name!r} "
            f"(workflow {self.step.workflow.name!r})"
        )
        try:
            return super().delete(*args, **kwargs)
        except ProtectedError as error:
            raise explain_protected(error, subject) from None
        except RestrictedError as error:
            raise RestrictedError(
                f"Cannot delete status {self.name!r} of step {self.step.name!r} (workflow "
                f"{self.step.workflow.name!r}): it is the step's timeout status. Choose another "
                "timeout status (or clear the step's deadline) first.",
                error.restricted_objects,
            ) from None
        except IntegrityError as error:
            raise moved_in_meanwhile(
                error, subject, self.step.workflow.name, step=self.step.name, status=self.name
            ) from None

    def clean(self) -> None:
        super().clean()
        status = self._definition()
        kinds = conflicting_kinds(status)
        if kinds:
            raise ValidationError(
                _(
                    "A status can be only one of completion, cancellation or on-hold; "
                    "“%(name)s” is marked %(flags)s."
                )
                % {"name": self.name, "flags": " and ".join(str(_KIND_LABELS[k]) for k in kinds)}
            )
        kind = None
        if self.is_default_status and self.step_id:
            kind = default_status_ends_step(self.step._definition(), status)
        if kind is not None:
            raise ValidationError(
                {
                    "is_default_status": _(
                        "“%(name)s” is a %(flag)s status, so it cannot be the default status of "
                        "step “%(step)s”, which is not final: instances would leave or stop at "
                        "the step as soon as they enter it."
                    )
                    % {"name": self.name, "flag": _KIND_LABELS[kind], "step": self.step.name}
                }
            )
        if self.is_default_status and self.step_id:
            other = (
                WorkflowStepStatus.objects.filter(step_id=self.step_id, is_default_status=True)
                .exclude(pk=self.pk)
                .first()
            )
            if other is not None:
                raise ValidationError(
                    {
                        "is_default_status": _(
                            "Step “%(step)s” already has a default status: “%(status)s”."
                        )
                        % {"step": self.step.name, "status": other.name}
                    }
                )
        errors: dict[str, Any] = {}
        permission_error = permission_problem(self.permission)
        if permission_error:
            errors["permission"] = permission_error
        condition_errors = self.actor_condition_errors()
        if condition_errors:
            errors["actor_condition"] = condition_errors
        if errors:
            raise ValidationError(errors)

    def actor_condition_errors(self) -> list[str]:
        """Why ``actor_condition`` would be refused, with line and column, as the validator says."""
        if not self.actor_condition.strip():
            return []
        workflow = self.step.workflow if self.step_id else None
        return [
            issue.message
            for issue in _condition_issues(
                self.actor_condition,
                workflow.context_variables if workflow is not None else None,
                object_fields=workflow.object_fields() if workflow is not None else None,
                statuses=[self.name],
            )
        ]

    def _definition(self) -> StatusDefinition:
        """This row's fields as a plain status, for the rules."""
        return StatusDefinition(
            id=self.pk, name=self.name, **definition_values(STATUS_FIELDS, self)
        )


def permission_problem(permission: str) -> str:
    """Why ``permission`` cannot guard a status (``""``: it can, or there is none).

    It must be ``"app_label.codename"`` naming a permission that exists (one query).
    """
    if not permission:
        return ""
    app_label, _dot, codename = permission.partition(".")
    if not is_permission_name(permission):
        return str(
            _(
                "“%(permission)s” is not a permission name: write it as app_label.codename, "
                "e.g. purchasing.approve_order."
            )
            % {"permission": permission}
        )
    if not Permission.objects.filter(content_type__app_label=app_label, codename=codename).exists():
        return str(
            _(
                "Permission “%(permission)s” does not exist: no permission with codename "
                "“%(codename)s” in app “%(app_label)s”. Create it (Meta.permissions) or fix "
                "the name."
            )
            % {"permission": permission, "codename": codename, "app_label": app_label}
        )
    return ""


#: How the form messages name the kinds of :func:`~.machines.validation.status_kinds`.
_KIND_LABELS = {
    "completion": _("completion"),
    "cancellation": _("cancellation"),
    "on-hold": _("on-hold"),
}


class WorkflowTransitionManager(models.Manager["WorkflowTransition"]):
    def get_queryset(self) -> DefinitionQuerySet:
        return DefinitionQuerySet(self.model, using=self._db)

    def get_by_natural_key(self, name: str, workflow_name: str) -> WorkflowTransition:
        return self.get(name=name, workflow__name=workflow_name)


class WorkflowTransition(models.Model):
    """A move between two steps of a workflow, guarded by a CEL condition.

    Transitions from a step are tried when it is completed, highest ``priority``
    first (ties in creation order); the first whose condition is true is taken. An
    empty condition always passes. ``name`` (``"From -> To"`` when left blank) is
    unique within the workflow and identifies the transition in import/export.
    """

    workflow = models.ForeignKey(
        Workflow, related_name="transitions", on_delete=models.CASCADE, verbose_name=_("workflow")
    )
    name = models.CharField(
        _("name"),
        max_length=210,
        blank=True,
        validators=[validate_name],
        help_text=_("Unique within the workflow; “From -> To” when left blank."),
    )
    from_step = models.ForeignKey(
        WorkflowStep,
        related_name="outgoing_transitions",
        on_delete=models.CASCADE,
        verbose_name=_("from step"),
    )
    to_step = models.ForeignKey(
        WorkflowStep,
        related_name="incoming_transitions",
        on_delete=models.CASCADE,
        verbose_name=_("to step"),
    )
    condition = models.TextField(
        _("condition"),
        blank=True,
        help_text=_("CEL expression that must evaluate to true for this transition"),
    )
    priority = models.IntegerField(
        _("priority"), default=0, help_text=_("Higher priority transitions are evaluated first")
    )
    description = models.TextField(_("description"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = WorkflowTransitionManager()

    class Meta:
        ordering = ["workflow", "-priority", "pk"]
        verbose_name = _("workflow transition")
        verbose_name_plural = _("workflow transitions")
        constraints = [
            models.UniqueConstraint(
                fields=["workflow", "name"], name="django_steps_transition_name_unique"
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.default_name()

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.name:
            self.name = self.unique_default_name()
        super().save(*args, **kwargs)

    def unique_default_name(self) -> str:
        """``From -> To``, numbered when the workflow already has a transition so named."""
        if not (self.from_step_id and self.to_step_id):
            return ""
        taken = WorkflowTransition.objects.filter(workflow_id=self.workflow_id).exclude(pk=self.pk)
        number = 1
        name = transition_name(self.from_step.name, self.to_step.name)
        while taken.filter(name=name).exists():
            number += 1
            name = transition_name(self.from_step.name, self.to_step.name, number)
        return name

    def default_name(self) -> str:
        if self.from_step_id and self.to_step_id:
            return transition_name(self.from_step.name, self.to_step.name)
        return ""

    def natural_key(self) -> tuple[str, ...]:
        return (self.name, *self.workflow.natural_key())

    natural_key.dependencies = ["django_steps.workflow"]  # type: ignore[attr-defined]

    def clean(self) -> None:
        super().clean()
        errors: dict[str, Any] = {}
        for field_name, step in self.steps_of_other_workflows():
            errors[field_name] = _(
                "Step “%(step)s” belongs to workflow “%(other)s”, not to this workflow."
            ) % {"step": step.name, "other": step.workflow.name}
        if (
            self.from_step_id
            and "from_step" not in errors
            and final_step_transitions(self.from_step._definition(), [self])
        ):
            errors["from_step"] = _(
                "Step “%(step)s” is final; a final step ends the workflow and cannot have "
                "outgoing transitions."
            ) % {"step": self.from_step.name}
        condition_errors = self.condition_errors()
        if condition_errors:
            errors["condition"] = condition_errors
        if errors:
            raise ValidationError(errors)

    def steps_of_other_workflows(self) -> list[tuple[str, WorkflowStep]]:
        """``(field name, step)`` for each step it joins that belongs to another workflow.

        A transition must join two steps of its own workflow: the one rule that rows
        can break and plain definitions cannot (``transition_other_workflow``).
        """
        found = []
        for field_name in ("from_step", "to_step"):
            if getattr(self, f"{field_name}_id") and self.workflow_id:
                step = getattr(self, field_name)
                if step.workflow_id != self.workflow_id:
                    found.append((field_name, step))
        return found

    def condition_errors(self) -> list[str]:
        """Why the condition would be refused (length, depth, syntax, safety, variables).

        Also the keys of ``actor``, ``instance`` and (when the workflow names its model)
        ``object`` it reads, and the statuses it compares ``status`` with.
        """
        declared = self.workflow.context_variables if self.workflow_id else None
        object_fields = self.workflow.object_fields() if self.workflow_id else None
        statuses = None
        if self.from_step_id and self.condition.strip():
            statuses = list(
                self.from_step.possible_statuses.filter(is_completion_status=True).values_list(
                    "name", flat=True
                )
            )
        return [
            issue.message
            for issue in _condition_issues(
                self.condition, declared, object_fields=object_fields, statuses=statuses
            )
        ]


def _condition_issues(
    condition: str,
    context_variables: Any,
    *,
    object_fields: Sequence[str] | None = None,
    statuses: Sequence[str] | None = None,
) -> list[ConditionIssue]:
    """Why ``condition`` is refused under the current settings (as the validator says)."""
    declared = context_variables if isinstance(context_variables, dict) else None
    return condition_issues(
        condition,
        declared=declared,
        backend=steps_settings.CEL_BACKEND,
        limits=current_limits(),
        object_fields=object_fields,
        statuses=statuses,
    )


# --- instances ---------------------------------------------------------------------


class WorkflowInstanceQuerySet(models.QuerySet["WorkflowInstance"]):
    """Queries on instances: ``WorkflowInstance.objects.active().for_object(obj)``."""

    def active(self) -> WorkflowInstanceQuerySet:
        """Running instances (not on hold, not finished)."""
        return self.filter(lifecycle=Lifecycle.RUNNING.value)

    def on_hold(self) -> WorkflowInstanceQuerySet:
        return self.filter(lifecycle=Lifecycle.ON_HOLD.value)

    def completed(self) -> WorkflowInstanceQuerySet:
        return self.filter(lifecycle=Lifecycle.COMPLETED.value)

    def cancelled(self) -> WorkflowInstanceQuerySet:
        return self.filter(lifecycle=Lifecycle.CANCELLED.value)

    def unfinished(self) -> WorkflowInstanceQuerySet:
        """Running or on-hold instances."""
        return self.filter(lifecycle__in=UNFINISHED)

    def finished(self) -> WorkflowInstanceQuerySet:
        """Completed or cancelled instances."""
        return self.exclude(lifecycle__in=UNFINISHED)

    def overdue(self, now: datetime | None = None) -> WorkflowInstanceQuerySet:
        """Running instances whose due time has come (by ``now``, default: the current time).

        These are what the next run of :func:`django_steps.timers.run_due_timers` moves;
        on-hold instances are never overdue, their clock is stopped.
        """
        return self.active().filter(due_at__lte=now or timezone.now())

    def for_object(self, obj: models.Model) -> WorkflowInstanceQuerySet:
        """Instances attached to ``obj`` (any model; integer or UUID keys)."""
        content_type = ContentType.objects.get_for_model(obj)
        return self.filter(content_type=content_type, object_id=str(obj.pk))

    def unfinished_first(self) -> WorkflowInstanceQuerySet:
        """Unfinished instances first, then the latest started: the look-up's order."""
        unfinished = models.Case(models.When(lifecycle__in=UNFINISHED, then=0), default=1)
        return self.order_by(
            unfinished, models.F("started_at").desc(nulls_last=True), "-updated_at"
        )

    def awaiting(self, user: Any) -> WorkflowInstanceQuerySet:
        """Running instances waiting for ``user``: assigned to them, or unassigned at a
        step whose ``assignee_group`` they belong to.

        One query when evaluated (the user's groups are a subquery), served by the
        indexes ``django_steps_assignee`` and ``django_steps_unassigned``.
        An anonymous user or ``None`` awaits nothing.
        """
        if user is None or not getattr(user, "is_authenticated", False) or user.pk is None:
            return self.none()
        running = WorkflowInstance.objects.filter(lifecycle=Lifecycle.RUNNING.value)
        assigned = running.filter(assignee_id=user.pk).order_by().values("pk")
        if not hasattr(user, "groups"):  # a user model without PermissionsMixin
            return self.filter(pk__in=assigned)
        groups = user.groups.order_by().values("pk")  # any user model with PermissionsMixin
        steps = WorkflowStep.objects.filter(assignee_group__in=groups).values("pk")
        # A UNION of the two sets of keys, not an OR: each branch is then served by
        # its own index (an OR with a subquery makes PostgreSQL scan every running
        # instance).
        unassigned = (
            running.filter(assignee__isnull=True, current_step__in=steps).order_by().values("pk")
        )
        return self.filter(pk__in=assigned.union(unassigned, all=True))

    def for_workflow(self, workflow: Workflow | str) -> WorkflowInstanceQuerySet:
        """Instances of a workflow, given as an object or by name."""
        if isinstance(workflow, str):
            return self.filter(workflow__name=workflow)
        return self.filter(workflow=workflow)


WorkflowInstanceManager = models.Manager.from_queryset(WorkflowInstanceQuerySet)


class WorkflowInstance(models.Model):
    """A workflow attached to an object, moving through its steps."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workflow = models.ForeignKey(
        Workflow, related_name="instances", on_delete=models.PROTECT, verbose_name=_("workflow")
    )
    current_step = models.ForeignKey(
        WorkflowStep,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        verbose_name=_("current step"),
    )
    current_step_status = models.ForeignKey(
        WorkflowStepStatus,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        verbose_name=_("current status"),
    )
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    step_entered_at = models.DateTimeField(
        _("step entered at"),
        null=True,
        blank=True,
        help_text=_(
            "When the instance entered its current step (conditions: instance.step_entered_at)."
        ),
    )
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    content_type = models.ForeignKey(
        ContentType, on_delete=models.CASCADE, verbose_name=_("content type")
    )
    object_id = models.CharField(_("object id"), max_length=255)  # Supporting UUID strings
    content_object = GenericForeignKey("content_type", "object_id")

    lifecycle = models.CharField(
        _("lifecycle"),
        max_length=20,
        choices=LIFECYCLE_CHOICES,
        default=Lifecycle.RUNNING.value,
        db_index=True,
    )
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)
    status_before_hold = models.ForeignKey(
        WorkflowStepStatus,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("status before hold"),
    )
    due_at = models.DateTimeField(
        _("due at"),
        null=True,
        blank=True,
        editable=False,
        help_text=_("When the instance times out at its current step (its step's due after)."),
    )
    held_at = models.DateTimeField(
        _("held at"),
        null=True,
        blank=True,
        editable=False,
        help_text=_(
            "Since when the instance is on hold; resuming moves the due time on by as much."
        ),
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_workflow_instances",
        db_index=False,  # the first column of django_steps_assignee
        verbose_name=_("assignee"),
        help_text=_(
            "The user the instance waits for; set with assign_workflow_instance, cleared "
            "when the instance leaves the step unless the next step keeps it."
        ),
    )
    actors = models.JSONField(
        _("actors"),
        default=dict,
        blank=True,
        encoder=DjangoJSONEncoder,
        help_text=_(
            "Who last set a status at each step: step name -> user id (conditions: "
            "instance.actors). Written by the services with each change."
        ),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = WorkflowInstanceManager()

    #: Why the last call of a service on this object returned ``False`` (the
    #: :class:`~django_steps.exceptions.StepsError` it refused with); ``None`` after a
    #: successful change. A plain attribute of the Python object, not stored.
    refusal: StepsError | None = None

    class Meta:
        ordering = ["-started_at"]
        verbose_name = _("workflow instance")
        verbose_name_plural = _("workflow instances")
        constraints = [
            models.UniqueConstraint(
                fields=["workflow", "content_type", "object_id"],
                condition=Q(lifecycle__in=UNFINISHED),
                name="django_steps_one_unfinished_instance",
            ),
        ]
        indexes = [
            # The workflow column lets start_workflow_instance and a look-up by workflow
            # name use this index: without it SQLite picks the workflow index and scans
            # every instance of the workflow (27 ms instead of 0.5 ms at 100,000 rows).
            models.Index(
                fields=["content_type", "object_id", "workflow"],
                name="django_steps_instance_object",
            ),
            # The timer sweep's index: only instances with a due time are in it, running
            # ones apart from those on hold (the leading lifecycle column), so finding
            # what is due is an index scan however many instances there are. The
            # condition names no value: SQLite (and PostgreSQL with server-side binding)
            # cannot match a partial index's ``lifecycle = 'running'`` to a bound
            # parameter, but ``due_at <= %s`` implies ``due_at IS NOT NULL`` everywhere.
            models.Index(
                fields=["lifecycle", "due_at"],
                condition=Q(due_at__isnull=False),
                name="django_steps_instance_due",
            ),
            # awaiting(user): the user's assignments, and the unassigned running
            # instances at the steps of their groups.
            models.Index(fields=["assignee", "lifecycle"], name="django_steps_assignee"),
            models.Index(
                fields=["current_step"],
                condition=Q(assignee__isnull=True, lifecycle=Lifecycle.RUNNING.value),
                name="django_steps_unassigned",
            ),
        ]
        permissions = [
            ("hold_workflowinstance", "Can put workflow instances on hold"),
            ("resume_workflowinstance", "Can resume workflow instances"),
            ("cancel_workflowinstance", "Can cancel workflow instances"),
            ("set_status_workflowinstance", "Can set the status of workflow instances"),
            ("assign_workflowinstance", "Can assign workflow instances to anyone"),
        ]

    def __str__(self) -> str:
        return f"{self.workflow.name} for {self.content_type.model} {self.object_id}"

    @property
    def is_finished(self) -> bool:
        return Lifecycle(self.lifecycle).is_finished

    @property
    def is_on_hold(self) -> bool:
        return self.lifecycle == Lifecycle.ON_HOLD.value


def _definition_link(to: type[models.Model]) -> models.ForeignKey[Any, Any]:
    """A history row's link to a step or status: cleared on delete, no database constraint."""
    return models.ForeignKey(
        to, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False
    )


class WorkflowHistory(models.Model):
    """One event in an instance's life; rows are written once and never changed.

    Steps and statuses are kept both as foreign keys (cleared if the definition row
    is deleted) and as name snapshots, so history survives later edits. The names
    are the record; the step and status links carry no database constraint (as in
    django-simple-history), so writing a history row checks only its instance: on
    PostgreSQL the four deferred foreign-key checks at commit were about a tenth of
    a state change. Deleting a step or status through Django still clears them.
    """

    id = models.BigAutoField(primary_key=True)
    instance = models.ForeignKey(
        WorkflowInstance,
        related_name="history",
        on_delete=models.CASCADE,
        verbose_name=_("instance"),
    )
    event = models.CharField(_("event"), max_length=20, choices=EVENT_CHOICES)
    timestamp = models.DateTimeField(_("timestamp"), default=timezone.now, db_index=True)
    from_step = _definition_link(WorkflowStep)
    from_step_name = models.CharField(_("from step"), max_length=100, blank=True)
    from_status = _definition_link(WorkflowStepStatus)
    from_status_name = models.CharField(_("from status"), max_length=100, blank=True)
    to_step = _definition_link(WorkflowStep)
    to_step_name = models.CharField(_("to step"), max_length=100, blank=True)
    to_status = _definition_link(WorkflowStepStatus)
    to_status_name = models.CharField(_("to status"), max_length=100, blank=True)
    context_data = models.JSONField(
        _("context data"), null=True, blank=True, encoder=DjangoJSONEncoder
    )
    conditions = models.JSONField(
        _("conditions evaluated"), default=list, blank=True, encoder=DjangoJSONEncoder
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("actor"),
    )
    by_system = models.BooleanField(
        _("by the system"),
        default=False,
        help_text=_("Made by the system actor (SYSTEM), such as the timer sweep, not a user."),
    )
    timed_out = models.BooleanField(
        _("timed out"),
        default=False,
        help_text=_("Made by the timer sweep: the instance was due at its step."),
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
        verbose_name=_("assignee"),
        help_text=_("For an assigned event: the user assigned (empty: unassigned)."),
    )
    note = models.TextField(_("note"), blank=True)

    class Meta:
        ordering = ["timestamp", "id"]
        verbose_name = _("workflow history entry")
        verbose_name_plural = _("workflow history")

    def __str__(self) -> str:
        return (
            f"{self.get_event_display()}: {self.from_step_name}/{self.from_status_name}"
            f" -> {self.to_step_name}/{self.to_status_name}"
        )

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ValueError("Workflow history is append-only; rows cannot be changed.")
        super().save(*args, **kwargs)
