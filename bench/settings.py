"""Django settings for ``make bench``: django-steps and a django-fsm-2 app, one database.

``DJANGO_STEPS_BENCH_DB`` chooses the database: ``sqlite`` (default, in memory) or
``postgres``, which reads the libpq variables that ``scripts/with-postgres`` exports.
``DJANGO_STEPS_BENCH_CEL`` chooses the CEL backend (``celpy`` or ``cel-expr``).
"""

from __future__ import annotations

import os

from tests.databases import databases_from_environment

SECRET_KEY = "django-steps-bench-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django_steps",
    "bench.fsmapp",
]

DJANGO_STEPS = {"CEL_BACKEND": os.environ.get("DJANGO_STEPS_BENCH_CEL", "celpy")}

DATABASES = databases_from_environment("DJANGO_STEPS_BENCH_DB", "DJANGO_STEPS_BENCH_SQLITE_NAME")
