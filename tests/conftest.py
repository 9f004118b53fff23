"""Suite-wide pytest hooks.

They say which database a run used (in its header and summary), and skip, or under
``CI=true`` fail, the tests marked ``requires_program`` whose program is missing
(``tests/programs.py``, which also explains ``DJANGO_STEPS_TEST_HIDE_PROGRAMS``).
"""

from __future__ import annotations

import functools
import os
import shutil
import sqlite3

import pytest
from django.conf import settings

from tests.programs import HIDE_VARIABLE, hide_programs, in_ci, missing_program, need_program


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


def pytest_report_header() -> list[str]:
    hidden = os.environ.get(HIDE_VARIABLE)
    return [f"database: {database_label()}"] + ([f"hidden programs: {hidden}"] if hidden else [])


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    terminalreporter.write_sep("=", f"database: {database_label()}", bold=True)


def pytest_configure(config: pytest.Config) -> None:
    """Take the programs named in ``DJANGO_STEPS_TEST_HIDE_PROGRAMS`` off PATH for the run."""
    hidden = {name.strip() for name in os.environ.get(HIDE_VARIABLE, "").split(",")} - {""}
    if hidden:
        path = os.environ["PATH"]
        copies = hide_programs(hidden)

        def restore() -> None:
            os.environ["PATH"] = path
            for copy in copies:
                shutil.rmtree(copy, ignore_errors=True)

        config.add_cleanup(restore)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail a test marked ``requires_program`` whose program is missing, before its fixtures.

    Outside CI such a test was marked skip at collection, so this never runs for it.
    """
    for marker in item.iter_markers("requires_program"):
        need_program(*marker.args, **marker.kwargs)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-slow",
        action="store_true",
        default=False,
        help="also run tests marked slow (the long reliability runs of make reliability)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``postgres`` tests on other databases, ``slow`` ones without --run-slow, and
    (outside CI) ``requires_program`` ones whose program is missing."""
    on_postgres = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    run_slow = config.getoption("--run-slow")
    needs_postgres = pytest.mark.skip(reason="needs PostgreSQL: run with scripts/with-postgres")
    too_slow = pytest.mark.skip(reason="long run: make reliability (or pytest --run-slow)")
    for item in items:
        if item.get_closest_marker("postgres") and not on_postgres:
            item.add_marker(needs_postgres)
        if item.get_closest_marker("slow") and not run_slow:
            item.add_marker(too_slow)
        for marker in item.iter_markers("requires_program"):
            reason = missing_program(*marker.args, **marker.kwargs)
            if reason is not None and not in_ci():
                item.add_marker(pytest.mark.skip(reason=reason))
