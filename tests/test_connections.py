"""Connections end with their threads: the engine's per-connection state keeps none alive.

The write path keeps statements per database connection
(:mod:`django_steps._engine.statements`). They must live exactly as long as their
connection: a thread that changed an instance and ended leaves no connection wrapper
behind, and on PostgreSQL (with persistent connections) no open server connection.
"""

from __future__ import annotations

import gc
import threading
import time
import weakref
from typing import Any

import pytest
from django.db import connection, connections

from django_steps import engine
from django_steps.services import start_workflow_instance
from tests.factories import claims_definition, create_workflow
from tests.testapp.models import Claim

THREADS = 100


def change_in_a_thread(instance: Any, status: str) -> weakref.ref[Any]:
    """Change ``instance`` in a new thread that then ends; a weak reference to its wrapper."""
    seen: list[weakref.ref[Any]] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            engine.update_workflow_step_status(instance, status)
            seen.append(weakref.ref(connections["default"]))
        except BaseException as error:  # reported by the caller
            errors.append(error)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return seen[0]


def other_backends() -> int:
    """Server connections to the test database but this one, once closed ones are gone.

    A server process leaves ``pg_stat_activity`` shortly after its client closed the
    connection, so this waits (up to 10 s) for the count to stop falling.
    """
    count = -1
    for _ in range(100):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            (count,) = cursor.fetchone()
        if count == 0:
            break
        time.sleep(0.1)
    return int(count)


@pytest.mark.django_db(transaction=True)
def test_threads_that_changed_an_instance_leave_no_connection_behind(settings):
    # Persistent connections, as with CONN_MAX_AGE in production: only the end of the
    # wrapper closes the server connection.
    settings.DATABASES["default"]["CONN_MAX_AGE"] = None
    workflow = create_workflow(claims_definition())
    instance = start_workflow_instance(workflow.name, Claim.objects.create(title="Hail"))
    assert instance is not None
    engine.update_workflow_step_status(instance, "Accepted")  # at Review: Pending
    wrappers = [
        change_in_a_thread(instance, "In progress" if turn % 2 == 0 else "Pending")
        for turn in range(THREADS)
    ]
    gc.collect()
    assert sum(1 for wrapper in wrappers if wrapper() is not None) == 0
    if connection.vendor == "postgresql":
        assert other_backends() == 0
    instance.refresh_from_db()
    assert instance.current_step_status.name == "Pending"  # every change went through
