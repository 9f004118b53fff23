"""Suite-wide fixtures, constants and hooks.

- ``claims`` (the claims workflow of :mod:`tests.factories`, stored) and
  ``definition`` (the same workflow as a plain ``WorkflowDefinition``);
- the contexts that steer a claim at *Review*: :data:`LOW` (paid directly),
  :data:`HIGH` (senior review) and :data:`RISKY` (investigation);
- hooks that say which database a run used, skip ``postgres`` tests elsewhere and
  ``slow`` ones without ``--run-slow``, and skip, or under ``CI=true`` fail, the tests
  marked ``requires_program`` whose program is missing (``tests/programs.py``, which
  also explains ``DJANGO_STEPS_TEST_HIDE_PROGRAMS``).

Modules import the constants with ``from tests.conftest import LOW, HIGH, RISKY``.
"""

from __future__ import annotations

import functools
import os
import shutil
import sqlite3
from typing import Any

import pytest
from django.conf import settings

from django_steps.machines.definition import WorkflowDefinition
from django_steps.models import Workflow
from tests.factories import claims_definition, create_workflow
from tests.programs import HIDE_VARIABLE, hide_programs, in_ci, missing_program, need_program

#: A claim at *Review* with these goes to *Payment*, by the transition with no condition.
LOW: dict[str, Any] = {"claim": {"amount": 500.0, "is_high_risk": False}}
#: Over 10,000 and not high-risk: *Senior Review*.
HIGH: dict[str, Any] = {"claim": {"amount": 50000.0, "is_high_risk": False}}
#: High-risk (and under 10,000, so only the risk condition passes): *Investigation*.
RISKY: dict[str, Any] = {"claim": {"amount": 500.0, "is_high_risk": True}}


@pytest.fixture
def claims(db: Any) -> Workflow:
    """The claims workflow, stored (steps, statuses and transitions as rows)."""
    return create_workflow(claims_definition())


@pytest.fixture
def definition() -> WorkflowDefinition:
    """The claims workflow as a plain definition: no database."""
    return WorkflowDefinition.from_dict(claims_definition())


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
