"""Load a workflow's rows in a fixed number of queries, turn them into a plain definition
and validate them (the checks only rows can fail, then the definition's own)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import Permission
from django.db.models import Prefetch, Q

from ..cel import CelLimits
from ..machines.definition import (
    StatusDefinition,
    StepDefinition,
    TransitionDefinition,
    WorkflowDefinition,
)
from ..machines.validation import ERROR, Problem, is_permission_name, validate_definition
from ..models import Workflow, WorkflowStep, WorkflowStepStatus, WorkflowTransition


@dataclass(frozen=True)
class WorkflowRows:
    """The rows of one workflow definition as loaded from the database."""

    workflow: Workflow
    steps: Sequence[WorkflowStep]
    transitions: Sequence[WorkflowTransition]


def load_workflow_rows(workflow: Workflow) -> WorkflowRows:
    """Load a workflow's steps (with statuses and groups) and transitions: three queries."""
    steps = list(
        workflow.steps.order_by("order", "pk")
        .select_related("assignee_group")
        .prefetch_related(
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
        model=workflow.model_label,
        steps=tuple(
            StepDefinition(
                id=step.pk,
                name=step.name,
                description=step.description,
                order=step.order,
                is_initial=step.is_initial_step,
                is_final=step.is_final_step,
                assignee_group=step.assignee_group.name if step.assignee_group else "",
                statuses=tuple(
                    StatusDefinition(
                        id=status.pk,
                        name=status.name,
                        description=status.description,
                        is_default=status.is_default_status,
                        is_completion=status.is_completion_status,
                        is_cancellation=status.is_cancellation_status,
                        is_on_hold=status.is_on_hold_status,
                        permission=status.permission,
                        actor_condition=status.actor_condition,
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


def validate_rows(rows: WorkflowRows, *, backend: str, limits: CelLimits) -> list[Problem]:
    """The problems of loaded rows (no query unless a transition crosses workflows).

    Each problem carries the row at fault as ``obj`` where there is one.
    """
    workflow = rows.workflow
    problems: list[Problem] = []
    own_transitions = []
    for transition in rows.transitions:
        foreign = [
            (field_name, step)
            for field_name, step in (
                ("from_step", transition.from_step),
                ("to_step", transition.to_step),
            )
            if step.workflow_id != workflow.pk
        ]
        for field_name, step in foreign:
            problems.append(
                Problem(
                    severity=ERROR,
                    code="transition_other_workflow",
                    message=(
                        f"Workflow {workflow.name!r}: transition {transition.name!r} uses step "
                        f"{step.name!r} of workflow {step.workflow.name!r}; a transition must "
                        "join two steps of its own workflow."
                    ),
                    workflow=workflow.name,
                    kind="transition",
                    name=transition.name,
                    field=field_name,
                    id=transition.pk,
                    obj=transition,
                )
            )
        if not foreign:
            own_transitions.append(transition)
    definition = definition_from_rows(
        WorkflowRows(workflow=workflow, steps=rows.steps, transitions=own_transitions)
    )
    problems.extend(
        validate_definition(
            definition, backend=backend, limits=limits, object_fields=workflow.object_fields()
        )
    )
    problems.extend(missing_permissions(definition))
    return [_with_row(problem, rows) for problem in problems]


def missing_permissions(definition: WorkflowDefinition) -> list[Problem]:
    """An error for each status whose ``permission`` names no existing permission.

    One query, none when no status has a well-formed permission.
    """
    wanted = {
        (step, status): status.permission
        for step in definition.steps
        for status in step.statuses
        if is_permission_name(status.permission)
    }
    if not wanted:
        return []
    query = Q()
    for permission in set(wanted.values()):
        app_label, _, codename = permission.partition(".")
        query |= Q(content_type__app_label=app_label, codename=codename)
    existing = {
        f"{app_label}.{codename}"
        for app_label, codename in Permission.objects.filter(query).values_list(
            "content_type__app_label", "codename"
        )
    }
    return [
        Problem(
            severity=ERROR,
            code="unknown_permission",
            message=(
                f"Workflow {definition.name!r}: step {step.name!r}, status {status.name!r}: "
                f"permission {permission!r} does not exist. Create it (Meta.permissions of a "
                "model of that app) or fix the name."
            ),
            workflow=definition.name,
            kind="status",
            name=status.name,
            step=step.name,
            field="permission",
            id=status.id,
        )
        for (step, status), permission in wanted.items()
        if permission not in existing
    ]


def _with_row(problem: Problem, rows: WorkflowRows) -> Problem:
    if problem.obj is not None:
        return problem
    row: Any = None
    if problem.kind == "workflow":
        row = rows.workflow
    elif problem.kind == "step":
        row = next((step for step in rows.steps if step.name == problem.name), None)
    elif problem.kind == "status":
        step = next((step for step in rows.steps if step.name == problem.step), None)
        if step is not None:
            statuses = step.possible_statuses.all()
            row = next((status for status in statuses if status.name == problem.name), None)
    elif problem.kind == "transition":
        row = next((t for t in rows.transitions if t.pk == problem.id), None)
    return dataclasses.replace(problem, obj=row) if row is not None else problem
