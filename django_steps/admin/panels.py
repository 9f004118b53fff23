"""What the admin pages show beside their forms: validation summary, diagram, explanation.

Internal to the admin: its templates show these objects.

Each function returns a small object for a template and never raises for a broken
definition or a missing Graphviz: the page then shows what went wrong instead of a
server error.
"""

from __future__ import annotations

import base64
import json
import threading
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.urls import reverse
from django.utils.translation import gettext as _

from ..conf import steps_settings
from ..diagrams import workflow_diagram
from ..exceptions import DefinitionError, StepsError
from ..introspection import describe_instance, explain
from ..models import (
    Workflow,
    WorkflowInstance,
    WorkflowStep,
    WorkflowStepStatus,
    WorkflowTransition,
)
from ..validation import validate_workflow


@dataclass(frozen=True)
class ValidationPanel:
    """The problems of a workflow, errors first."""

    problems: Sequence[Any] = ()

    @property
    def errors(self) -> list[Any]:
        return [problem for problem in self.problems if _severity(problem) == "error"]

    @property
    def warnings(self) -> list[Any]:
        return [problem for problem in self.problems if _severity(problem) != "error"]

    @property
    def ordered(self) -> list[tuple[Any, str]]:
        """Errors then warnings, each with the admin URL of the row at fault (or "")."""
        return [(problem, problem_url(problem)) for problem in self.errors + self.warnings]


def problem_url(problem: Any) -> str:
    """Where to fix ``problem``: the step page for steps and statuses, else the row's page."""
    row = getattr(problem, "obj", None)
    if isinstance(row, WorkflowStepStatus):
        row = row.step
    if isinstance(row, (WorkflowStep, WorkflowTransition)) and row.pk is not None:
        opts = row._meta
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[row.pk])
    return ""


def _severity(problem: Any) -> str:
    return str(getattr(problem.severity, "value", problem.severity)).lower()


def validation_panel(workflow: Workflow) -> ValidationPanel:
    """The validation summary of a stored workflow."""
    return ValidationPanel(tuple(validate_workflow(workflow)))


@dataclass(frozen=True)
class DiagramPanel:
    """A diagram as an SVG data URL, or Mermaid text, with a notice saying why not SVG."""

    svg_data_url: str = ""
    mermaid: str = ""
    notice: str = ""


class DiagramCache:
    """The last ``size`` diagram panels drawn in this process, by revision and state."""

    def __init__(self, size: int):
        self.size = size
        self._panels: OrderedDict[Hashable, DiagramPanel] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> DiagramPanel | None:
        with self._lock:
            panel = self._panels.get(key)
            if panel is not None:
                self._panels.move_to_end(key)
            return panel

    def put(self, key: Hashable, panel: DiagramPanel) -> None:
        with self._lock:
            self._panels[key] = panel
            while len(self._panels) > self.size:
                self._panels.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._panels.clear()


#: The diagrams of the admin pages; 64 panels per process.
diagram_cache = DiagramCache(64)


def diagram_panel(workflow: Workflow, instance: WorkflowInstance | None = None) -> DiagramPanel:
    """SVG when Graphviz can draw it in time, else Mermaid text with a notice, else the notice.

    Each panel is drawn once per definition revision (database, primary key and
    ``revision`` of the workflow) and instance state, and kept in
    :data:`diagram_cache`: Graphviz took 47.5 s for a workflow of 150 steps and
    1,192 transitions; it now runs at most for the ``DIAGRAM_TIMEOUT`` setting, once
    per revision, and the Mermaid fallback is kept as well.

    The SVG is shown through an ``<img>`` data URL, so nothing in it (step names and
    conditions are administrator input) can run as script in the admin's origin.
    """
    key = (
        workflow._state.db,
        workflow.pk,
        workflow.revision,
        steps_settings.DIAGRAM_TIMEOUT,
        None
        if instance is None
        else (instance.current_step_id, instance.current_step_status_id, instance.lifecycle),
    )
    panel = diagram_cache.get(key)
    if panel is None:
        panel = _draw_diagram(workflow, instance)
        diagram_cache.put(key, panel)
    return panel


def _draw_diagram(workflow: Workflow, instance: WorkflowInstance | None) -> DiagramPanel:
    try:
        svg = workflow_diagram(workflow, format="svg", instance=instance)
    except DefinitionError as error:
        return DiagramPanel(
            notice=_("The diagram is drawn once the workflow has no errors. %(error)s")
            % {"error": error}
        )
    except StepsError as error:
        svg_error = str(error)
    else:
        data = svg if isinstance(svg, bytes) else svg.encode()
        return DiagramPanel(
            svg_data_url="data:image/svg+xml;base64," + base64.b64encode(data).decode("ascii")
        )
    try:
        mermaid = workflow_diagram(workflow, format="mermaid", instance=instance)
    except StepsError as error:
        return DiagramPanel(
            notice=_("The diagram cannot be drawn: %(error)s") % {"error": error},
        )
    return DiagramPanel(
        mermaid=mermaid if isinstance(mermaid, str) else mermaid.decode(),
        notice=_(
            "No SVG diagram (%(error)s). The Mermaid text below draws it in any Mermaid viewer."
        )
        % {"error": svg_error},
    )


@dataclass(frozen=True)
class ExplainPanel:
    """What setting a status would do now, with the live context of the instance.

    Conditions see what the engine would give them: the instance's object, the
    logged-in user as ``actor``, the instance and the time, plus the extra
    ``context`` keys the operator typed. ``asked`` is true when the operator asked
    (status and context from the form); otherwise ``explanations`` holds one
    explanation per completion status of the step, so a step with several (say
    "Approved" and "Sent back") shows where each one leads.
    """

    explanations: tuple[Any, ...] = ()
    context: Any = None
    asked: bool = False
    status: str | None = None
    transitions: tuple[Any, ...] = ()
    notice: str = ""

    @property
    def explanation(self) -> Any:
        """The first explanation (the one asked for), or ``None``."""
        return self.explanations[0] if self.explanations else None

    @property
    def checks(self) -> list[Any]:
        return list(self.explanation.checks) if self.explanation is not None else []

    @property
    def context_json(self) -> str:
        return json.dumps(self.context, indent=2, sort_keys=True, default=str)


def explain_panel(
    instance: WorkflowInstance,
    *,
    asked: tuple[str, Mapping[str, Any] | None] | None = None,
    actor: Any = None,
) -> ExplainPanel:
    """Explain the current step, changing nothing, with the instance's live context.

    With ``asked`` (a status name and extra context keys) that status; otherwise each
    completion status of the current step with no extra keys. The context stored in
    the history is never used: conditions see the object as it is now.
    """
    if instance.is_finished:
        return ExplainPanel(notice=_("The instance is finished; no transition is tried any more."))
    if asked is not None:
        statuses: list[str | None] = [asked[0]]
        context = asked[1]
    else:
        step = instance.current_step
        completions = (
            list(
                step.possible_statuses.filter(is_completion_status=True)
                .order_by("pk")
                .values_list("name", flat=True)
            )
            if step is not None
            else []
        )
        statuses = [*completions] or [None]
        context = None
    try:
        explanations = tuple(
            explain(instance, context, status=status, actor=actor) for status in statuses
        )
    except StepsError as error:
        return ExplainPanel(context=context, asked=asked is not None, notice=str(error))
    return ExplainPanel(explanations=explanations, context=context, asked=asked is not None)


@dataclass(frozen=True)
class OptionsPanel:
    """What the instance may do now: each status of its step, hold, resume, cancel."""

    state: Any = None
    notice: str = ""


def options_panel(instance: WorkflowInstance, *, actor: Any = None) -> OptionsPanel:
    """The instance's options now, as the engine's rules give them (``actor`` acting)."""
    try:
        return OptionsPanel(state=describe_instance(instance, actor=actor))
    except StepsError as error:
        return OptionsPanel(notice=str(error))
