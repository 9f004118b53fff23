"""Every model change ships with its migration, and data migrations fill in what they add."""

from __future__ import annotations

import datetime
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

# Apps whose migrations this repository owns; naming them makes makemigrations
# also report an app whose migrations package is missing altogether.
OWN_APPS = ("django_steps", "testapp")


@pytest.mark.django_db
def test_models_have_migrations() -> None:
    output = StringIO()
    try:
        call_command("makemigrations", *OWN_APPS, "--check", "--dry-run", stdout=output)
    except SystemExit:  # makemigrations --check exits 1 when a migration is missing
        missing = True
    else:
        missing = False
    if missing:
        pytest.fail(
            "Models changed without a migration; run "
            "`DJANGO_SETTINGS_MODULE=tests.settings python -m django makemigrations`:\n"
            + output.getvalue(),
            pytrace=False,
        )
    assert "No changes detected" in output.getvalue()


@pytest.mark.django_db(transaction=True)
def test_step_entered_at_is_filled_in_from_the_history() -> None:
    before = [("django_steps", "0001_initial")]
    after = [("django_steps", "0002_condition_context")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        apps = executor.loader.project_state(before).apps
        content_type = apps.get_model("contenttypes", "ContentType").objects.create(
            app_label="testapp", model="thing"
        )
        workflow = apps.get_model("django_steps", "Workflow").objects.create(name="Old")
        history = apps.get_model("django_steps", "WorkflowHistory")
        instance_model = apps.get_model("django_steps", "WorkflowInstance")
        started = timezone.now() - datetime.timedelta(days=3)
        moved = started + datetime.timedelta(days=1)
        old = instance_model.objects.create(
            workflow=workflow, content_type=content_type, object_id="1", started_at=started
        )
        for event, when in [
            ("started", started),
            ("step_changed", moved),
            ("held", moved + datetime.timedelta(hours=5)),
        ]:
            history.objects.create(instance=old, event=event, timestamp=when)
        never = instance_model.objects.create(
            workflow=workflow, content_type=content_type, object_id="2", started_at=started
        )

        executor = MigrationExecutor(connection)
        executor.migrate(after)
        apps = executor.loader.project_state(after).apps
        migrated = apps.get_model("django_steps", "WorkflowInstance").objects
        assert migrated.get(pk=old.pk).step_entered_at == moved
        assert migrated.get(pk=never.pk).step_entered_at is None
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
