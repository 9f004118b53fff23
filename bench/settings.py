"""Django settings for ``make bench``: django-steps and a django-fsm-2 app, one database.

``DJANGO_STEPS_BENCH_DB`` chooses the database: ``sqlite`` (default, in memory) or
``postgres``, which reads the libpq variables that ``scripts/with-postgres`` exports.
``DJANGO_STEPS_BENCH_CEL`` chooses the CEL backend (``celpy`` or ``cel-expr``).
"""

from __future__ import annotations

import os

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

BENCH_DB = os.environ.get("DJANGO_STEPS_BENCH_DB", "sqlite")

if BENCH_DB == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("PGDATABASE", "django_steps"),
            "USER": os.environ.get("PGUSER", "postgres"),
            "PASSWORD": os.environ.get("PGPASSWORD", ""),
            "HOST": os.environ.get("PGHOST", ""),
            "PORT": os.environ.get("PGPORT", ""),
        }
    }
elif BENCH_DB == "sqlite":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("DJANGO_STEPS_BENCH_SQLITE_NAME", ":memory:"),
        }
    }
else:
    raise RuntimeError(f"DJANGO_STEPS_BENCH_DB must be 'sqlite' or 'postgres', not {BENCH_DB!r}")
