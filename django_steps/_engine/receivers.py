"""Internal receivers: a new definition revision when a workflow's definition rows change."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models.signals import post_delete, post_save, pre_save

from ..models import Workflow, WorkflowStep, WorkflowStepStatus, WorkflowTransition, bump_version


def _workflow_id(instance: Any, using: str) -> Any:
    if isinstance(instance, WorkflowStepStatus):
        step = (
            WorkflowStep.objects.using(using)
            .filter(pk=instance.step_id)
            .values_list("workflow_id")
            .first()
        )
        return step[0] if step else None
    return instance.workflow_id


def definition_changed(
    sender: Any, instance: Any, using: str, raw: bool = False, **kwargs: Any
) -> None:
    """Bump the workflow's version and revision, on the database the row was written to.

    A ``loaddata`` of the row (a raw save) writes a new revision only: a fixture that
    changes a step must make every process recompile, and the fixture's workflow row
    carries its version. When the workflow row is not loaded yet, its own load gives
    it a new revision (:func:`new_revision_on_load`).
    """
    workflow_id = _workflow_id(instance, using)
    if workflow_id is None:
        return
    if raw:
        Workflow.objects.using(using).filter(pk=workflow_id).update(revision=uuid.uuid4())
    else:
        bump_version(workflow_id, using=using)


def new_revision_on_load(sender: Any, instance: Workflow, raw: bool = False, **kwargs: Any) -> None:
    """A workflow loaded by ``loaddata`` gets a revision of its own.

    Fixtures carry the revision they were dumped with: two databases (or tenants) loaded
    from one fixture, or a database loaded again after an edit, must not share it.
    """
    if raw:
        instance.revision = uuid.uuid4()


pre_save.connect(new_revision_on_load, sender=Workflow, dispatch_uid="django_steps.revision.load")
for model in (WorkflowStep, WorkflowStepStatus, WorkflowTransition):
    post_save.connect(
        definition_changed, sender=model, dispatch_uid=f"django_steps.version.save.{model.__name__}"
    )
    post_delete.connect(
        definition_changed,
        sender=model,
        dispatch_uid=f"django_steps.version.delete.{model.__name__}",
    )
