"""The timer sweep: give every running instance that is due its step's timeout status.

Run :func:`run_due_timers` from a scheduler: ``manage.py steps_run_timers`` (cron, a
container), the task of :mod:`django_steps.tasks` (Django's task framework) or that of
:mod:`django_steps.contrib.celery` (Celery beat). Every run is idempotent: it moves
what is due at ``now`` and nothing else, so running it often, late or from several
processes at once is safe.

Each due instance is taken in its own transaction, under its row lock; on
PostgreSQL (and any database with ``SELECT ... FOR UPDATE SKIP LOCKED``) a sweeper
skips the rows another one holds, so concurrent sweepers share the work, each
instance is moved by exactly one of them, and none waits on another. An instance
whose timeout fails (a condition that cannot be evaluated, no transition passing, a
signal receiver that raises) is rolled back, logged on the ``django_steps.timers``
logger with its traceback, counted, and skipped for the rest of the run; it is tried
again by the next run.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, NamedTuple

from django.db import connections, router, transaction
from django.db.models import QuerySet
from django.utils import timezone

from . import engine
from .models import WorkflowInstance

logger = logging.getLogger("django_steps.timers")

__all__ = ["SweepResult", "run_due_timers", "sweep_due_timers"]


class SweepResult(NamedTuple):
    """What one sweep did: instances moved, and instances whose timeout failed."""

    moved: int
    failed: int


def run_due_timers(*, now: datetime | None = None, limit: int | None = None) -> int:
    """Set the timeout status of every running instance due at ``now``; return how many.

    ``now`` defaults to the current time (tests pass a later one). ``limit`` caps the
    number of instances moved in this run (the rest wait for the next one). Instances
    whose timeout fails are logged and skipped (see :func:`sweep_due_timers`).
    """
    return sweep_due_timers(now=now, limit=limit).moved


def sweep_due_timers(*, now: datetime | None = None, limit: int | None = None) -> SweepResult:
    """:func:`run_due_timers`, also counting the instances whose timeout failed."""
    now = now or timezone.now()
    using = router.db_for_write(WorkflowInstance)
    claim = _Claim(using, now)
    moved = failed = 0
    skipped: set[Any] = set()
    while limit is None or moved < limit:
        pk = None
        try:
            with transaction.atomic(using=using):
                pk = claim.next(skipped)
                if pk is None:
                    break
                outcome = engine.time_out_workflow_instance(WorkflowInstance(pk=pk), now=now)
        except Exception:
            if pk is None:  # the claim failed: the database, not an instance, is at fault
                raise
            skipped.add(pk)
            failed += 1
            logger.exception("Workflow instance %s could not time out; skipped.", pk)
            continue
        if outcome.changed:
            moved += 1
        else:
            skipped.add(pk)  # already at its timeout status: only its due time was cleared
    if moved or failed:
        logger.info("Timer sweep at %s: %d moved, %d failed.", now.isoformat(), moved, failed)
    return SweepResult(moved, failed)


class _Claim:
    """Takes the next due instance: the claim query, compiled once per sweep.

    Compiling the QuerySet costs more than running it, so its SQL is kept and only
    compiled again when the set of skipped instances grows (rarely).
    """

    def __init__(self, using: str, now: datetime):
        self.using = using
        self.now = now
        self.sql = ""
        self.params: tuple[Any, ...] = ()
        self.skipped = -1
        assert WorkflowInstance._meta.pk is not None
        self.pk_field = WorkflowInstance._meta.pk

    def next(self, skipped: set[Any]) -> Any:
        """Lock the first due instance no other sweeper holds; its key, or ``None``.

        Call inside the transaction the instance is changed in: it holds the lock.
        """
        if self.skipped != len(skipped):
            query = _claim_query(self.using, self.now, skipped)[:1].query
            self.sql, self.params = query.get_compiler(self.using).as_sql()
            self.skipped = len(skipped)
        with connections[self.using].cursor() as cursor:
            cursor.execute(self.sql, self.params)
            row = cursor.fetchone()
        return None if row is None else self.pk_field.to_python(row[0])


def _claim_query(using: str, now: datetime, skipped: set[Any]) -> QuerySet[Any]:
    """The due instances' keys, earliest due first, locked and skipping locked rows.

    It reads the partial index ``django_steps_instance_due`` (instances with a due
    time, by lifecycle), so it costs an index scan however many instances there are.
    """
    features = connections[using].features
    queryset = WorkflowInstance.objects.using(using).overdue(now).order_by("due_at")
    if skipped:
        queryset = queryset.exclude(pk__in=skipped)
    if features.has_select_for_update:
        queryset = queryset.select_for_update(
            skip_locked=features.has_select_for_update_skip_locked,
            of=("self",) if features.has_select_for_update_of else (),
        )
    return queryset.values_list("pk", flat=True)
