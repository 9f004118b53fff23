"""``manage.py steps_check [WORKFLOW ...] [--fail-on-warning]``: validate stored workflows."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_steps.exceptions import StepsError
from django_steps.validation import check_workflows, errors_of, format_problems


class Command(BaseCommand):
    help = (
        "Validate workflow definitions (default: all) and print their errors and warnings. "
        "Exits with status 1 when any workflow has an error, for deploy pipelines."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("workflows", nargs="*", help="Names of the workflows to check.")
        parser.add_argument(
            "--fail-on-warning",
            action="store_true",
            help="Exit with status 1 on warnings too.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            results = check_workflows(options["workflows"])
        except StepsError as error:
            raise CommandError(str(error)) from None
        if not results:
            self.stdout.write("No workflows to check.")
            return
        for line in format_problems(results):
            self.stdout.write(line)
        problems = [problem for _, found in results for problem in found]
        errors = len(errors_of(problems))
        warnings = len(problems) - errors
        summary = f"{len(results)} workflow(s) checked: {errors} error(s), {warnings} warning(s)."
        if errors or (warnings and options["fail_on_warning"]):
            raise CommandError(summary)
        self.stdout.write(self.style.SUCCESS(summary))
