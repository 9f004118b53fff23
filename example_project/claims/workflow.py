"""Load the claims workflow from its definition file (the export format)."""

from __future__ import annotations

from pathlib import Path

import yaml
from django.db import transaction

from django_steps.machines import WorkflowDefinition
from django_steps.models import Workflow, WorkflowStep, WorkflowStepStatus, WorkflowTransition

WORKFLOW_FILE = Path(__file__).resolve().parent / "workflows" / "claims.yaml"


def load_claims_workflow(path: Path = WORKFLOW_FILE) -> Workflow:
    """Create the workflow described in ``path`` unless a workflow of that name exists."""
    definition = WorkflowDefinition.from_dict(yaml.safe_load(path.read_text()))
    existing = Workflow.objects.filter(name=definition.name).first()
    if existing is not None:
        return existing
    with transaction.atomic():
        workflow = Workflow.objects.create(
            name=definition.name,
            description=definition.description,
            context_variables=dict(definition.context_variables),
        )
        steps = {}
        for step in definition.steps:
            steps[step.name] = WorkflowStep.objects.create(
                workflow=workflow,
                name=step.name,
                description=step.description,
                order=step.order,
                is_initial_step=step.is_initial,
                is_final_step=step.is_final,
            )
            for status in step.statuses:
                WorkflowStepStatus.objects.create(
                    step=steps[step.name],
                    name=status.name,
                    description=status.description,
                    is_default_status=status.is_default,
                    is_completion_status=status.is_completion,
                    is_cancellation_status=status.is_cancellation,
                    is_on_hold_status=status.is_on_hold,
                )
        for transition in definition.transitions:
            WorkflowTransition.objects.create(
                workflow=workflow,
                name=transition.name,
                from_step=steps[transition.from_step],
                to_step=steps[transition.to_step],
                condition=transition.condition,
                priority=transition.priority,
                description=transition.description,
            )
    workflow.refresh_from_db()
    return workflow
