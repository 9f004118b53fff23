"""The timer sweep as a task of Django's task framework (``django.tasks``).

Django 6 ships the framework as ``django.tasks``; on Django 4.2 and 5.2 install the
``django-tasks`` backport (``pip install "django-steps[tasks]"``). Enqueue
:data:`run_due_timers` from whatever runs periodically (cron, a scheduler) and let a
worker of your task backend run it::

    from django_steps.tasks import run_due_timers

    run_due_timers.enqueue()

Only this module imports the framework; the rest of django-steps does not need it.
"""

from __future__ import annotations

from importlib.util import find_spec

from . import timers

if find_spec("django.tasks") is not None:
    from django.tasks import task
else:
    from django_tasks import task  # type: ignore[no-redef]

__all__ = ["run_due_timers"]


@task()
def run_due_timers(limit: int | None = None) -> int:
    """Run :func:`django_steps.timers.run_due_timers` now; how many instances it moved."""
    return timers.run_due_timers(limit=limit)
