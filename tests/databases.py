"""The ``DATABASES`` setting shared by the test and benchmark settings, from the environment."""

from __future__ import annotations

import os
from typing import Any


def databases_from_environment(choice_variable: str, sqlite_name_variable: str) -> dict[str, Any]:
    """SQLite (in memory unless ``sqlite_name_variable`` names a file) or PostgreSQL.

    ``choice_variable`` holds ``sqlite`` (the default) or ``postgres``; PostgreSQL reads
    the libpq variables ``PGHOST``, ``PGPORT``, ``PGUSER``, ``PGPASSWORD`` and
    ``PGDATABASE``, which ``scripts/with-postgres`` exports.
    """
    choice = os.environ.get(choice_variable, "sqlite")
    if choice == "postgres":
        database = {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("PGDATABASE", "django_steps"),
            "USER": os.environ.get("PGUSER", "postgres"),
            "PASSWORD": os.environ.get("PGPASSWORD", ""),
            "HOST": os.environ.get("PGHOST", ""),
            "PORT": os.environ.get("PGPORT", ""),
        }
    elif choice == "sqlite":
        database = {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get(sqlite_name_variable, ":memory:"),
        }
    else:
        raise RuntimeError(f"{choice_variable} must be 'sqlite' or 'postgres', not {choice!r}")
    return {"default": database}
