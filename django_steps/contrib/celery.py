"""The timer sweep as a Celery task, with the beat schedule that runs it.

Install Celery (``pip install "django-steps[celery]"``); this module registers
``django_steps.run_due_timers`` as a shared task, so it joins your project's Celery
app when the app autodiscovers tasks or imports this module. Schedule it with beat::

    # celery.py of your project
    from django_steps.contrib.celery import beat_schedule

    app.conf.beat_schedule = {**app.conf.beat_schedule, **beat_schedule(every=60)}

Run beat once (one scheduler) and as many workers as you like: each run of the task
takes only instances no other run holds, so overlapping runs share the work.
Only this module imports Celery; the rest of django-steps does not need it.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from .. import timers

__all__ = ["TASK_NAME", "beat_schedule", "run_due_timers"]

#: The registered name of the task.
TASK_NAME = "django_steps.run_due_timers"


@shared_task(name=TASK_NAME, ignore_result=True)
def run_due_timers(limit: int | None = None) -> int:
    """Run :func:`django_steps.timers.run_due_timers` now; how many instances it moved."""
    return timers.run_due_timers(limit=limit)


def beat_schedule(every: float = 60.0, *, limit: int | None = None) -> dict[str, Any]:
    """A ``beat_schedule`` entry running the sweep every ``every`` seconds.

    Each run expires after one interval, so a backlog of runs queued while no worker
    was up collapses instead of running one after another.
    """
    return {
        TASK_NAME: {
            "task": TASK_NAME,
            "schedule": every,
            "kwargs": {"limit": limit},
            "options": {"expires": every},
        }
    }
