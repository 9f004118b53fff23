"""``manage.py steps_run_timers [--limit N] [--loop SECONDS]``: run the timer sweep."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import close_old_connections

from django_steps.timers import SweepResult, sweep_due_timers


class Command(BaseCommand):
    help = (
        "Give every running workflow instance that is due its step's timeout status. "
        "Runs once (for cron), or with --loop SECONDS every SECONDS until stopped by "
        "SIGINT or SIGTERM (for a container). Safe to run from several places at once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--limit",
            type=int,
            default=None,
            help="Move at most this many instances per sweep (default: all that are due).",
        )
        parser.add_argument(
            "--loop",
            type=float,
            default=None,
            metavar="SECONDS",
            help="Sweep again every SECONDS until stopped, instead of once.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        limit, interval = options["limit"], options["loop"]
        if limit is not None and limit < 1:
            raise CommandError("--limit must be a positive number of instances.")
        if interval is None:
            self.report(sweep_due_timers(limit=limit), options["verbosity"])
            return
        if interval <= 0:
            raise CommandError("--loop must be a positive number of seconds.")
        self.loop(interval, limit, options["verbosity"])

    def loop(self, interval: float, limit: int | None, verbosity: int) -> None:
        """Sweep every ``interval`` seconds; a stop signal ends it after the current sweep."""
        stop = threading.Event()

        def request_stop(signum: int, frame: FrameType | None) -> None:
            stop.set()

        previous = {
            number: signal.signal(number, request_stop)
            for number in (signal.SIGINT, signal.SIGTERM)
        }
        if verbosity >= 1:
            self.stdout.write(f"Sweeping every {interval:g} s; stop with SIGINT or SIGTERM.")
        try:
            while not stop.is_set():
                close_old_connections()  # as between requests: drop a broken connection
                self.report(sweep_due_timers(limit=limit), verbosity)
                stop.wait(interval)
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
            close_old_connections()
        if verbosity >= 1:
            self.stdout.write("Stopped.")

    def report(self, result: SweepResult, verbosity: int) -> None:
        if result.failed:
            self.stderr.write(
                f"{result.failed} due instance(s) could not time out; see the "
                "django_steps.timers log."
            )
        if verbosity >= 2 or (verbosity >= 1 and result.moved):
            self.stdout.write(f"{result.moved} due instance(s) moved.")
        self.stdout.flush()
