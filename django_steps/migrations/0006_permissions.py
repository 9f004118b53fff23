"""Who may act: status permissions and actor conditions, step assignee groups, instance
assignees and who set each status (instance.actors), and the assigned history event
(issue 16). ``WorkflowHistory.by_system`` comes from 0005_timers."""

import django.core.serializers.json
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("django_steps", "0005_timers"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="workflowinstance",
            options={
                "ordering": ["-started_at"],
                "permissions": [
                    ("hold_workflowinstance", "Can put workflow instances on hold"),
                    ("resume_workflowinstance", "Can resume workflow instances"),
                    ("cancel_workflowinstance", "Can cancel workflow instances"),
                    ("set_status_workflowinstance", "Can set the status of workflow instances"),
                    ("assign_workflowinstance", "Can assign workflow instances to anyone"),
                ],
                "verbose_name": "workflow instance",
                "verbose_name_plural": "workflow instances",
            },
        ),
        migrations.AddField(
            model_name="workflowhistory",
            name="assignee",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                help_text="For an assigned event: the user assigned (empty: unassigned).",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
                verbose_name="assignee",
            ),
        ),
        migrations.AddField(
            model_name="workflowinstance",
            name="actors",
            field=models.JSONField(
                blank=True,
                default=dict,
                encoder=django.core.serializers.json.DjangoJSONEncoder,
                help_text="Who last set a status at each step: step name -> user id (conditions: instance.actors). Written by the services with each change.",
                verbose_name="actors",
            ),
        ),
        migrations.AddField(
            model_name="workflowinstance",
            name="assignee",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                help_text="The user the instance waits for; set with assign_workflow_instance, cleared when the instance leaves the step unless the next step keeps it.",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="assigned_workflow_instances",
                to=settings.AUTH_USER_MODEL,
                verbose_name="assignee",
            ),
        ),
        migrations.AddField(
            model_name="workflowstep",
            name="assignee_group",
            field=models.ForeignKey(
                blank=True,
                help_text="Optional: the group responsible for instances at this step. Its members see the unassigned instances here in WorkflowInstance.objects.awaiting(user).",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="auth.group",
                verbose_name="assignee group",
            ),
        ),
        migrations.AddField(
            model_name="workflowstepstatus",
            name="actor_condition",
            field=models.TextField(
                blank=True,
                help_text='Optional: a CEL expression that must be true for the actor to set this status, over the names transition conditions see (actor, object, instance, status, now and the context variables), e.g. actor.id != instance.actors["Draft"].',
                verbose_name="actor condition",
            ),
        ),
        migrations.AddField(
            model_name="workflowstepstatus",
            name="permission",
            field=models.CharField(
                blank=True,
                help_text="Optional: the Django permission (app_label.codename) an actor needs to set this status, checked with actor.has_perm(permission) or actor.has_perm(permission, object).",
                max_length=255,
                verbose_name="permission",
            ),
        ),
        migrations.AlterField(
            model_name="workflowhistory",
            name="event",
            field=models.CharField(
                choices=[
                    ("started", "Started"),
                    ("status_changed", "Status changed"),
                    ("step_changed", "Step changed"),
                    ("held", "Held"),
                    ("resumed", "Resumed"),
                    ("cancelled", "Cancelled"),
                    ("completed", "Completed"),
                    ("assigned", "Assigned"),
                ],
                max_length=20,
                verbose_name="event",
            ),
        ),
        migrations.AddIndex(
            model_name="workflowinstance",
            index=models.Index(fields=["assignee", "lifecycle"], name="django_steps_assignee"),
        ),
        migrations.AddIndex(
            model_name="workflowinstance",
            index=models.Index(
                condition=models.Q(("assignee__isnull", True), ("lifecycle", "running")),
                fields=["current_step"],
                name="django_steps_unassigned",
            ),
        ),
    ]
