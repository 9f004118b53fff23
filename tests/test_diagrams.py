"""Diagrams: DOT and Mermaid text always, SVG/PNG through Graphviz, and steps_diagram."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pydot
import pytest
from django.core.management import CommandError, call_command

from django_steps.checks import check_settings
from django_steps.diagrams import workflow_diagram
from django_steps.exceptions import DiagramError
from django_steps.machines import MachineState, WorkflowDefinition, WorkflowRunner
from django_steps.machines.diagram import render_diagram
from django_steps.services import (
    set_workflow_on_hold,
    start_workflow_instance,
    update_workflow_step_status,
)
from tests.factories import claims_definition, create_workflow
from tests.programs import requires_graphviz
from tests.testapp.models import Claim


@pytest.fixture
def instance(claims):
    instance = start_workflow_instance("Claims", Claim.objects.create(title="Window"))
    update_workflow_step_status(instance, "Accepted")
    instance.refresh_from_db()
    return instance


def parse_dot(text: str) -> pydot.Dot:
    graphs = pydot.graph_from_dot_data(text)
    assert graphs, f"pydot could not parse:\n{text}"
    return graphs[0]


def nodes(graph: pydot.Dot) -> dict[str, pydot.Node]:
    defaults = {"node", "edge", "graph"}  # pydot lists default-attribute statements as nodes
    return {
        node.get_name().strip('"'): node
        for node in graph.get_nodes()
        if node.get_name() not in defaults
    }


def edges(graph: pydot.Dot) -> dict[tuple[str, str], str]:
    return {
        (edge.get_source().strip('"'), edge.get_destination().strip('"')): (
            edge.get("label") or ""
        ).strip('"')
        for edge in graph.get_edges()
    }


def test_dot_has_steps_conditions_priorities_and_final_steps(definition):
    graph = parse_dot(render_diagram(WorkflowRunner(definition), format="dot"))
    found = nodes(graph)
    labels = {name: node.get("label").strip('"') for name, node in found.items()}
    assert labels["step_senior_review"] == "Senior Review"
    assert found["step_closed"].get("peripheries") == "2"
    assert found["step_payment"].get("peripheries") is None
    drawn = edges(graph)
    assert drawn[("__start__", "step_submitted")] == ""
    assert drawn[("step_review", "step_investigation")] == (
        "1. claim.is_high_risk == true (priority 30)"
    )
    assert drawn[("step_review", "step_senior_review")] == (
        "2. claim.amount > 10000.0 (priority 20)"
    )
    assert drawn[("step_review", "step_payment")] == "3. always (priority 0)"
    assert drawn[("step_payment", "step_closed")] == "always"
    # holding, resuming and cancelling change no step: nothing loops back
    assert not [pair for pair in drawn if pair[0] == pair[1]]
    assert len(drawn) == 8


def test_dot_text_is_stable_and_needs_neither_pydot_nor_graphviz(definition, monkeypatch):
    runner = WorkflowRunner(definition)
    first = render_diagram(runner, format="dot")
    monkeypatch.setitem(sys.modules, "pydot", None)  # import pydot now fails
    monkeypatch.setenv("PATH", "")
    assert render_diagram(WorkflowRunner(definition), format="dot") == first


@requires_graphviz
def test_dot_is_accepted_by_graphviz(definition):
    dot = render_diagram(WorkflowRunner(definition), format="dot")
    completed = subprocess.run(
        ["dot", "-Tsvg"], input=dot.encode(), capture_output=True, check=False
    )
    assert completed.returncode == 0, completed.stderr.decode()
    assert b"<svg" in completed.stdout


def test_names_and_conditions_with_quotes_and_backslashes_are_escaped():
    data = claims_definition()
    data["steps"][1]["name"] = 'Review "A"\\B'
    for transition in data["transitions"]:
        for end in ("from", "to"):
            if transition[end] == "Review":
                transition[end] = 'Review "A"\\B'
    data["transitions"][1]["condition"] = 'claim.kind == "x\\"y" || claim.is_high_risk'
    data["transitions"][2]["condition"] = 'claim.note == "a;b" && claim.amount > 10000.0'
    runner = WorkflowRunner(WorkflowDefinition.from_dict(data))
    graph = parse_dot(render_diagram(runner, format="dot"))
    labels = {name: node.get("label") for name, node in nodes(graph).items()}
    assert labels["step_review_a_b"] == '"Review \\"A\\"\\\\B"'
    mermaid = render_diagram(runner, format="mermaid")
    # Mermaid decodes no escapes in state diagrams: '"' in a state name and ';' in a
    # label (a statement separator) become lookalikes; the rest is kept as written.
    assert "state \"Review 'A'\\B\" as step_review_a_b" in mermaid
    assert 'claim.kind == "x\\"y" || claim.is_high_risk' in mermaid
    assert 'claim.note == "a\u037eb" && claim.amount > 10000.0' in mermaid
    assert ";" not in mermaid


def test_mermaid(definition):
    text = render_diagram(WorkflowRunner(definition), format="mermaid")
    assert isinstance(text, str)
    assert text.startswith("stateDiagram-v2\n")
    lines = text.splitlines()
    assert '    state "Senior Review" as step_senior_review' in lines
    assert "    [*] --> step_submitted" in lines
    assert "    step_closed --> [*]" in lines
    assert (
        "    step_review --> step_senior_review : 2. claim.amount > 10000.0 (priority 20)" in lines
    )
    assert "active" not in text


@pytest.mark.django_db
def test_instance_diagram_highlights_the_current_step(instance):
    graph = parse_dot(workflow_diagram(instance=instance))
    found = nodes(graph)
    review = found["step_review"]
    assert review.get("label") == '"Review\\n(Pending)"'
    assert review.get("fillcolor") == '"#40E0D0"'
    highlighted = [n for n, node in found.items() if node.get("fillcolor") == '"#40E0D0"']
    assert highlighted == ["step_review"]

    set_workflow_on_hold(instance)
    instance.refresh_from_db()
    mermaid = workflow_diagram("Claims", format="mermaid", instance=instance)
    assert 'state "Review (On hold)" as step_review' in mermaid
    # Mermaid 11 ignores "id:::active" in state diagrams; "class id active" works.
    assert "    class step_review active" in mermaid.splitlines()
    assert ":::" not in mermaid


@pytest.mark.django_db
def test_instance_of_another_workflow_is_refused(instance):
    data = claims_definition()
    data["name"] = "Other"
    create_workflow(data)
    with pytest.raises(ValueError, match="belongs to workflow 'Claims'"):
        workflow_diagram("Other", instance=instance)


@requires_graphviz
@pytest.mark.django_db
def test_svg_and_png(claims):
    svg = workflow_diagram(claims, format="svg")
    assert isinstance(svg, bytes)
    assert b"<svg" in svg
    assert b"Senior Review" in svg
    png = workflow_diagram("Claims", format="png")
    assert isinstance(png, bytes)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.parametrize("format", ["svg", "png"])
def test_missing_graphviz_names_the_program_and_the_package(definition, monkeypatch, format):
    monkeypatch.setenv("PATH", "")
    with pytest.raises(DiagramError) as raised:
        render_diagram(WorkflowRunner(definition), format=format)
    message = str(raised.value)
    assert "'dot'" in message
    assert "apt-get install graphviz" in message
    assert raised.value.program == "dot"


def test_unknown_format(definition):
    with pytest.raises(DiagramError, match="Unknown diagram format 'gif'; choose one of dot,"):
        render_diagram(WorkflowRunner(definition), format="gif")


def test_current_state_may_be_given_without_a_database(definition):
    runner = WorkflowRunner(definition)
    dot = render_diagram(runner, state=MachineState(step="Payment", status="Scheduled"))
    assert '"step_payment" [label="Payment\\n(Scheduled)", fillcolor="#40E0D0"' in dot


def slow_dot(directory: Path) -> Path:
    """A fake Graphviz ``dot`` that logs each run to ``runs`` and never finishes in time."""
    program = directory / "dot"
    program.write_text(f"#!/bin/sh\necho run >> {directory / 'runs'}\nexec /bin/sleep 60\n")
    program.chmod(0o755)
    return directory


def test_a_graphviz_that_takes_too_long_is_stopped(definition, monkeypatch, tmp_path):
    # Finding 9 of issue 14: Graphviz ran with no time limit (47.5 s for 150 steps).
    monkeypatch.setenv("PATH", str(slow_dot(tmp_path)))
    with pytest.raises(DiagramError, match=r"longer than 0.2 s .* DIAGRAM_TIMEOUT") as raised:
        render_diagram(WorkflowRunner(definition), format="svg", timeout=0.2)
    assert raised.value.program == "dot"


@pytest.mark.django_db
def test_workflow_diagram_uses_the_diagram_timeout_setting(claims, monkeypatch, settings, tmp_path):
    monkeypatch.setenv("PATH", str(slow_dot(tmp_path)))
    settings.DJANGO_STEPS = {"DIAGRAM_TIMEOUT": 0.2}
    with pytest.raises(DiagramError, match=r"longer than 0\.2 s"):
        workflow_diagram("Claims", format="svg")


CONTROL_NAME = "Pay\x08ment\x85 \x1b[31m\u2028end\x7f"


@requires_graphviz
def test_control_characters_in_names_still_give_valid_svg():
    # Finding 13 of issue 14: a control character in a step name made the SVG invalid XML.
    data = claims_definition()
    for step in data["steps"]:
        if step["name"] == "Payment":
            step["name"] = CONTROL_NAME
    for transition in data["transitions"]:
        for end in ("from", "to"):
            if transition[end] == "Payment":
                transition[end] = CONTROL_NAME
    runner = WorkflowRunner(WorkflowDefinition.from_dict(data))
    svg = render_diagram(runner, format="svg")
    assert isinstance(svg, bytes)
    texts = " ".join(element.text or "" for element in ET.fromstring(svg).iter())
    assert "Pay\u2408ment" in texts  # drawn as a visible symbol
    assert parse_dot(render_diagram(runner, format="dot"))
    assert "\x08" not in render_diagram(runner, format="mermaid")


# --- steps_diagram -------------------------------------------------------------------


@pytest.mark.django_db
def test_command_writes_dot_to_stdout(claims, capsys):
    call_command("steps_diagram", "Claims")
    parse_dot(capsys.readouterr().out)


@pytest.mark.django_db
def test_command_writes_mermaid_for_an_instance(instance, capsys):
    call_command("steps_diagram", "Claims", "--instance", str(instance.pk), "--format", "mermaid")
    out = capsys.readouterr().out
    assert out.startswith("stateDiagram-v2")
    assert "class step_review active" in out


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        pytest.param("claims.svg", b"<svg", marks=requires_graphviz),
        pytest.param("claims.png", b"\x89PNG", marks=requires_graphviz),
        ("claims.dot", b"digraph"),
    ],
)
def test_command_format_follows_the_output_extension(claims, tmp_path, filename, expected):
    target = tmp_path / filename
    call_command("steps_diagram", "Claims", "-o", str(target))
    assert expected in target.read_bytes()[:400]


@pytest.mark.django_db
def test_command_errors_name_what_is_missing(claims, monkeypatch):
    with pytest.raises(CommandError, match="No workflow named 'Nope'"):
        call_command("steps_diagram", "Nope")
    with pytest.raises(CommandError, match="No instance 'not-a-uuid' of workflow 'Claims'"):
        call_command("steps_diagram", "Claims", "--instance", "not-a-uuid")
    monkeypatch.setenv("PATH", "")
    with pytest.raises(CommandError, match="apt-get install graphviz"):
        call_command("steps_diagram", "Claims", "--format", "svg")


@pytest.mark.parametrize("value", [0, -1, "5", True, float("nan")])
def test_the_diagram_timeout_must_be_a_positive_number_or_none(value, settings):
    settings.DJANGO_STEPS = {"DIAGRAM_TIMEOUT": value}
    messages = check_settings()
    assert [message.id for message in messages] == ["django_steps.E003"]
    assert "DIAGRAM_TIMEOUT" in messages[0].msg


@pytest.mark.parametrize("value", [None, 0.5, 30])
def test_a_positive_diagram_timeout_or_none_is_accepted(value, settings):
    settings.DJANGO_STEPS = {"DIAGRAM_TIMEOUT": value}
    assert check_settings() == []
