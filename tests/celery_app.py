"""The Celery app of tests/test_timer_workers.py: the test's Redis, django-steps' beat entry.

Workers and beat start with ``celery -A tests.celery_app``; the broker's address is
in ``DJANGO_STEPS_TEST_REDIS_URL`` (a unix socket of the Redis server the test started).
"""

from __future__ import annotations

import os

import django
from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
django.setup()

from django_steps.contrib.celery import beat_schedule  # noqa: E402  (needs django.setup())

app = Celery("django_steps_tests")
app.conf.broker_url = os.environ["DJANGO_STEPS_TEST_REDIS_URL"]
app.conf.broker_connection_retry_on_startup = True
app.conf.task_ignore_result = True
app.conf.worker_hijack_root_logger = False
app.conf.beat_schedule = beat_schedule(every=float(os.environ.get("DJANGO_STEPS_TEST_BEAT", "0.5")))
