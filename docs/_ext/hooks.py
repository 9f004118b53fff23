"""MkDocs hooks: draw the example project's claims workflow into the site at build time.

The overview shows ``img/claims-workflow.svg``, drawn from
``example_project/claims/workflows/claims.yaml`` with django-steps' own diagrams (no
database), so the picture is always the workflow the demo runs. Without Graphviz's
``dot`` program the image is a short notice instead, and the build still passes.
"""

from __future__ import annotations

import logging
from html import escape
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

from django_steps.exceptions import DiagramError
from django_steps.machines.diagram import render_diagram, run_dot
from django_steps.machines.runner import WorkflowRunner
from django_steps.machines.serialization import read_definitions

SOURCE = Path("example_project/claims/workflows/claims.yaml")
TARGET = "img/claims-workflow.svg"

log = logging.getLogger("mkdocs.hooks.claims_diagram")


def _notice(message: str) -> bytes:
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="640" height="40">'
        f'<text x="10" y="25" font-family="sans-serif" font-size="14">{escape(message)}</text>'
        "</svg>"
    ).encode()


def on_files(files: Files, config: Any) -> Files:
    (definition,) = read_definitions(Path(config["config_file_path"]).parent / SOURCE)
    dot = str(render_diagram(WorkflowRunner(definition), format="dot"))
    try:
        svg = run_dot(dot.replace("rankdir=LR", "rankdir=TB", 1), "svg")  # fits the page
    except DiagramError as error:
        log.info("Drawing %s without Graphviz: %s", TARGET, error)
        svg = _notice("Install Graphviz (the dot program) to draw this diagram.")
    files.append(File.generated(config, TARGET, content=svg))
    return files
