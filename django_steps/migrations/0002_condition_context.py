"""Conditions see the object, actor and instance: ``Workflow.content_type`` (the model a
workflow is for) and ``WorkflowInstance.step_entered_at``, filled in for existing
instances from their history (the last time they started or changed step)."""

import django.db.models.deletion
from django.db import migrations, models


def fill_step_entered_at(apps, schema_editor):
    instance_model = apps.get_model("django_steps", "WorkflowInstance")
    history_model = apps.get_model("django_steps", "WorkflowHistory")
    entered = (
        history_model.objects.filter(
            instance=models.OuterRef("pk"), event__in=["started", "step_changed"]
        )
        .order_by("-timestamp", "-id")
        .values("timestamp")[:1]
    )
    instance_model.objects.using(schema_editor.connection.alias).update(
        step_entered_at=models.Subquery(entered)
    )


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("django_steps", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="workflow",
            name="content_type",
            field=models.ForeignKey(
                blank=True,
                help_text=(
                    "Optional: the model this workflow is for. Starting it for another model "
                    "is refused, and conditions reading object.<field> are checked against "
                    "the fields the model declares."
                ),
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="contenttypes.contenttype",
                verbose_name="for model",
            ),
        ),
        migrations.AddField(
            model_name="workflowinstance",
            name="step_entered_at",
            field=models.DateTimeField(
                blank=True,
                help_text=(
                    "When the instance entered its current step (conditions: "
                    "instance.step_entered_at)."
                ),
                null=True,
                verbose_name="step entered at",
            ),
        ),
        migrations.RunPython(fill_step_entered_at, migrations.RunPython.noop, elidable=True),
    ]
