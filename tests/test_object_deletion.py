"""Deleting an object finishes its workflow instances; other deletes cost nothing more.

A new object that reuses a deleted object's primary key must not inherit its unfinished
instance. ``DJANGO_STEPS["ON_OBJECT_DELETE"]`` chooses between cancelling the instances
(the default, with a history row) and deleting them with their history. Only models
that have instances get a delete receiver, so deleting anything else runs exactly the
queries it would without django-steps.
"""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.models.signals import post_delete
from django.test.utils import CaptureQueriesContext

from django_steps import engine, signals
from django_steps.models import WorkflowHistory, WorkflowInstance
from django_steps.services import get_workflow_instance_for_object, start_workflow_instance
from tests.factories import claims_definition, create_workflow
from tests.testapp.models import Claim

pytestmark = pytest.mark.django_db


@pytest.fixture
def workflow() -> Any:
    return create_workflow(claims_definition())


def test_deleting_an_object_cancels_its_instance_and_a_reused_key_starts_afresh(workflow):
    claim = Claim.objects.create(pk=4242, title="Hail")
    old = start_workflow_instance(workflow.name, claim)
    assert old is not None
    cancelled: list[Any] = []

    def record(instance: Any, **kwargs: Any) -> None:
        cancelled.append((instance.pk, kwargs["to_status"].name, kwargs["note"]))

    signals.workflow_cancelled.connect(record)
    try:
        claim.delete()
    finally:
        signals.workflow_cancelled.disconnect(record)
    old.refresh_from_db()
    assert (old.lifecycle, old.current_step_status.name) == ("cancelled", "Withdrawn")
    assert old.cancelled_at is not None
    assert cancelled == [(old.pk, "Withdrawn", "claim 4242 was deleted")]
    last = WorkflowHistory.objects.filter(instance=old).last()
    assert (last.event, last.note) == ("cancelled", "claim 4242 was deleted")

    reused = Claim.objects.create(pk=4242, title="Another claim")
    new = start_workflow_instance(workflow.name, reused)
    assert new is not None
    assert new.pk != old.pk
    assert new.current_step.name == "Submitted"
    assert get_workflow_instance_for_object(reused) == new


def test_on_object_delete_delete_removes_instances_and_history(workflow, settings):
    settings.DJANGO_STEPS = {"ON_OBJECT_DELETE": "delete"}
    claim = Claim.objects.create(title="Hail")
    instance = start_workflow_instance(workflow.name, claim)
    assert instance is not None
    claim.delete()
    assert not WorkflowInstance.objects.filter(pk=instance.pk).exists()
    assert not WorkflowHistory.objects.filter(instance_id=instance.pk).exists()


def test_an_instance_whose_step_cannot_be_cancelled_is_deleted(workflow):
    claim = Claim.objects.create(title="Hail")
    instance = start_workflow_instance(workflow.name, claim)
    assert instance is not None
    WorkflowInstance.objects.filter(pk=instance.pk).update(
        current_step=workflow.steps.get(name="Payment"),
        current_step_status=workflow.steps.get(name="Payment").possible_statuses.get(
            name="Scheduled"
        ),
    )  # Payment has no cancellation status
    claim.delete()
    assert not WorkflowInstance.objects.filter(pk=instance.pk).exists()


def test_a_bulk_delete_finishes_every_object_s_instance(workflow):
    claims = [Claim.objects.create(title=f"Claim {n}") for n in range(3)]
    for claim in claims:
        start_workflow_instance(workflow.name, claim)
    Claim.objects.filter(pk__in=[claim.pk for claim in claims]).delete()
    assert not WorkflowInstance.objects.unfinished().exists()
    assert WorkflowInstance.objects.cancelled().count() == 3


def test_a_refused_delete_changes_no_instance(workflow):
    claim = Claim.objects.create(title="Hail")
    instance = start_workflow_instance(workflow.name, claim)
    assert instance is not None
    with transaction.atomic():
        claim.delete()
        transaction.set_rollback(True)  # the delete is rolled back
    instance.refresh_from_db()
    assert instance.lifecycle == "running"


def test_deleting_objects_of_a_model_without_instances_costs_no_query(workflow):
    # Permissions never have instances (groups are the steps' assignee groups, so
    # deleting one updates steps). With a delete receiver for every model, Django could
    # not fast-delete anything: it would SELECT each permission's related rows before
    # deleting them, and django-steps would look for instances.
    start_workflow_instance(workflow.name, Claim.objects.create(title="Claims have instances"))
    content_type = ContentType.objects.get_for_model(Claim)
    permissions = [
        Permission.objects.create(codename=f"p{n}", name=f"P {n}", content_type=content_type)
        for n in range(3)
    ]
    with CaptureQueriesContext(connection) as one:
        permissions[0].delete()
    with CaptureQueriesContext(connection) as many:
        Permission.objects.filter(pk__in=[p.pk for p in permissions[1:]]).delete()
    for captured in (one, many):
        statements = [query["sql"] for query in captured.captured_queries]
        assert not [sql for sql in statements if "django_steps" in sql]
        # Django's fast deletes: the two relation tables, then the permissions, none read.
        assert sorted(sql.split()[2] for sql in statements if sql.startswith("DELETE")) == [
            '"auth_group_permissions"',
            '"auth_permission"',
            '"auth_user_user_permissions"',
        ]
        selects = [sql for sql in statements if sql.startswith("SELECT")]
        assert all(sql.startswith('SELECT "auth_permission"') for sql in selects)


def test_models_with_instances_are_watched_from_the_first_connection(workflow):
    claim = Claim.objects.create(title="Hail")
    instance = start_workflow_instance(workflow.name, claim)
    assert instance is not None
    # A process that never started an instance learns which models have them when its
    # first connection to the database opens.
    watched = set(engine._watched)
    for model in watched:
        post_delete.disconnect(
            sender=model, dispatch_uid=f"django_steps.object_deleted.{model._meta.label_lower}"
        )
    engine._watched.clear()
    engine._seeded.discard(connection.alias)
    try:
        with mock.patch.object(type(connection), "in_atomic_block", False, create=True):
            engine._seed_watched(sender=type(connection), connection=connection)
        assert Claim in engine._watched
        claim.delete()
        instance.refresh_from_db()
        assert instance.lifecycle == "cancelled"
    finally:
        for model in watched:
            engine.watch_deletions(model)
