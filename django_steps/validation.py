"""Validate workflows: definitions, stored workflows and their rows, and conditions.

:func:`validate_workflow` is the one validation function: the admin and the
``steps_check`` command use it, and the compiler applies the same rules (on a cache
miss, to the same rows) and refuses a workflow with errors. It accepts a
plain :class:`~django_steps.machines.definition.WorkflowDefinition` (no database)
or a :class:`~django_steps.models.Workflow` row, for which it also checks what only
rows can show (a transition whose steps belong to another workflow) and attaches
the row at fault to each :class:`Problem` as ``obj``. Conditions are compiled with
the ``DJANGO_STEPS`` backend and limits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.apps import apps

from ._engine import loading
from ._engine.loading import WorkflowRows, load_workflow_rows, missing_permissions
from .cel import CelLimits
from .conf import current_limits, readable_object_fields, steps_settings
from .exceptions import WorkflowNotFound
from .machines.definition import WorkflowDefinition
from .machines.validation import (
    ERROR,
    WARNING,
    ConditionIssue,
    Problem,
    condition_issues,
    errors_of,
    raise_for_errors,
    validate_definition,
)
from .models import Workflow

__all__ = [
    "ERROR",
    "WARNING",
    "ConditionIssue",
    "Problem",
    "check_condition",
    "check_workflows",
    "ensure_valid",
    "errors_of",
    "format_problems",
    "validate_rows",
    "validate_workflow",
]


def _settings(backend: str | None, limits: CelLimits | None) -> tuple[str, CelLimits]:
    return backend or steps_settings.CEL_BACKEND, limits or current_limits()


def validate_workflow(
    workflow: Workflow | WorkflowDefinition,
    *,
    backend: str | None = None,
    limits: CelLimits | None = None,
) -> list[Problem]:
    """Every problem (errors and warnings) of a workflow row or a plain definition.

    A row is loaded in three queries. ``backend`` and ``limits`` default to the
    ``DJANGO_STEPS`` settings. Never raises for a broken definition: that is what
    the problems describe.
    """
    if isinstance(workflow, WorkflowDefinition):
        problems, object_fields = _model_of(workflow)
        return (
            problems
            + validate_definition(
                workflow, **_options(backend, limits), object_fields=object_fields
            )
            + missing_permissions(workflow)
        )
    return validate_rows(load_workflow_rows(workflow), backend=backend, limits=limits)


def _model_of(definition: WorkflowDefinition) -> tuple[list[Problem], tuple[str, ...] | None]:
    """A definition's ``model`` problem, if any, and the object fields it lets conditions read."""
    if not definition.model:
        return [], None
    try:
        model = apps.get_model(definition.model)
    except (LookupError, ValueError):
        return [
            Problem(
                severity=ERROR,
                code="unknown_model",
                message=(
                    f"Workflow {definition.name!r}: model {definition.model!r} is not an "
                    "installed model; name it by its label, e.g. 'orders.PurchaseOrder'."
                ),
                workflow=definition.name,
                kind="workflow",
                name=definition.name,
                field="model",
            )
        ], None
    return [], readable_object_fields(model)


def _options(backend: str | None, limits: CelLimits | None) -> dict[str, Any]:
    backend, limits = _settings(backend, limits)
    return {"backend": backend, "limits": limits}


def validate_rows(
    rows: WorkflowRows, *, backend: str | None = None, limits: CelLimits | None = None
) -> list[Problem]:
    """The problems of loaded rows; ``backend`` and ``limits`` default to the settings."""
    return loading.validate_rows(rows, **_options(backend, limits))


def ensure_valid(
    workflow: Workflow | WorkflowDefinition,
    *,
    backend: str | None = None,
    limits: CelLimits | None = None,
) -> list[Problem]:
    """Validate; raise :class:`~django_steps.exceptions.DefinitionError` on any error.

    The error's ``problems`` lists every problem; without errors the warnings are
    returned.
    """
    problems = validate_workflow(workflow, backend=backend, limits=limits)
    raise_for_errors(workflow.name, problems)
    return problems


def check_condition(condition: str, *, context_variables: Any = None) -> list[ConditionIssue]:
    """Why ``condition`` would be refused under the current settings (empty: accepted).

    ``context_variables`` is the workflow's declaration; when it names variables,
    the condition may read no others.
    """
    backend, limits = _settings(None, None)
    declared = context_variables if isinstance(context_variables, dict) else None
    return condition_issues(condition, declared=declared, backend=backend, limits=limits)


def check_workflows(
    names: Sequence[str] = (),
) -> list[tuple[Workflow, list[Problem]]]:
    """Validate the workflows called ``names`` (all of them when empty), by name.

    Raises :class:`~django_steps.exceptions.WorkflowNotFound` naming the first
    unknown name before validating anything.
    """
    if names:
        found = {workflow.name: workflow for workflow in Workflow.objects.filter(name__in=names)}
        for name in names:
            if name not in found:
                raise WorkflowNotFound(name)
        workflows = [found[name] for name in dict.fromkeys(names)]
    else:
        workflows = list(Workflow.objects.order_by("name"))
    return [(workflow, validate_workflow(workflow)) for workflow in workflows]


def format_problems(results: Iterable[tuple[Workflow, Sequence[Problem]]]) -> list[str]:
    """Report lines: one heading per workflow, then its errors and warnings."""
    lines = []
    for workflow, problems in results:
        errors = errors_of(problems)
        warnings = len(problems) - len(errors)
        if not problems:
            lines.append(f"{workflow.name}: OK")
            continue
        lines.append(f"{workflow.name}: {len(errors)} error(s), {warnings} warning(s)")
        ordered = errors + [problem for problem in problems if not problem.is_error]
        lines.extend(f"  {problem}" for problem in ordered)
    return lines
