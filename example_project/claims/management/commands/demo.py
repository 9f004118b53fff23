"""``manage.py demo``: run the demo claims through the workflow and print the outcome."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from claims.demo import format_table, run_demo, write_diagram


class Command(BaseCommand):
    help = "Run several claims through the claims workflow and print their paths."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--diagram",
            type=Path,
            default=Path(settings.BASE_DIR) / "claims-workflow.svg",
            help="Where to write the workflow diagram (SVG; without Graphviz, Mermaid text "
            "with a .mmd suffix).",
        )

    def handle(self, *args: Any, diagram: Path, **options: Any) -> None:
        reports = run_demo()
        self.stdout.write(format_table(reports))
        self.stdout.write("")
        self.stdout.write(f"Workflow diagram: {write_diagram(diagram).resolve()}")
