"""``manage.py steps_export [WORKFLOW ...] [--format yaml|json] [-o FILE]``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_steps.exceptions import StepsError
from django_steps.machines.serialization import FILE_FORMATS, format_for_path
from django_steps.transfer import export_definitions


class Command(BaseCommand):
    help = (
        "Export workflow definitions (default: all) as a django-steps/1 YAML or JSON file, "
        "for steps_import."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("workflows", nargs="*", help="Names of the workflows to export.")
        parser.add_argument(
            "--format",
            choices=FILE_FORMATS,
            help="File format (default: from the -o extension, else yaml).",
        )
        parser.add_argument("-o", "--output", help="File to write (default: standard output).")

    def handle(self, *args: Any, **options: Any) -> None:
        output = options["output"]
        format = options["format"] or (format_for_path(output) if output else "yaml")
        try:
            text = export_definitions(options["workflows"], format=format)
        except StepsError as error:
            raise CommandError(str(error)) from None
        if output:
            Path(output).write_text(text, encoding="utf-8")
            self.stderr.write(f"Wrote {output}.")
        else:
            self.stdout.write(text, ending="")
