"""Admin for workflow definitions: workflows with their steps and transitions, steps, statuses.

A workflow's page edits its steps and transitions inline and shows the validation
summary and the diagram; each step row links, in one click, to the step's page
where its statuses are edited inline.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import InlineModelAdmin
from django.contrib.admin.widgets import RelatedFieldWidgetWrapper
from django.db import models
from django.db.models import Count, OuterRef, Prefetch, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from ..forms import (
    CODE_ATTRS,
    StatusInlineFormSet,
    StepInlineFormSet,
    TransitionInlineFormSet,
    WorkflowTransitionForm,
    short_text_input,
    short_textarea,
    status_label,
)
from ..models import (
    Workflow,
    WorkflowInstance,
    WorkflowStep,
    WorkflowStepStatus,
    WorkflowTransition,
)
from .panels import diagram_panel, validation_panel

__all__ = [
    "StatusInline",
    "StepInline",
    "TransitionInline",
    "WorkflowAdmin",
    "WorkflowStepAdmin",
    "WorkflowStepStatusAdmin",
    "WorkflowTransitionAdmin",
]

ADMIN_MEDIA = forms.Media(css={"all": ["django_steps/admin.css"]})


def count_of(model: type[models.Model]) -> Coalesce:
    """How many ``model`` rows point at the workflow, as a subquery.

    Subqueries, not ``Count()`` over joins: joining steps, transitions and instances
    at once would multiply the rows (and instances can be many).
    """
    rows = (
        model._default_manager.filter(workflow=OuterRef("pk"))
        .order_by()
        .values("workflow")
        .annotate(count=Count("pk"))
        .values("count")
    )
    return Coalesce(Subquery(rows), 0)


class StepInline(admin.TabularInline):
    """The workflow's steps; statuses are one click away (“Edit statuses”)."""

    model = WorkflowStep
    formset = StepInlineFormSet
    fields = ["name", "order", "is_initial_step", "is_final_step", "description", "statuses"]
    readonly_fields = ["statuses"]
    extra = 0
    # Narrow, one-line rows; the step's own page has room for more.
    formfield_overrides = {
        models.CharField: {"widget": short_text_input()},
        models.TextField: {"widget": short_textarea()},
    }

    def get_extra(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> int:
        return 3 if obj is None else 1

    def get_queryset(self, request: HttpRequest) -> QuerySet[WorkflowStep]:
        statuses = WorkflowStepStatus.objects.order_by("pk")
        return (
            super()
            .get_queryset(request)
            .order_by("order", "pk")
            .select_related("workflow")
            .prefetch_related(Prefetch("possible_statuses", queryset=statuses))
        )

    @admin.display(description=_("statuses"))
    def statuses(self, step: WorkflowStep) -> str:
        if step.pk is None:
            return str(_("Save the step to add its statuses."))
        url = reverse("admin:django_steps_workflowstep_change", args=[step.pk])
        statuses = list(step.possible_statuses.all())
        names = format_html_join(
            ", ", "<span>{}</span>", ((status_label(status),) for status in statuses)
        )
        return format_html(
            '<a class="steps-edit-statuses" href="{}">{}</a><br>'
            '<span class="steps-quiet">{}</span>',
            url,
            _("Edit statuses (%(count)d)") % {"count": len(statuses)},
            names or _("none yet"),
        )


class TransitionInline(admin.TabularInline):
    """The workflow's transitions, with conditions checked on save."""

    model = WorkflowTransition
    fk_name = "workflow"
    form = WorkflowTransitionForm
    formset = TransitionInlineFormSet
    fields = ["name", "from_step", "to_step", "condition", "priority", "description"]
    extra = 1

    def get_queryset(self, request: HttpRequest) -> QuerySet[WorkflowTransition]:
        return super().get_queryset(request).order_by("from_step__order", "-priority", "pk")

    def formfield_for_dbfield(
        self, db_field: Any, request: HttpRequest, **kwargs: Any
    ) -> forms.Field | None:
        formfield = super().formfield_for_dbfield(db_field, request, **kwargs)
        # No add/change/view icons beside the step selects: steps are edited above,
        # and the icons would make each row too wide to read.
        if formfield is not None and isinstance(formfield.widget, RelatedFieldWidgetWrapper):
            formfield.widget = formfield.widget.widget
        return formfield


@admin.register(Workflow)
class WorkflowAdmin(admin.ModelAdmin):
    """Workflows: steps and transitions inline, validation summary and diagram on the page."""

    list_display = [
        "name",
        "version",
        "step_count",
        "transition_count",
        "instance_count",
        "updated_at",
    ]
    search_fields = ["name", "description"]
    readonly_fields = ["version", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "description", "content_type"]}),
        (
            _("Conditions"),
            {"fields": ["context_variables"], "classes": ["collapse"]},
        ),
        (
            _("Version"),
            {"fields": ["version", "created_at", "updated_at"], "classes": ["collapse"]},
        ),
    ]
    formfield_overrides = {
        models.JSONField: {"widget": forms.Textarea(attrs={**CODE_ATTRS, "rows": 3, "cols": 60})},
    }

    @property
    def media(self) -> forms.Media:
        return super().media + ADMIN_MEDIA

    def get_queryset(self, request: HttpRequest) -> QuerySet[Workflow]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                _step_count=count_of(WorkflowStep),
                _transition_count=count_of(WorkflowTransition),
                _instance_count=count_of(WorkflowInstance),
            )
        )

    @admin.display(description=_("steps"), ordering="_step_count")
    def step_count(self, workflow: Workflow) -> int:
        return getattr(workflow, "_step_count", 0)

    @admin.display(description=_("transitions"), ordering="_transition_count")
    def transition_count(self, workflow: Workflow) -> int:
        return getattr(workflow, "_transition_count", 0)

    @admin.display(description=_("instances"), ordering="_instance_count")
    def instance_count(self, workflow: Workflow) -> str:
        url = reverse("admin:django_steps_workflowinstance_changelist")
        return format_html(
            '<a href="{}?workflow__id__exact={}">{}</a>',
            url,
            workflow.pk,
            getattr(workflow, "_instance_count", 0),
        )

    def get_inlines(self, request: HttpRequest, obj: Any) -> list[type[InlineModelAdmin]]:
        # Transitions need saved steps to point at, so a new workflow starts with steps.
        return [StepInline] if obj is None else [StepInline, TransitionInline]

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> Any:
        if obj is not None and obj.pk is not None:
            context["steps_validation"] = validation_panel(obj)
            context["steps_diagram"] = diagram_panel(obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def save_related(
        self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool
    ) -> None:
        super().save_related(request, form, formsets, change)
        panel = validation_panel(form.instance)
        if panel.errors:
            messages.warning(
                request,
                ngettext(
                    "The workflow was saved but has %(count)d error; instances cannot "
                    "start or move until it is fixed (see the validation summary).",
                    "The workflow was saved but has %(count)d errors; instances cannot "
                    "start or move until they are fixed (see the validation summary).",
                    len(panel.errors),
                )
                % {"count": len(panel.errors)},
            )


class StatusInline(admin.TabularInline):
    """A step's statuses with their flags."""

    model = WorkflowStepStatus
    formset = StatusInlineFormSet
    fields = [
        "name",
        "is_default_status",
        "is_completion_status",
        "is_cancellation_status",
        "is_on_hold_status",
        "permission",
        "actor_condition",
        "description",
    ]
    extra = 1
    formfield_overrides = {
        models.CharField: {"widget": short_text_input()},
        models.TextField: {"widget": short_textarea()},
    }


@admin.register(WorkflowStep)
class WorkflowStepAdmin(admin.ModelAdmin):
    """Steps, with their statuses inline; the workflow is fixed once the step exists."""

    list_display = ["name", "workflow", "order", "is_initial_step", "is_final_step", "due_after"]
    list_filter = ["workflow"]
    list_select_related = ["workflow"]
    search_fields = ["name", "workflow__name"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "workflow",
                    "name",
                    "order",
                    "is_initial_step",
                    "is_final_step",
                    "assignee_group",
                ]
            },
        ),
        (None, {"fields": ["description"]}),
        (
            _("Deadline"),
            {
                "fields": ["due_after", "timeout_status"],
                "description": _(
                    "Instances still at this step “due after” entering it get the timeout "
                    "status from the timer sweep. Save the step's statuses first: the "
                    "timeout status is one of them."
                ),
            },
        ),
    ]
    inlines = [StatusInline]

    @property
    def media(self) -> forms.Media:
        return super().media + ADMIN_MEDIA

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["workflow"] if obj is not None else []

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        timeout_status = form.base_fields.get("timeout_status")
        if isinstance(timeout_status, forms.ModelChoiceField):
            # Only the step's own statuses can be its timeout status.
            timeout_status.queryset = (
                WorkflowStepStatus.objects.filter(step=obj).order_by("pk")
                if obj is not None
                else WorkflowStepStatus.objects.none()
            )
            if isinstance(timeout_status.widget, RelatedFieldWidgetWrapper):
                timeout_status.widget = timeout_status.widget.widget
        return form


@admin.register(WorkflowStepStatus)
class WorkflowStepStatusAdmin(admin.ModelAdmin):
    """Statuses across steps; usually edited inline on their step's page."""

    list_display = [
        "name",
        "step_name",
        "workflow_name",
        "is_default_status",
        "is_completion_status",
        "is_cancellation_status",
        "is_on_hold_status",
    ]
    list_filter = ["step__workflow"]
    list_select_related = ["step__workflow"]
    search_fields = ["name", "step__name", "step__workflow__name"]
    fields = [
        "step",
        "name",
        "is_default_status",
        "is_completion_status",
        "is_cancellation_status",
        "is_on_hold_status",
        "permission",
        "actor_condition",
        "description",
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["step"] if obj is not None else []

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "step":
            kwargs["queryset"] = WorkflowStep.objects.select_related("workflow")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description=_("step"), ordering="step__order")
    def step_name(self, status: WorkflowStepStatus) -> str:
        return status.step.name

    @admin.display(description=_("workflow"), ordering="step__workflow__name")
    def workflow_name(self, status: WorkflowStepStatus) -> str:
        return status.step.workflow.name


@admin.register(WorkflowTransition)
class WorkflowTransitionAdmin(admin.ModelAdmin):
    """Transitions across workflows, filtered by workflow; usually edited on the workflow."""

    form = WorkflowTransitionForm
    list_display = ["__str__", "workflow", "from_step_name", "to_step_name", "code", "priority"]
    list_filter = ["workflow"]
    list_select_related = ["workflow", "from_step", "to_step"]
    search_fields = ["name", "condition", "workflow__name"]
    fields = ["workflow", "name", "from_step", "to_step", "condition", "priority", "description"]

    @property
    def media(self) -> forms.Media:
        return super().media + ADMIN_MEDIA

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["workflow"] if obj is not None else []

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        steps = WorkflowStep.objects.select_related("workflow").order_by(
            "workflow__name", "order", "pk"
        )
        if obj is not None:
            steps = steps.filter(workflow_id=obj.workflow_id)
        for name in ("from_step", "to_step"):
            field = form.base_fields.get(name)
            if isinstance(field, forms.ModelChoiceField):
                field.queryset = steps
        return form

    @admin.display(description=_("from step"), ordering="from_step__order")
    def from_step_name(self, transition: WorkflowTransition) -> str:
        return transition.from_step.name

    @admin.display(description=_("to step"), ordering="to_step__order")
    def to_step_name(self, transition: WorkflowTransition) -> str:
        return transition.to_step.name

    @admin.display(description=_("condition"))
    def code(self, transition: WorkflowTransition) -> str:
        if not transition.condition.strip():
            return format_html('<span class="steps-quiet">{}</span>', _("(always)"))
        return format_html('<code class="steps-code">{}</code>', transition.condition)
