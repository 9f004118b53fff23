"""Admin of the example claims, with each claim's workflow state and two custom actions.

The current step and status come from one subquery each, so the changelist costs the
same number of queries whatever the number of rows. The actions call the documented
services, as any custom admin action on a workflow should.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.contenttypes.models import ContentType
from django.db.models import CharField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Cast
from django.http import HttpRequest

from django_steps import engine
from django_steps.exceptions import StepsError
from django_steps.models import WorkflowInstance
from django_steps.services import start_workflow_instance

from .models import WORKFLOW_NAME, Claim


@admin.register(Claim)
class ClaimAdmin(admin.ModelAdmin):
    list_display = (
        "title",
        "amount",
        "is_high_risk",
        "workflow_step",
        "workflow_status",
        "created",
    )
    list_filter = ("is_high_risk",)
    search_fields = ("title",)
    actions = ("start_workflow", "complete_current_step")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Claim]:
        latest = (
            WorkflowInstance.objects.for_workflow(WORKFLOW_NAME)
            .filter(
                content_type=ContentType.objects.get_for_model(Claim),
                object_id=Cast(OuterRef("pk"), CharField()),
            )
            .order_by("-started_at")
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                step_name=Subquery(latest.values("current_step__name")[:1]),
                status_name=Subquery(latest.values("current_step_status__name")[:1]),
            )
        )

    @admin.display(description="step", ordering="step_name")
    def workflow_step(self, claim: Any) -> str:
        return claim.step_name or "-"

    @admin.display(description="status", ordering="status_name")
    def workflow_status(self, claim: Any) -> str:
        return claim.status_name or "-"

    @admin.action(description="Start the claims workflow")
    def start_workflow(self, request: HttpRequest, queryset: QuerySet[Claim]) -> None:
        started = [
            claim
            for claim in queryset
            if start_workflow_instance(WORKFLOW_NAME, claim, actor=request.user)
        ]
        self.message_user(request, f"{len(started)} claim(s) are in the claims workflow.")

    @admin.action(description="Complete the current step (with the claim's data)")
    def complete_current_step(self, request: HttpRequest, queryset: QuerySet[Claim]) -> None:
        for claim in queryset:
            instance = (
                WorkflowInstance.objects.for_workflow(WORKFLOW_NAME)
                .for_object(claim)
                .unfinished()
                .first()
            )
            if instance is None or instance.current_step is None:
                self.message_user(request, f"{claim}: no running workflow.", messages.WARNING)
                continue
            completion = instance.current_step.possible_statuses.filter(
                is_completion_status=True
            ).first()
            if completion is None:
                self.message_user(
                    request,
                    f"{claim}: step {instance.current_step.name!r} has no completion status.",
                    messages.WARNING,
                )
                continue
            try:
                engine.update_workflow_step_status(
                    instance, completion.name, claim.workflow_context(), actor=request.user
                )
            except StepsError as error:  # the strict engine says why it refused
                self.message_user(request, f"{claim}: {error}", messages.WARNING)
                continue
            self.message_user(
                request,
                f"{claim}: now at {instance.current_step.name} ({instance.current_step_status}).",
            )
