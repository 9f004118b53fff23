"""Internal receivers: bump a workflow's version when its definition rows change."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save

from ..models import WorkflowStep, WorkflowStepStatus, WorkflowTransition, bump_version


def _workflow_id(instance: Any) -> Any:
    if isinstance(instance, WorkflowStepStatus):
        step = WorkflowStep.objects.filter(pk=instance.step_id).values_list("workflow_id").first()
        return step[0] if step else None
    return instance.workflow_id


def definition_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    if kwargs.get("raw"):
        return  # loaddata: the workflow row carries its own version
    workflow_id = _workflow_id(instance)
    if workflow_id is not None:
        bump_version(workflow_id)


for model in (WorkflowStep, WorkflowStepStatus, WorkflowTransition):
    post_save.connect(
        definition_changed, sender=model, dispatch_uid=f"django_steps.version.save.{model.__name__}"
    )
    post_delete.connect(
        definition_changed,
        sender=model,
        dispatch_uid=f"django_steps.version.delete.{model.__name__}",
    )
