"""Draw a compiled workflow machine as DOT, Mermaid, SVG or PNG, with no database.

The structure comes from python-statemachine's diagram extractor
(:func:`statemachine.contrib.diagram.extract.extract`) run on the compiled machine
class, or on a machine bound to an instance's state so the current step is
highlighted. A step's node also names its due time and timeout status, its assignee
group and, after a lock mark, its statuses guarded by a permission or an actor
condition. Transitions are relabelled with their CEL condition, their position in
the order tried and their priority. Holding, resuming and cancelling are not drawn:
they change an instance's status, never its step, and are no machine transitions.

Mermaid text comes from python-statemachine's Mermaid renderer. DOT text is written
here, so it needs neither pydot nor Graphviz and is byte-for-byte stable (the
library's pydot renderer names nodes after object ids). SVG and PNG run the
Graphviz ``dot`` program, within a time limit when one is given. Control characters
in names and conditions are drawn as visible symbols, so the SVG is always valid XML.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from datetime import timedelta

from statemachine.contrib.diagram.extract import extract
from statemachine.contrib.diagram.model import DiagramGraph, DiagramTransition, StateType
from statemachine.contrib.diagram.renderers.mermaid import MermaidRenderer

from ..exceptions import DiagramError
from .definition import StepDefinition, TransitionDefinition, transition_name
from .lifecycle import Lifecycle
from .runner import MachineState, WorkflowRunner

__all__ = [
    "FORMATS",
    "GRAPHVIZ_PACKAGE",
    "GRAPHVIZ_PROGRAM",
    "IMAGE_FORMATS",
    "TEXT_FORMATS",
    "diagram_graph",
    "dot_source",
    "mermaid_source",
    "render_diagram",
    "run_dot",
    "transition_label",
]

TEXT_FORMATS = ("dot", "mermaid")
IMAGE_FORMATS = ("svg", "png")
FORMATS = TEXT_FORMATS + IMAGE_FORMATS

GRAPHVIZ_PROGRAM = "dot"
GRAPHVIZ_PACKAGE = "graphviz"

_CURRENT_FILL = "#40E0D0"


def render_diagram(
    runner: WorkflowRunner,
    *,
    format: str = "dot",
    state: MachineState | None = None,
    timeout: float | None = None,
) -> str | bytes:
    """The diagram of ``runner``'s workflow: ``str`` for dot/mermaid, ``bytes`` for svg/png.

    With ``state``, its current step is highlighted and labelled with its status.
    ``timeout`` bounds Graphviz's run, in seconds (``None``: no bound). Raises
    :class:`~django_steps.exceptions.DiagramError` for an unknown format, or when
    SVG/PNG is asked for and the Graphviz ``dot`` program is missing, fails or
    takes longer than ``timeout`` (it is then stopped).
    """
    if format not in FORMATS:
        raise DiagramError(
            f"Unknown diagram format {format!r}; choose one of {', '.join(FORMATS)}."
        )
    graph = diagram_graph(runner, state)
    if format == "mermaid":
        return mermaid_source(graph)
    dot = dot_source(graph)
    if format == "dot":
        return dot
    return run_dot(dot, format, timeout=timeout)


def diagram_graph(runner: WorkflowRunner, state: MachineState | None = None) -> DiagramGraph:
    """python-statemachine's diagram model of the workflow, relabelled for django-steps."""
    machine = runner.machine_class if state is None else runner.machine(state)
    graph = extract(machine)
    definition = runner.definition
    names = runner.machine_class.step_names
    transitions: list[DiagramTransition] = []
    outgoing: dict[str, list[DiagramTransition]] = {}
    for drawn_transition in graph.transitions:
        outgoing.setdefault(drawn_transition.source, []).append(drawn_transition)
    for state_id, drawn in outgoing.items():
        ordered = definition.transitions_from(names[state_id])
        if len(ordered) != len(drawn):
            raise DiagramError(
                f"Workflow {definition.name!r}: the machine of step {names[state_id]!r} has "
                f"{len(drawn)} transitions but the definition has {len(ordered)}; "
                "the machine is out of date."
            )
        for position, (edge, transition) in enumerate(zip(drawn, ordered, strict=True), start=1):
            label = transition_label(transition, position, len(ordered))
            transitions.append(replace(edge, event=label, guards=[]))
    states = []
    for item in graph.states:
        name = item.name
        step = definition.step(names.get(item.id, ""))
        if step is not None and step.due_after is not None and step.timeout_status:
            name = f"{name}\ndue after {duration_text(step.due_after)}: {step.timeout_status}"
        if step is not None:
            name += "".join(f"\n{line}" for line in rule_lines(step))
        if item.is_active and state is not None:
            details = [state.status or ""]
            lifecycle = state.lifecycle.value.replace("_", " ")
            if state.lifecycle is not Lifecycle.RUNNING and lifecycle != details[0].lower():
                details.append(lifecycle)
            name = f"{name}\n({', '.join(details)})"
        states.append(replace(item, name=name, actions=[]))
    return replace(graph, name=definition.name, states=states, transitions=transitions)


def duration_text(duration: timedelta) -> str:
    """``"3 days 4 h"``, ``"1 h 30 min"``, ``"45 s"``: a due time for a step's label."""
    seconds = int(duration.total_seconds())
    parts = []
    for size, unit in ((86400, "days"), (3600, "h"), (60, "min"), (1, "s")):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {'day' if unit == 'days' and count == 1 else unit}")
    return " ".join(parts) or "0 s"


def rule_lines(step: StepDefinition) -> list[str]:
    """The lines a step's node carries about who acts there: its assignee group and its
    statuses with a rule, after a lock mark (``"🔒 Approved, Checked"``)."""
    lines = []
    if step.assignee_group:
        lines.append(f"group: {step.assignee_group}")
    guarded = [status.name for status in step.statuses if status.has_rule]
    if guarded:
        lines.append(f"\N{LOCK} {', '.join(guarded)}")
    return lines


def transition_label(transition: TransitionDefinition, position: int, count: int) -> str:
    """``"1. claim.amount > 10000.0 (priority 20)"``; no number when it is the only one."""
    condition = " ".join(transition.condition.split()) or "always"
    if transition.name and transition.name != transition_name(
        transition.from_step, transition.to_step
    ):
        condition = f"{transition.name}: {condition}"
    if count == 1:
        return condition
    return f"{position}. {condition} (priority {transition.priority})"


def dot_source(graph: DiagramGraph) -> str:
    """The graph in the DOT language (steps as rounded boxes, final steps doubled)."""
    lines = [
        f"digraph {_quote(graph.name)} {{",
        f"    graph [label={_quote(graph.name)}, labelloc=t, rankdir=LR, "
        'fontname="Helvetica", fontsize=12];',
        '    node [shape=box, style="rounded,filled", fillcolor=white, '
        'fontname="Helvetica", fontsize=11, penwidth=1.5];',
        '    edge [fontname="Helvetica", fontsize=9];',
        '    "__start__" [label="", shape=circle, style=filled, fillcolor=black, '
        "width=0.15, height=0.15, fixedsize=true];",
    ]
    for state in graph.states:
        attributes = [f"label={_quote(state.name)}"]
        if state.type is StateType.FINAL:
            attributes.append("peripheries=2")
        if state.is_active:
            attributes += [f"fillcolor={_quote(_CURRENT_FILL)}", "penwidth=3"]
        lines.append(f"    {_quote(state.id)} [{', '.join(attributes)}];")
    initial = next((state for state in graph.states if state.is_initial), None)
    if initial is not None:
        lines.append(f'    "__start__" -> {_quote(initial.id)};')
    for transition in graph.transitions:
        for target in transition.targets:
            lines.append(
                f"    {_quote(transition.source)} -> {_quote(target)} "
                f"[label={_quote(transition.event)}];"
            )
    lines.append("}")
    return "\n".join(lines) + "\n"


# Mermaid has no escapes that its renderers decode everywhere (entity codes show up
# raw in state diagrams), so the two characters it cannot hold are replaced by
# lookalikes: '"' in a quoted state name and ';' (a statement separator) in a label.
_MERMAID_NAME = str.maketrans({'"': "'", "\n": " "})
_MERMAID_LABEL = str.maketrans({";": "\u037e", "\n": " "})


def _mermaid_safe(graph: DiagramGraph) -> DiagramGraph:
    """The graph with names and labels Mermaid can parse (see above)."""
    return replace(
        graph,
        states=[
            replace(s, name=visible_text(s.name).translate(_MERMAID_NAME)) for s in graph.states
        ],
        transitions=[
            replace(t, event=visible_text(t.event).translate(_MERMAID_LABEL))
            for t in graph.transitions
        ],
    )


def mermaid_source(graph: DiagramGraph) -> str:
    """The graph as Mermaid ``stateDiagram-v2`` text (python-statemachine's renderer).

    The renderer marks the current step with ``id:::active``, which Mermaid 11 ignores
    in state diagrams; ``class id active`` is used instead.
    """
    text = MermaidRenderer().render(_mermaid_safe(graph))
    lines = [
        f"    class {line.strip()[: -len(':::active')]} active"
        if line.startswith("    ") and line.endswith(":::active")
        else line
        for line in text.splitlines()
    ]
    return "\n".join(lines) + "\n"


# Control characters (C0, DEL, C1) cannot appear in XML 1.0 (and U+0085 or U+2028
# would break a line): each is drawn as a visible symbol instead, from Unicode's
# Control Pictures block for C0 and DEL, and U+FFFD for the others.
_VISIBLE_CONTROLS = {
    **{code: 0x2400 + code for code in range(0x20) if code != 0x0A},
    0x7F: 0x2421,
    **dict.fromkeys(range(128, 160), 65533),
    0x2028: 0xFFFD,
    0x2029: 0xFFFD,
    0xFFFE: 0xFFFD,
    0xFFFF: 0xFFFD,
}


def visible_text(text: str) -> str:
    """``text`` with every character XML or a diagram cannot hold replaced by a symbol.

    Newlines are kept (they separate a step's name from its status); lone surrogates
    become U+FFFD.
    """
    text = text.translate(_VISIBLE_CONTROLS)
    if any("\ud800" <= char <= "\udfff" for char in text):
        text = "".join("\ufffd" if "\ud800" <= char <= "\udfff" else char for char in text)
    return text


def _quote(text: str) -> str:
    escaped = visible_text(text).replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", "\\n") + '"'


def run_dot(dot: str, format: str, *, timeout: float | None = None) -> bytes:
    """Render DOT text with Graphviz, stopping it after ``timeout`` seconds.

    Raises :class:`DiagramError` naming ``dot`` when it is missing, fails, or runs
    out of time.
    """
    program = shutil.which(GRAPHVIZ_PROGRAM)
    if program is None:
        raise DiagramError(
            f"Drawing {format.upper()} needs the Graphviz program {GRAPHVIZ_PROGRAM!r}, which "
            f"is not on PATH. Install Graphviz (Debian/Ubuntu: apt-get install "
            f"{GRAPHVIZ_PACKAGE}; macOS: brew install graphviz), or use the 'dot' or "
            "'mermaid' text formats, which need no program.",
            program=GRAPHVIZ_PROGRAM,
        )
    try:
        completed = subprocess.run(
            [program, f"-T{format}"],
            input=dot.encode("utf-8"),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise DiagramError(
            f"Graphviz took longer than {timeout:g} s to draw the diagram as {format.upper()} "
            "and was stopped (setting DIAGRAM_TIMEOUT). Use the 'mermaid' or 'dot' text "
            "formats, or raise the limit.",
            program=GRAPHVIZ_PROGRAM,
        ) from None
    except OSError as error:
        raise DiagramError(
            f"Graphviz could not be run to draw the diagram as {format.upper()}: {error}",
            program=GRAPHVIZ_PROGRAM,
        ) from None
    if completed.returncode != 0:
        message = completed.stderr.decode("utf-8", "replace").strip()[:500]
        raise DiagramError(
            f"Graphviz could not draw the diagram as {format.upper()} "
            f"(exit status {completed.returncode}): {message}",
            program=GRAPHVIZ_PROGRAM,
        )
    return completed.stdout
