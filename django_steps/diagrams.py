"""Diagrams of stored workflows and instances (DOT, Mermaid, SVG, PNG).

A thin layer over :mod:`django_steps.machines.diagram`, which draws plain
definitions with no database; Graphviz runs within the ``DIAGRAM_TIMEOUT`` setting.
"""

from __future__ import annotations

from .conf import steps_settings
from .introspection import WorkflowRef, instance_state, workflow_runner
from .machines.diagram import render_diagram
from .models import WorkflowInstance

__all__ = [
    "workflow_diagram",
]


def workflow_diagram(
    workflow: WorkflowRef | None = None,
    *,
    format: str = "dot",
    instance: WorkflowInstance | None = None,
) -> str | bytes:
    """Draw a workflow (row, name or definition), or an instance's workflow.

    With ``instance`` the diagram is of its workflow, with its current step
    highlighted and labelled with its status (``workflow`` may then be left out).
    Returns text for ``"dot"`` and ``"mermaid"``, bytes for ``"svg"`` and ``"png"``.
    Raises :class:`~django_steps.exceptions.DiagramError` for an unknown format, or
    when Graphviz's ``dot`` program is needed and is missing, fails, or takes longer
    than the ``DIAGRAM_TIMEOUT`` setting (seconds; it is then stopped).
    """
    timeout = steps_settings.DIAGRAM_TIMEOUT
    if instance is not None:
        runner, state = instance_state(instance)
        name = workflow if isinstance(workflow, str) else getattr(workflow, "name", None)
        if workflow is not None and name != runner.definition.name:
            raise ValueError(
                f"Instance {instance.pk} belongs to workflow {runner.definition.name!r}, "
                "not to the workflow given."
            )
        return render_diagram(runner, format=format, state=state, timeout=timeout)
    if workflow is None:
        raise TypeError("workflow_diagram() needs a workflow or an instance.")
    return render_diagram(workflow_runner(workflow), format=format, timeout=timeout)
