"""Workflow.revision: a random value per committed definition, the compiled-cache key.

Existing workflows each get their own random revision (a column default would give
every row, in every database migrated, the same one).
"""

import uuid

from django.db import migrations, models

HELP_TEXT = (
    "A new random value with every change to the workflow, its steps, statuses or "
    "transitions, and every load of them: what compiled workflows are cached by."
)


def give_each_workflow_a_revision(apps, schema_editor):
    Workflow = apps.get_model("django_steps", "Workflow")
    using = schema_editor.connection.alias
    for pk in Workflow.objects.using(using).values_list("pk", flat=True):
        Workflow.objects.using(using).filter(pk=pk).update(revision=uuid.uuid4())


class Migration(migrations.Migration):
    dependencies = [
        ("django_steps", "0002_condition_context"),
    ]

    operations = [
        migrations.AddField(
            model_name="workflow",
            name="revision",
            field=models.UUIDField(editable=False, null=True, verbose_name="definition revision"),
        ),
        migrations.RunPython(give_each_workflow_a_revision, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="workflow",
            name="revision",
            field=models.UUIDField(
                default=uuid.uuid4,
                editable=False,
                help_text=HELP_TEXT,
                verbose_name="definition revision",
            ),
        ),
    ]
