"""Load a workflow's rows in a fixed number of queries, turn them into a plain definition
and validate them (the rule only rows can break, then the definition's own).

Internal (see :mod:`django_steps._engine`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import Permission
from django.db.models import Prefetch, Q

from ..cel import CelLimits
from ..machines.definition import (
    STATUS_FIELDS,
    STEP_FIELDS,
    TRANSITION_FIELDS,
    StatusDefinition,
    StepDefinition,
    TransitionDefinition,
    WorkflowDefinition,
    definition_values,
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
    """Load a workflow's steps (with statuses and groups) and transitions: three queries.

    They are read from the database the workflow row came from.
    """
    steps = list(
        workflow.steps.order_by("order", "pk")
        .select_related("assignee_group")
        .prefetch_related(
            Prefetch("possible_statuses", queryset=WorkflowStepStatus.objects.order_by("pk"))
        )
    )
    transitions = list(
        WorkflowTransition.objects.using(workflow._state.db)
        .filter(workflow=workflow)
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
                due_after=step.due_after,
                timeout_status=_timeout_status_name(step),
                assignee_group=step.assignee_group.name if step.assignee_group else "",
                statuses=tuple(
                    StatusDefinition(
                        id=status.pk,
                        name=status.name,
                        **definition_values(STATUS_FIELDS, status),
                    )
                    for status in step.possible_statuses.all()
                ),
                **definition_values(STEP_FIELDS, step),
            )
            for step in rows.steps
        ),
        transitions=tuple(
            TransitionDefinition(
                id=transition.pk,
                name=transition.name,
                from_step=transition.from_step.name,
                to_step=transition.to_step.name,
                **definition_values(TRANSITION_FIELDS, transition),
            )
            for transition in rows.transitions
        ),
    )


def _timeout_status_name(step: WorkflowStep) -> str | None:
    """The name of the step's timeout status, from its prefetched statuses when it is one."""
    if step.timeout_status_id is None:
        return None
    for status in step.possible_statuses.all():
        if status.pk == step.timeout_status_id:
            return status.name
    other = step.timeout_status  # another step's status: validate_rows reports it
    return other.name if other is not None else None


def definition_from_db(workflow: Workflow | str) -> WorkflowDefinition:
    """The plain definition of a stored workflow, given as an object or by name."""
    if isinstance(workflow, str):
        workflow = Workflow.objects.get(name=workflow)
    return definition_from_rows(load_workflow_rows(workflow))


def validate_rows(rows: WorkflowRows, *, backend: str, limits: CelLimits) -> list[Problem]:
    """The problems of loaded rows (no query unless a transition crosses workflows).

    Each problem carries the row at fault as ``obj`` where there is one.
    """
    return checked_definition(rows, backend=backend, limits=limits)[1]


def checked_definition(
    rows: WorkflowRows, *, backend: str, limits: CelLimits
) -> tuple[WorkflowDefinition, list[Problem]]:
    """The definition of loaded rows and its problems, each with its row as ``obj``.

    Rows can break one rule definitions cannot: a transition joining a step of
    another workflow (``transition_other_workflow``). Such transitions are left out
    of the definition, so the other rules do not report them again. The
    definition is built once: compile it with these problems
    (:func:`~django_steps.machines.compiler.compile_workflow`'s ``problems``) to
    skip validating it again.
    """
    workflow = rows.workflow
    problems: list[Problem] = []
    own_transitions = []
    for transition in rows.transitions:
        foreign = transition.steps_of_other_workflows()
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
    for step in rows.steps:
        own = {status.pk for status in step.possible_statuses.all()}
        if step.timeout_status_id is not None and step.timeout_status_id not in own:
            other = step.timeout_status
            assert other is not None
            problems.append(
                Problem(
                    severity=ERROR,
                    code="timeout_status_other_step",
                    message=(
                        f"Workflow {workflow.name!r}: step {step.name!r} has timeout status "
                        f"{other.name!r} of step {other.step.name!r}; the timeout status must "
                        "be one of the step's own statuses."
                    ),
                    workflow=workflow.name,
                    kind="step",
                    name=step.name,
                    field="timeout_status",
                    id=step.pk,
                    obj=step,
                )
            )
    if len(own_transitions) != len(rows.transitions):
        rows = WorkflowRows(workflow=workflow, steps=rows.steps, transitions=own_transitions)
    definition = definition_from_rows(rows)
    foreign_timeouts = {p.name for p in problems if p.code == "timeout_status_other_step"}
    problems.extend(
        problem
        for problem in validate_definition(
            definition, backend=backend, limits=limits, object_fields=workflow.object_fields()
        )
        # said better by timeout_status_other_step
        if not (problem.code == "unknown_timeout_status" and problem.name in foreign_timeouts)
    )
    problems.extend(missing_permissions(definition))
    return definition, [_with_row(problem, rows) for problem in problems]


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
