"""The exact SQL statements each service costs, so a regression fails the suite.

Tests run inside a transaction, so each service's ``transaction.atomic()`` shows up
as ``SAVEPOINT`` ... ``RELEASE SAVEPOINT`` (two statements); outside tests it is the
connection's own BEGIN/COMMIT. A state change is then exactly: lock the instance row
(one ``SELECT ... FOR UPDATE`` joined with its workflow, whose version tells whether
the cached machine is current), ``UPDATE`` the instance, ``INSERT`` its history rows
(one statement for all of them). On PostgreSQL the update and the insert are one
statement (``WITH updated AS (UPDATE ...) INSERT ...``). Nothing is compiled after
the first call.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection

from django_steps._engine.cache import cached_workflow, workflow_cache
from django_steps.models import Workflow, WorkflowHistory, WorkflowInstance, WorkflowStep
from django_steps.services import (
    cancel_workflow_instance,
    get_workflow_instance_for_object,
    resume_workflow_instance,
    set_workflow_on_hold,
    start_workflow_instance,
    update_workflow_step_status,
)
from tests.factories import create_workflow
from tests.testapp.models import Claim

pytestmark = pytest.mark.django_db

COMBINED_WRITES = connection.vendor == "postgresql"
# SAVEPOINT, SELECT ... FOR UPDATE, UPDATE instance, INSERT history, RELEASE SAVEPOINT
# (on PostgreSQL the UPDATE and the INSERT are one statement)
STATE_CHANGE = 4 if COMBINED_WRITES else 5
# SELECT workflow; SAVEPOINT; SELECT unfinished instance; SAVEPOINT, INSERT instance,
# RELEASE (the inner savepoint that turns a concurrent start into a look-up);
# INSERT history; RELEASE SAVEPOINT
START = 8
# A cache miss loads the definition: steps, their statuses (prefetch), transitions.
COMPILE = 3
# A state change that finds the definition changed also loads the workflow row.
RECOMPILE = 1 + COMPILE
CONTEXT = {"order": {"amount": 250.0, "priority": "normal"}}

STATUSES = [
    {"name": "New", "default": True},
    {"name": "Working"},
    {"name": "Done", "completion": True},
    {"name": "Held", "on_hold": True},
    {"name": "Cancelled", "cancellation": True},
]


def guarded_definition(name: str, conditions: int) -> dict[str, Any]:
    """Completing Draft tries ``conditions`` conditions; only the last one passes."""
    failing = [
        {
            "from": "Draft",
            "to": "Escalated",
            "condition": f"order.amount > {1000 + index}.0",
            "priority": 100 - index,
        }
        for index in range(conditions - 1)
    ]
    return {
        "name": name,
        "steps": [
            {"name": "Draft", "order": 1, "initial": True, "statuses": STATUSES},
            {"name": "Review", "order": 2, "statuses": STATUSES},
            {"name": "Escalated", "order": 3, "statuses": STATUSES},
            {
                "name": "Closed",
                "order": 4,
                "final": True,
                "statuses": [{"name": "Closed", "default": True, "completion": True}],
            },
        ],
        "transitions": [
            *failing,
            {"from": "Draft", "to": "Review", "condition": "order.priority == 'normal'"},
            {"from": "Review", "to": "Closed"},
            {"from": "Escalated", "to": "Closed"},
        ],
    }


@pytest.fixture
def workflow() -> Workflow:
    return create_workflow(guarded_definition("Guarded", 2))


@pytest.fixture
def claim() -> Claim:
    claim = Claim.objects.create(title="Hail damage", amount=250)
    ContentType.objects.get_for_model(claim)  # the content type cache is process-wide
    return claim


@pytest.fixture
def instance(workflow: Workflow, claim: Claim) -> Any:
    instance = start_workflow_instance(workflow.name, claim)
    assert instance is not None
    return instance


def test_start_costs_eight_statements_once_compiled(workflow, claim, django_assert_num_queries):
    start_workflow_instance(workflow.name, Claim.objects.create(title="warm the cache"))
    with django_assert_num_queries(START):
        instance = start_workflow_instance(workflow.name, claim)
    assert instance is not None
    assert WorkflowHistory.objects.filter(instance=instance).count() == 1


def test_first_start_compiles_once(workflow, claim, django_assert_num_queries):
    workflow_cache.clear()
    with django_assert_num_queries(START + COMPILE):
        start_workflow_instance(workflow.name, claim)


def test_plain_status_update(instance, django_assert_num_queries):
    with django_assert_num_queries(STATE_CHANGE):
        assert update_workflow_step_status(instance, "Working")
    assert instance.current_step_status.name == "Working"


def test_unchanged_status_only_locks(instance, django_assert_num_queries):
    # SAVEPOINT, SELECT ... FOR UPDATE, RELEASE SAVEPOINT: nothing to write.
    with django_assert_num_queries(3):
        assert update_workflow_step_status(instance, "New")


@pytest.mark.parametrize("conditions", [2, 10])
def test_guarded_completion_costs_the_same_as_a_plain_update(
    claim, conditions, django_assert_num_queries
):
    workflow = create_workflow(guarded_definition(f"Guarded {conditions}", conditions))
    instance = start_workflow_instance(workflow.name, claim)
    with django_assert_num_queries(STATE_CHANGE) as captured:
        assert update_workflow_step_status(instance, "Done", CONTEXT)
    assert instance.current_step.name == "Review"
    writes = [q["sql"] for q in captured.captured_queries if "INSERT INTO" in q["sql"]]
    assert len(writes) == 1  # status_changed and step_changed in one statement
    (write,) = writes
    if COMBINED_WRITES:
        assert write.startswith('WITH updated AS (UPDATE "django_steps_workflowinstance"')
    else:
        assert write.startswith('INSERT INTO "django_steps_workflowhistory"')
    history = WorkflowHistory.objects.filter(instance=instance, event="step_changed").get()
    assert len(history.conditions) == conditions


@pytest.mark.parametrize(
    ("operation", "lifecycle"),
    [
        (set_workflow_on_hold, "on_hold"),
        (cancel_workflow_instance, "cancelled"),
    ],
)
def test_hold_and_cancel(instance, operation, lifecycle, django_assert_num_queries):
    with django_assert_num_queries(STATE_CHANGE):
        assert operation(instance)
    assert instance.lifecycle == lifecycle


def test_resume(instance, django_assert_num_queries):
    assert set_workflow_on_hold(instance)
    with django_assert_num_queries(STATE_CHANGE):
        assert resume_workflow_instance(instance)
    assert instance.lifecycle == "running"


def test_refused_change_writes_nothing(instance, django_assert_num_queries):
    assert cancel_workflow_instance(instance)
    # SAVEPOINT, SELECT ... FOR UPDATE, ROLLBACK TO SAVEPOINT, RELEASE SAVEPOINT
    with django_assert_num_queries(4):
        assert not set_workflow_on_hold(instance)


def test_get_workflow_instance_for_object_is_one_query(instance, claim, django_assert_num_queries):
    with django_assert_num_queries(1):
        found = get_workflow_instance_for_object(claim)
    assert found == instance
    with django_assert_num_queries(0):
        assert found.workflow.name == "Guarded"  # joined in the same query
    with django_assert_num_queries(1):
        assert get_workflow_instance_for_object(claim, "Guarded") == instance


def test_cache_hit_costs_no_query(workflow, django_assert_num_queries):
    compiled = cached_workflow(workflow)
    hits = workflow_cache.hits
    with django_assert_num_queries(0):
        assert cached_workflow(workflow) is compiled
    assert workflow_cache.hits == hits + 1


def test_definition_change_forces_exactly_one_recompile(
    workflow, instance, django_assert_num_queries
):
    step = WorkflowStep.objects.get(workflow=workflow, name="Draft")
    step.description = "Edited while instances run"
    step.save()  # bumps the workflow's version
    misses = workflow_cache.misses
    with django_assert_num_queries(STATE_CHANGE + RECOMPILE):
        assert update_workflow_step_status(instance, "Working")
    with django_assert_num_queries(STATE_CHANGE):
        assert update_workflow_step_status(instance, "New")
    assert workflow_cache.misses == misses + 1


def test_a_reused_primary_key_is_cached_again(workflow, django_assert_num_queries):
    # SQLite reuses the key of a deleted workflow. The entry it left, of another
    # revision, must not keep the new workflow out of the cache (it recompiled each time).
    compiled = cached_workflow(workflow)
    workflow_cache._entries[("default", workflow.pk)] = dataclasses.replace(
        compiled, revision=uuid.uuid4()
    )
    recompiled = cached_workflow(workflow)
    assert recompiled is not compiled
    with django_assert_num_queries(0):
        assert cached_workflow(workflow) is recompiled


@pytest.mark.parametrize(
    "lookup",
    [
        pytest.param({"workflow__name": "Guarded"}, id="by workflow name"),
        pytest.param({}, id="by workflow"),
    ],
)
def test_instance_look_ups_use_the_object_index(workflow, claim, lookup):
    # Without statistics SQLite chose the workflow's foreign-key index, reading every
    # instance of the workflow to start one (27 ms at 100,000 instances, see bench/).
    if connection.vendor != "sqlite":
        pytest.skip("the plan checked is SQLite's; PostgreSQL plans from statistics")
    content_type = ContentType.objects.get_for_model(claim)
    filters = lookup or {"workflow": workflow}
    plan = (
        WorkflowInstance.objects.unfinished()
        .filter(content_type=content_type, object_id=str(claim.pk), **filters)
        .explain()
    )
    assert "USING INDEX django_steps_instance_object" in plan
