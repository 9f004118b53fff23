"""``manage.py steps_diagram WORKFLOW [--instance ID] [--format ...] [-o FILE]``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_steps.diagrams import workflow_diagram
from django_steps.exceptions import StepsError
from django_steps.machines.diagram import FORMATS
from django_steps.models import WorkflowInstance


class Command(BaseCommand):
    help = (
        "Draw a workflow as DOT, Mermaid, SVG or PNG; with --instance, highlight the "
        "instance's current step. SVG and PNG need Graphviz's 'dot' program."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("workflow", help="Name of the workflow.")
        parser.add_argument("--instance", help="Id of a workflow instance to highlight.")
        parser.add_argument(
            "--format",
            choices=FORMATS,
            help="Output format (default: from the -o extension, else dot).",
        )
        parser.add_argument("-o", "--output", help="File to write (default: standard output).")

    def handle(self, *args: Any, **options: Any) -> None:
        output = options["output"]
        format = options["format"]
        if format is None:
            suffix = Path(output).suffix.lower().lstrip(".") if output else ""
            format = {"mmd": "mermaid", "gv": "dot"}.get(suffix, suffix)
            if format not in FORMATS:
                format = "dot"
        instance = None
        if options["instance"]:
            try:
                instance = WorkflowInstance.objects.select_related("workflow").get(
                    pk=options["instance"], workflow__name=options["workflow"]
                )
            except (WorkflowInstance.DoesNotExist, ValidationError, ValueError):
                raise CommandError(
                    f"No instance {options['instance']!r} of workflow {options['workflow']!r}."
                ) from None
        try:
            diagram = workflow_diagram(options["workflow"], format=format, instance=instance)
        except StepsError as error:
            raise CommandError(str(error)) from None
        data = diagram.encode("utf-8") if isinstance(diagram, str) else diagram
        if output:
            Path(output).write_bytes(data)
            self.stderr.write(f"Wrote {format} diagram of {options['workflow']!r} to {output}.")
        elif isinstance(diagram, str):
            self.stdout.write(diagram, ending="")
        else:
            sys.stdout.buffer.write(data)
