"""The example's demo: run a handful of claims through the claims workflow and report.

:func:`run_demo` creates one claim per :data:`SCENARIOS` entry, drives it with the
documented services (and, where the services only say ``False``, the strict engine
to get the reason), and returns one :class:`ClaimReport` per claim. The ``demo``
management command prints them as a table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from django.core.management.base import CommandError

from django_steps import engine
from django_steps.diagrams import workflow_diagram
from django_steps.exceptions import DiagramError, StepsError
from django_steps.introspection import explain
from django_steps.models import WorkflowInstance
from django_steps.services import (
    cancel_workflow_instance,
    get_workflow_instance_for_object,
    resume_workflow_instance,
    set_workflow_on_hold,
    start_workflow_instance,
    update_workflow_step_status,
)

from .models import WORKFLOW_NAME, Claim
from .workflow import load_claims_workflow


@dataclass
class ClaimReport:
    """What happened to one claim of the demo."""

    claim: Claim
    path: list[str]
    step: str
    status: str
    lifecycle: str
    notes: list[str] = field(default_factory=list)


def _expect(done: bool, claim: Claim, action: str) -> None:
    if not done:
        raise CommandError(f"Demo claim {claim.title!r}: {action} was refused unexpectedly.")


def _status(instance: WorkflowInstance, claim: Claim, name: str, with_context: bool = True) -> None:
    context = claim.workflow_context() if with_context else None
    _expect(update_workflow_step_status(instance, name, context), claim, f"status {name!r}")


def low_value(claim: Claim, instance: WorkflowInstance) -> list[str]:
    _status(instance, claim, "Accepted")  # Submitted is complete -> Review
    _status(instance, claim, "Approved")  # no condition but the last passes -> Payment
    _status(instance, claim, "Paid")  # -> Closed, a final step: the workflow completes
    return []


def conditions_tried(instance: WorkflowInstance) -> str:
    """The conditions of the instance's last step change, as the history recorded them."""
    row = instance.history.filter(event="step_changed").order_by("timestamp", "id").last()
    assert row is not None
    tried = ", ".join(f"{c['transition']!r} {str(c['result']).lower()}" for c in row.conditions)
    return f"at {row.from_step_name}, the history records the conditions tried: {tried}"


def high_value(claim: Claim, instance: WorkflowInstance) -> list[str]:
    _status(instance, claim, "Accepted")
    _status(instance, claim, "In progress")
    _status(instance, claim, "Approved")  # claim.amount > 10000.0 -> Senior Review
    return [conditions_tried(instance)]


def high_risk(claim: Claim, instance: WorkflowInstance) -> list[str]:
    _status(instance, claim, "Accepted")
    _status(instance, claim, "Approved")  # claim.is_high_risk == true wins (priority 30)
    return [conditions_tried(instance)]


def held_and_resumed(claim: Claim, instance: WorkflowInstance) -> list[str]:
    _status(instance, claim, "Accepted")
    _status(instance, claim, "In progress")
    _expect(set_workflow_on_hold(instance), claim, "hold")
    held = instance.current_step_status.name
    if update_workflow_step_status(instance, "Approved", claim.workflow_context()):
        raise CommandError(f"Demo claim {claim.title!r}: 'Approved' was accepted while on hold.")
    _expect(resume_workflow_instance(instance), claim, "resume")
    resumed = instance.current_step_status.name
    _status(instance, claim, "Approved")
    return [
        f"held at Review ({held!r}), where 'Approved' was refused; resumed to the "
        f"status it had before ({resumed!r}), then approved"
    ]


def cancelled(claim: Claim, instance: WorkflowInstance) -> list[str]:
    _status(instance, claim, "Accepted")
    _expect(cancel_workflow_instance(instance), claim, "cancel")
    return [f"cancelled at Review with its cancellation status {instance.current_step_status}"]


def unevaluable_condition(claim: Claim, instance: WorkflowInstance) -> list[str]:
    _status(instance, claim, "Accepted")
    # The context forgets claim.is_high_risk: the first condition cannot be evaluated,
    # so the engine refuses the update (fail closed) instead of guessing a branch.
    context = {"claim": {"amount": claim.amount}}
    if update_workflow_step_status(instance, "Approved", context):
        raise CommandError(f"Demo claim {claim.title!r}: the incomplete context was accepted.")
    try:
        engine.update_workflow_step_status(instance, "Approved", context)
    except StepsError as error:
        reason = str(error)
    else:
        raise CommandError(f"Demo claim {claim.title!r}: the strict engine accepted the update.")
    # explain() evaluates every outgoing condition and changes nothing.
    checks = explain(instance, context, status="Approved").table()
    fixed = explain(instance, claim.workflow_context(), status="Approved")
    return [
        f"'Approved' refused, nothing changed: {reason}",
        "explain() with the same context, condition by condition:\n" + checks,
        f"with the claim's full data, 'Approved' would move it to {fixed.next_step!r}",
    ]


Scenario = tuple[str, str, bool, Callable[[Claim, WorkflowInstance], list[str]]]

#: (title, amount, high risk, what is done to it)
SCENARIOS: list[Scenario] = [
    ("Cracked windscreen", "850.00", False, low_value),
    ("Storm damage to roof", "24000.00", False, high_value),
    ("Warehouse fire", "7500.00", True, high_risk),
    ("Burst pipe", "3200.00", False, held_and_resumed),
    ("Duplicate of a claim", "850.00", False, cancelled),
    ("Stolen bicycle", "640.00", False, unevaluable_condition),
]


def step_path(instance: WorkflowInstance) -> list[str]:
    """The steps an instance went through, from its history."""
    path: list[str] = []
    for step in instance.history.order_by("timestamp", "id").values_list("to_step_name", flat=True):
        if step and (not path or path[-1] != step):
            path.append(step)
    return path


def run_demo() -> list[ClaimReport]:
    """Create the demo claims, drive each through the workflow, and report on them."""
    load_claims_workflow()
    reports = []
    for title, amount, risky, scenario in SCENARIOS:
        claim = Claim.objects.create(title=title, amount=Decimal(amount), is_high_risk=risky)
        instance = start_workflow_instance(WORKFLOW_NAME, claim)
        if instance is None:
            raise CommandError(f"Could not start workflow {WORKFLOW_NAME!r} for {title!r}.")
        notes = scenario(claim, instance)
        stored = get_workflow_instance_for_object(claim, WORKFLOW_NAME)
        assert stored is not None
        reports.append(
            ClaimReport(
                claim=claim,
                path=step_path(stored),
                step=stored.current_step.name if stored.current_step else "",
                status=stored.current_step_status.name if stored.current_step_status else "",
                lifecycle=stored.get_lifecycle_display(),
                notes=notes,
            )
        )
    return reports


def format_table(reports: list[ClaimReport]) -> str:
    """The reports as a plain-text table, with the notes below it."""
    header = (
        "#",
        "Claim",
        "Amount",
        "High risk",
        "Path (from the history)",
        "Step",
        "Status",
        "Lifecycle",
    )
    rows = [
        (
            str(report.claim.pk),
            report.claim.title,
            f"{report.claim.amount:,.2f}",
            "yes" if report.claim.is_high_risk else "no",
            " -> ".join(report.path),
            report.step,
            report.status,
            report.lifecycle,
        )
        for report in reports
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    right = {0, 2}

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [line(header), line(tuple("-" * width for width in widths))]
    out += [line(row) for row in rows]
    notes = [(report, note) for report in reports for note in report.notes]
    if notes:
        out += ["", "Notes:"]
        for report, note in notes:
            first, *more = note.splitlines()
            out.append(f"  #{report.claim.pk} {report.claim.title}: {first}")
            out += [f"      {line}".rstrip() for line in more]
    return "\n".join(out)


def write_diagram(path: Path) -> Path:
    """Write the claims workflow's diagram: SVG at ``path``, or Mermaid text without Graphviz.

    Returns the path written (``path`` with a ``.mmd`` suffix for Mermaid).
    """
    try:
        svg = workflow_diagram(WORKFLOW_NAME, format="svg")
        assert isinstance(svg, bytes)
        path.write_bytes(svg)
    except DiagramError:  # Graphviz's dot program is not installed
        path = path.with_suffix(".mmd")
        path.write_text(str(workflow_diagram(WORKFLOW_NAME, format="mermaid")))
    return path
