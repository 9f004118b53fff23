"""``manage.py steps_import FILE [--dry-run]``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_steps.exceptions import StepsError
from django_steps.transfer import import_file


class Command(BaseCommand):
    help = (
        "Import workflow definitions from a django-steps/1 YAML or JSON file. The whole file "
        "is validated first and written in one transaction; existing workflows are updated "
        "in place, matching steps, statuses and transitions by name."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="Definitions file (.yaml, .yml or .json).")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Validate and report what would change, writing nothing.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = import_file(options["file"], dry_run=options["dry_run"])
        except StepsError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(str(report))
