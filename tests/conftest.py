"""Suite-wide pytest hooks: say which database a run used, in its header and summary."""

from __future__ import annotations

import functools
import sqlite3

import pytest
from django.conf import settings


@functools.cache
def database_label() -> str:
    """Name and server version of the default database, e.g. ``postgresql 15.18``."""
    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite {sqlite3.sqlite_version} ({database['NAME']})"
    if database["ENGINE"] == "django.db.backends.postgresql":
        import psycopg

        options = {
            "dbname": database["NAME"],
            "user": database["USER"],
            "password": database["PASSWORD"],
            "host": database["HOST"],
            "port": database["PORT"],
        }
        where = database["HOST"] or "default host"
        try:
            with psycopg.connect(**{key: value for key, value in options.items() if value}) as conn:
                version = conn.execute("SHOW server_version").fetchone()
        except psycopg.Error as error:
            return f"postgresql at {where} (unreachable: {error})"
        return f"postgresql {version[0] if version else '?'} at {where}"
    return database["ENGINE"]


def pytest_report_header() -> str:
    return f"database: {database_label()}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    terminalreporter.write_sep("=", f"database: {database_label()}", bold=True)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-slow",
        action="store_true",
        default=False,
        help="also run tests marked slow (the long reliability runs of make reliability)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``postgres`` tests on other databases and ``slow`` ones without --run-slow."""
    on_postgres = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    run_slow = config.getoption("--run-slow")
    needs_postgres = pytest.mark.skip(reason="needs PostgreSQL: run with scripts/with-postgres")
    too_slow = pytest.mark.skip(reason="long run: make reliability (or pytest --run-slow)")
    for item in items:
        if item.get_closest_marker("postgres") and not on_postgres:
            item.add_marker(needs_postgres)
        if item.get_closest_marker("slow") and not run_slow:
            item.add_marker(too_slow)
