"""Admin for running workflow instances: list, hold/resume/cancel actions, set-status form.

Instances are read-only here: every state change goes through the strict engine
(:mod:`django_steps.engine`) with the operator as ``actor``, so refusals are
reported with the engine's reason, history is recorded and signals are sent. Each
operation needs its own permission (``hold_workflowinstance``...), and every change
is written to the admin log.
"""

from __future__ import annotations

import copy
import datetime
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import quote, unquote
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_permission_codename, get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.urls import NoReverseMatch, reverse
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.timezone import localtime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from .. import engine
from ..exceptions import StepsError
from ..forms import SetStatusForm
from ..machines.lifecycle import ChangeKind
from ..machines.runner import Outcome
from ..models import WorkflowHistory, WorkflowInstance, WorkflowStep
from .definitions import ADMIN_MEDIA
from .panels import diagram_panel, explain_panel, options_panel

__all__ = [
    "CurrentStepFilter",
    "WorkflowInstanceAdmin",
]

SET_STATUS_SUBMIT = "_steps_set_status"
CLAIM_SUBMIT = "_steps_claim"
UNASSIGN_SUBMIT = "_steps_unassign"
ASSIGN_SUBMIT = "_steps_assign"
EXPLAIN_SUBMIT = "_steps_explain"
SET_STATUS_PREFIX = "steps"
MAX_LISTED_REFUSALS = 20


class CurrentStepFilter(admin.SimpleListFilter):
    """Filter by current step; only the chosen workflow's steps once a workflow is chosen."""

    title = gettext_lazy("current step")
    parameter_name = "current_step"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        steps = WorkflowStep.objects.select_related("workflow").order_by(
            "workflow__name", "order", "pk"
        )
        workflow_id = primary_key(request.GET.get("workflow__id__exact", ""))
        if workflow_id is not None:
            steps = steps.filter(workflow_id=workflow_id)
            return [(str(step.pk), step.name) for step in steps]
        return [(str(step.pk), f"{step.workflow.name}: {step.name}") for step in steps]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if not value:
            return queryset
        step_id = primary_key(value)
        if step_id is None:
            # The admin shows the unfiltered list with its "invalid filter" notice.
            raise IncorrectLookupParameters(f"Not a step id: {value!r}.")
        return queryset.filter(current_step_id=step_id)


def primary_key(value: str) -> int | None:
    """``value`` as an integer primary key, or ``None`` (``"abc"``, ``"²"``, too large)."""
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        return None
    return int(value)


class AwaitingFilter(admin.SimpleListFilter):
    """ "Awaiting me": the running instances assigned to the logged-in user, or unassigned
    at a step of one of their groups (``WorkflowInstance.objects.awaiting``)."""

    title = gettext_lazy("awaiting")
    parameter_name = "awaiting"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("me", _("Awaiting me"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "me":
            return queryset & WorkflowInstance.objects.awaiting(request.user)
        return queryset


class InstanceChangeList(ChangeList):
    """Loads the objects of the listed instances with one query per content type.

    A filter value with a NUL character is refused as incorrect (the admin's "?e=1"
    page): PostgreSQL cannot compare text with it (``?lifecycle__exact=%00``).
    """

    def get_filters_params(self, params: Any = None) -> Any:
        lookup_params = super().get_filters_params(params)
        for values in lookup_params.values():
            if any("\x00" in value for value in (values if isinstance(values, list) else [values])):
                raise IncorrectLookupParameters("A filter value contains a NUL character.")
        return lookup_params

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        attach_content_objects(self.result_list, request.user)


#: ``_steps_object`` of an instance whose object the user may not view.
HIDDEN = object()


def can_view_model(user: Any, model: type[Model]) -> bool:
    """Whether ``user`` may see objects of ``model``: its view or change permission."""
    opts = model._meta
    return any(
        user.has_perm(f"{opts.app_label}.{get_permission_codename(action, opts)}")
        for action in ("view", "change")
    )


def can_view_context(user: Any) -> bool:
    """Whether ``user`` may see the context data of instances' history.

    Context data holds whatever the callers passed (amounts, names...), so it is
    shown only to users with the ``change_workflowinstance`` or
    ``set_status_workflowinstance`` permission (who enter such data themselves),
    not to those who may only view instances.
    """
    opts = WorkflowInstance._meta
    return any(
        user.has_perm(f"{opts.app_label}.{action}_{opts.model_name}")
        for action in ("change", "set_status")
    )


def attach_content_objects(instances: Iterable[WorkflowInstance], user: Any) -> None:
    """Set ``_steps_object`` on each instance: its object, ``None`` when it is gone.

    Objects of models ``user`` may not view (:func:`can_view_model`) are not
    loaded: ``_steps_object`` is then :data:`HIDDEN`. One query per content type,
    whatever the number of instances; content types of models that no longer
    exist, and ids their key cannot hold, leave ``None``.
    """
    by_type: dict[int, list[WorkflowInstance]] = {}
    for instance in instances:
        instance._steps_object = None  # type: ignore[attr-defined]
        by_type.setdefault(instance.content_type_id, []).append(instance)
    for group in by_type.values():
        model = group[0].content_type.model_class()
        if model is None:
            continue
        if not can_view_model(user, model):
            for instance in group:
                instance._steps_object = HIDDEN  # type: ignore[attr-defined]
            continue
        try:
            found = model._base_manager.in_bulk({instance.object_id for instance in group})
        except (ValueError, TypeError, ValidationError):
            continue
        by_id = {str(pk): obj for pk, obj in found.items()}
        for instance in group:
            instance._steps_object = by_id.get(instance.object_id)  # type: ignore[attr-defined]


def object_admin_url(instance: WorkflowInstance, site: admin.AdminSite) -> str:
    """The change URL of the instance's object on ``site``, or ``""`` when it has none there."""
    model = instance.content_type.model_class()
    if model is None or not site.is_registered(model):
        return ""
    content_type = instance.content_type
    try:
        return reverse(
            f"{site.name}:{content_type.app_label}_{content_type.model}_change",
            args=[quote(instance.object_id)],
        )
    except NoReverseMatch:
        return ""


@admin.register(WorkflowInstance)
class WorkflowInstanceAdmin(admin.ModelAdmin):
    """Running and finished instances; changed only through the engine."""

    list_display = [
        "instance",
        "workflow",
        "content_object_link",
        "current_step_name",
        "status_name",
        "lifecycle_badge",
        "assignee",
        "started",
        "completed",
    ]
    list_display_links = ["instance"]
    list_filter = [AwaitingFilter, "workflow", CurrentStepFilter, "lifecycle"]
    list_select_related = [
        "workflow",
        "current_step",
        "current_step_status",
        "content_type",
        "assignee",
    ]
    search_fields = ["=object_id"]
    search_help_text = gettext_lazy("Search by the object's id (exact).")
    actions = ["hold_instances", "resume_instances", "cancel_instances"]
    fieldsets = [
        (None, {"fields": ["workflow", "content_object_link", "id"]}),
        (
            gettext_lazy("State"),
            {
                "fields": [
                    "current_step_name",
                    "status_name",
                    "lifecycle_badge",
                    "status_before_hold",
                    "assignee",
                ]
            },
        ),
        (
            gettext_lazy("Dates"),
            {
                "fields": [
                    "started_at",
                    "due_at",
                    "held_at",
                    "completed_at",
                    "cancelled_at",
                    "updated_at",
                ]
            },
        ),
    ]
    readonly_fields = [
        "workflow",
        "content_object_link",
        "id",
        "current_step_name",
        "status_name",
        "lifecycle_badge",
        "status_before_hold",
        "assignee",
        "started_at",
        "due_at",
        "held_at",
        "completed_at",
        "cancelled_at",
        "updated_at",
    ]

    @property
    def media(self) -> forms.Media:
        return super().media + ADMIN_MEDIA

    # --- permissions ----------------------------------------------------------------

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Instances start through the services, for an object, never from an empty form.
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The state fields are the engine's: the page is read-only, changes go through
        # the set-status form and the actions, each with its own permission.
        return False

    def _has_operation_permission(self, request: HttpRequest, operation: str) -> bool:
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.{operation}_{opts.model_name}")

    def has_hold_permission(self, request: HttpRequest) -> bool:
        return self._has_operation_permission(request, "hold")

    def has_resume_permission(self, request: HttpRequest) -> bool:
        return self._has_operation_permission(request, "resume")

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return self._has_operation_permission(request, "cancel")

    def has_set_status_permission(self, request: HttpRequest) -> bool:
        return self._has_operation_permission(request, "set_status")

    # --- list -------------------------------------------------------------------------

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return InstanceChangeList

    @admin.display(description=gettext_lazy("instance"), ordering="started_at")
    def instance(self, instance: WorkflowInstance) -> str:
        return str(instance.pk)[:8]

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> WorkflowInstance | None:
        instance = super().get_object(request, object_id, from_field)
        if instance is not None:
            attach_content_objects([instance], request.user)
        return instance

    @admin.display(description=gettext_lazy("object"))
    def content_object_link(self, instance: WorkflowInstance) -> str:
        # Loaded for the viewing user by the change list and get_object(); an
        # instance that comes from anywhere else shows no more than its object's id.
        obj = getattr(instance, "_steps_object", HIDDEN)
        kind = instance.content_type.name
        if obj is HIDDEN:
            return f"{kind} {instance.object_id}"
        if obj is None:
            return format_html(
                '{} {} <span class="steps-quiet">({})</span>',
                kind,
                instance.object_id,
                _("not found"),
            )
        url = object_admin_url(instance, self.admin_site)
        label = f"{kind} {instance.object_id}: {obj}"
        return format_html('<a href="{}">{}</a>', url, label) if url else label

    @admin.display(description=gettext_lazy("current step"), ordering="current_step__order")
    def current_step_name(self, instance: WorkflowInstance) -> str:
        return instance.current_step.name if instance.current_step else "-"

    @admin.display(description=gettext_lazy("status"), ordering="current_step_status__name")
    def status_name(self, instance: WorkflowInstance) -> str:
        return instance.current_step_status.name if instance.current_step_status else "-"

    @admin.display(description=gettext_lazy("lifecycle"), ordering="lifecycle")
    def lifecycle_badge(self, instance: WorkflowInstance) -> SafeString:
        return format_html(
            '<span class="steps-badge steps-lifecycle-{}">{}</span>',
            instance.lifecycle,
            instance.get_lifecycle_display(),
        )

    @admin.display(description=gettext_lazy("started"), ordering="started_at")
    def started(self, instance: WorkflowInstance) -> str:
        return _short_datetime(instance.started_at)

    @admin.display(description=gettext_lazy("completed"), ordering="completed_at")
    def completed(self, instance: WorkflowInstance) -> str:
        return _short_datetime(instance.completed_at)

    # --- actions ----------------------------------------------------------------------

    @admin.action(permissions=["hold"], description=gettext_lazy("Put selected instances on hold"))
    def hold_instances(self, request: HttpRequest, queryset: QuerySet[WorkflowInstance]) -> None:
        self._operate(
            request,
            queryset,
            engine.set_workflow_on_hold,
            done=lambda count: ngettext(
                "Put %(count)d instance on hold.", "Put %(count)d instances on hold.", count
            ),
            log=_("Put on hold (admin action)."),
        )

    @admin.action(permissions=["resume"], description=gettext_lazy("Resume selected instances"))
    def resume_instances(self, request: HttpRequest, queryset: QuerySet[WorkflowInstance]) -> None:
        self._operate(
            request,
            queryset,
            engine.resume_workflow_instance,
            done=lambda count: ngettext(
                "Resumed %(count)d instance.", "Resumed %(count)d instances.", count
            ),
            log=_("Resumed (admin action)."),
        )

    @admin.action(permissions=["cancel"], description=gettext_lazy("Cancel selected instances"))
    def cancel_instances(self, request: HttpRequest, queryset: QuerySet[WorkflowInstance]) -> None:
        self._operate(
            request,
            queryset,
            engine.cancel_workflow_instance,
            done=lambda count: ngettext(
                "Cancelled %(count)d instance.", "Cancelled %(count)d instances.", count
            ),
            log=_("Cancelled (admin action)."),
        )

    def _operate(
        self,
        request: HttpRequest,
        queryset: QuerySet[WorkflowInstance],
        operation: Callable[..., Outcome],
        *,
        done: Callable[[int], str],
        log: str,
    ) -> None:
        """Apply ``operation`` to each instance on its own; report successes and refusals."""
        succeeded = 0
        refused: list[tuple[WorkflowInstance, StepsError]] = []
        for instance in queryset.select_related("workflow", "content_type").order_by("pk"):
            try:
                operation(instance, actor=request.user)
            except StepsError as error:
                refused.append((instance, error))
                continue
            succeeded += 1
            self.log_change(request, instance, log)
        if succeeded:
            self.message_user(request, done(succeeded) % {"count": succeeded}, messages.SUCCESS)
        if refused:
            self.message_user(request, refusal_message(refused), messages.ERROR)

    # --- change page: set-status form, diagram, explanation, history -----------------------

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        instance = self.get_object(request, unquote(object_id))
        if instance is None or not self.has_view_permission(request, instance):
            return super().change_view(request, object_id, form_url, extra_context)
        status_form = None
        asked = None
        if request.method == "POST" and {CLAIM_SUBMIT, UNASSIGN_SUBMIT, ASSIGN_SUBMIT} & set(
            request.POST
        ):
            self._assign(request, instance)
            return HttpResponseRedirect(request.path)
        submitted = {SET_STATUS_SUBMIT, EXPLAIN_SUBMIT} & set(request.POST)
        if request.method == "POST" and submitted:
            if not self.has_set_status_permission(request):
                raise PermissionDenied
            status_form = SetStatusForm(
                request.POST, instance=instance, actor=request.user, prefix=SET_STATUS_PREFIX
            )
            if status_form.is_valid():
                if SET_STATUS_SUBMIT in submitted:
                    self._set_status(request, instance, status_form)
                    return HttpResponseRedirect(request.path)
                asked = (
                    status_form.cleaned_data["status"],
                    status_form.cleaned_data["context_data"],
                )
            # Show the page again, with the form as entered, as the read-only view it is.
            request = _as_get(request)
        context = {**(extra_context or {}), **self._panels(request, instance, status_form, asked)}
        return super().change_view(request, object_id, form_url, context)

    def _panels(
        self,
        request: HttpRequest,
        instance: WorkflowInstance,
        status_form: SetStatusForm | None,
        asked: tuple[str, dict[str, Any] | None] | None,
    ) -> dict[str, Any]:
        history = list(
            WorkflowHistory.objects.filter(instance=instance)
            .select_related("actor", "assignee")
            .order_by("timestamp", "id")
        )
        can_set_status = self.has_set_status_permission(request) and not instance.is_finished
        show_context = can_view_context(request.user)
        if can_set_status and status_form is None:
            status_form = SetStatusForm(
                instance=instance, actor=request.user, prefix=SET_STATUS_PREFIX
            )
        return {
            "steps_status_form": status_form if can_set_status else None,
            "steps_set_status_submit": SET_STATUS_SUBMIT,
            "steps_explain_submit": EXPLAIN_SUBMIT,
            "steps_options": (
                options_panel(instance, actor=request.user) if can_set_status else None
            ),
            "steps_diagram": diagram_panel(instance.workflow, instance=instance),
            "steps_explain": explain_panel(instance, asked=asked, actor=request.user),
            "steps_history": [
                timeline_entry(row, with_context=show_context) for row in reversed(history)
            ],
            "steps_assignment": self._assignment_panel(request, instance),
        }

    def _assignment_panel(
        self, request: HttpRequest, instance: WorkflowInstance
    ) -> dict[str, Any] | None:
        """The assignee with the controls the user may use: claim, unassign, assign."""
        if instance.is_finished:
            return None
        user = request.user
        may_assign = user.has_perm("django_steps.assign_workflowinstance")
        group_id = instance.current_step.assignee_group_id if instance.current_step else None
        in_group = group_id is None or user.groups.filter(pk=group_id).exists()
        mine = instance.assignee_id == user.pk
        candidates: list[Any] = []
        if may_assign:
            users = get_user_model()._default_manager.filter(is_active=True)
            if group_id is not None:
                users = users.filter(groups=group_id)
            candidates = list(users.order_by(get_user_model().USERNAME_FIELD)[:200])
        return {
            "assignee": instance.assignee,
            "can_claim": not mine and (may_assign or (instance.assignee_id is None and in_group)),
            "can_unassign": instance.assignee_id is not None and (mine or may_assign),
            "candidates": candidates,
            "claim_name": CLAIM_SUBMIT,
            "unassign_name": UNASSIGN_SUBMIT,
            "assign_name": ASSIGN_SUBMIT,
        }

    def _assign(self, request: HttpRequest, instance: WorkflowInstance) -> None:
        """Claim, unassign or assign from the instance page; the engine checks who may."""
        user: Any
        if CLAIM_SUBMIT in request.POST:
            user = request.user
        elif UNASSIGN_SUBMIT in request.POST:
            user = None
        else:
            try:
                user = (
                    get_user_model()
                    ._default_manager.filter(pk=request.POST.get("assignee", ""))
                    .first()
                )
            except (ValueError, ValidationError):  # not a key of the user model
                user = None
            if user is None:
                self.message_user(request, _("Choose a user to assign."), messages.ERROR)
                return
        try:
            engine.assign_workflow_instance(instance, user, actor=request.user)
        except StepsError as error:
            self.message_user(request, str(error), messages.ERROR)
            return
        summary = (
            _("Assigned to %(user)s.") % {"user": user} if user is not None else _("Unassigned.")
        )
        self.log_change(request, instance, summary)
        self.message_user(request, summary, messages.SUCCESS)

    def _set_status(
        self, request: HttpRequest, instance: WorkflowInstance, form: SetStatusForm
    ) -> None:
        status = form.cleaned_data["status"]
        try:
            outcome = engine.update_workflow_step_status(
                instance,
                status,
                form.cleaned_data["context_data"],
                actor=request.user,
                note=form.cleaned_data["note"],
            )
        except StepsError as error:
            self.message_user(
                request,
                _("Status “%(status)s” was not set: %(error)s")
                % {"status": status, "error": error},
                messages.ERROR,
            )
            return
        if not outcome.changed:
            self.message_user(
                request,
                _("“%(status)s” already is the status; nothing changed.") % {"status": status},
                messages.INFO,
            )
            return
        summary = describe_outcome(outcome)
        self.log_change(request, instance, summary)
        self.message_user(request, summary, messages.SUCCESS)


def _short_datetime(value: datetime.datetime | None) -> str:
    # The list has many columns; the short format keeps them on screen.
    return date_format(localtime(value), "SHORT_DATETIME_FORMAT") if value else "-"


def _as_get(request: HttpRequest) -> HttpRequest:
    """A copy of ``request`` that the admin renders as a plain GET of the same page."""
    get = copy.copy(request)
    get.method = "GET"
    get.POST = QueryDict()
    return get


def describe_outcome(outcome: Outcome) -> str:
    """One sentence per change of ``outcome``, e.g. “Moved from step … to step …”."""
    taken = next(
        (
            evaluation.transition
            for evaluation in reversed(outcome.evaluations)
            if evaluation.result
        ),
        None,
    )
    sentences = []
    for change in outcome.changes:
        values = {
            "from_step": change.from_step,
            "to_step": change.to_step,
            "from_status": change.from_status,
            "to_status": change.to_status,
        }
        if change.kind is ChangeKind.STATUS_CHANGED:
            text = _("Status “%(from_status)s” → “%(to_status)s” at step “%(to_step)s”.")
        elif change.kind is ChangeKind.STEP_CHANGED:
            text = _("Moved from step “%(from_step)s” to “%(to_step)s” (status “%(to_status)s”)")
            if taken is not None:
                text += _(" by transition “%(transition)s”")
                values["transition"] = taken.label
            text += "."
        elif change.kind is ChangeKind.COMPLETED:
            text = _("The workflow is completed.")
        elif change.kind is ChangeKind.HELD:
            text = _("Put on hold (status “%(to_status)s”).")
        elif change.kind is ChangeKind.RESUMED:
            text = _("Resumed with status “%(to_status)s”.")
        elif change.kind is ChangeKind.CANCELLED:
            text = _("Cancelled (status “%(to_status)s”).")
        else:
            text = _("Started at step “%(to_step)s” (status “%(to_status)s”).")
        sentences.append(text % values)
    return " ".join(sentences)


def refusal_message(refused: Sequence[tuple[WorkflowInstance, StepsError]]) -> SafeString:
    """“N refused:” and a list naming each refused instance with the engine's reason."""
    listed = refused[:MAX_LISTED_REFUSALS]
    items = format_html_join(
        "", "<li>{}: {}</li>", ((instance, error) for instance, error in listed)
    )
    more = len(refused) - len(listed)
    tail = format_html("<li>{}</li>", _("… and %(count)d more.") % {"count": more}) if more else ""
    heading = ngettext(
        "%(count)d instance was refused:", "%(count)d instances were refused:", len(refused)
    )
    return format_html(
        '{}<ul class="steps-refusals">{}{}</ul>', heading % {"count": len(refused)}, items, tail
    )


def timeline_entry(row: WorkflowHistory, *, with_context: bool) -> dict[str, Any]:
    """A history row for the timeline template, its JSON fields pretty-printed.

    The context data is left out unless ``with_context`` (see :func:`can_view_context`).
    """
    return {
        "row": row,
        "context": json.dumps(row.context_data, indent=2, sort_keys=True, default=str)
        if with_context and row.context_data is not None
        else "",
        "context_hidden": not with_context and row.context_data is not None,
        "conditions": row.conditions or [],
    }
