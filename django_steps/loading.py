"""Build plain workflow definitions from database rows, in a fixed number of queries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import Prefetch

from .machines.definition import (
    StatusDefinition,
    StepDefinition,
    TransitionDefinition,
    WorkflowDefinition,
)
from .models import Workflow, WorkflowStep, WorkflowStepStatus, WorkflowTransition


@dataclass(frozen=True)
class WorkflowRows:
    """The rows of one workflow definition as loaded from the database."""

    workflow: Workflow
    steps: Sequence[WorkflowStep]
    transitions: Sequence[WorkflowTransition]


def load_workflow_rows(workflow: Workflow) -> WorkflowRows:
    """Load a workflow's steps (with statuses) and transitions: three queries."""
    steps = list(
        workflow.steps.order_by("order", "pk").prefetch_related(
            Prefetch("possible_statuses", queryset=WorkflowStepStatus.objects.order_by("pk"))
        )
    )
    transitions = list(
        WorkflowTransition.objects.filter(workflow=workflow)
        .select_related("from_step", "to_step")
        .order_by("pk")
    )
    return WorkflowRows(workflow=workflow, steps=steps, transitions=transitions)


def definition_from_rows(rows: WorkflowRows) -> WorkflowDefinition:
    """The plain definition of loaded rows (ids kept for mapping back to rows)."""
    workflow = rows.workflow
    return WorkflowDefinition(
        id=workflow.pk,
        name=workflow.name,
        description=workflow.description,
        context_variables=dict(workflow.context_variables or {}),
        version=workflow.version,
        steps=tuple(
            StepDefinition(
                id=step.pk,
                name=step.name,
                description=step.description,
                order=step.order,
                is_initial=step.is_initial_step,
                is_final=step.is_final_step,
                statuses=tuple(
                    StatusDefinition(
                        id=status.pk,
                        name=status.name,
                        description=status.description,
                        is_default=status.is_default_status,
                        is_completion=status.is_completion_status,
                        is_cancellation=status.is_cancellation_status,
                        is_on_hold=status.is_on_hold_status,
                    )
                    for status in step.possible_statuses.all()
                ),
            )
            for step in rows.steps
        ),
        transitions=tuple(
            TransitionDefinition(
                id=transition.pk,
                name=transition.name,
                description=transition.description,
                from_step=transition.from_step.name,
                to_step=transition.to_step.name,
                condition=transition.condition,
                priority=transition.priority,
            )
            for transition in rows.transitions
        ),
    )


def definition_from_db(workflow: Workflow | str) -> WorkflowDefinition:
    """The plain definition of a stored workflow, given as an object or by name."""
    if isinstance(workflow, str):
        workflow = Workflow.objects.get(name=workflow)
    return definition_from_rows(load_workflow_rows(workflow))
