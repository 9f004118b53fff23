# Timers: step deadlines (due after, timeout status), instance due times, history marks.

import datetime

import django
import django.db.models.deletion
from django.db import migrations, models

# CheckConstraint's argument is ``condition`` from Django 5.1 (``check`` before, removed in 6.0).
CHECK_ARGUMENT = "condition" if django.VERSION >= (5, 1) else "check"


class Migration(migrations.Migration):
    dependencies = [
        ("django_steps", "0004_name_validators"),
    ]

    operations = [
        migrations.AddField(
            model_name="workflowhistory",
            name="by_system",
            field=models.BooleanField(
                default=False,
                help_text="Made by the system actor (SYSTEM), such as the timer sweep, not a user.",
                verbose_name="by the system",
            ),
        ),
        migrations.AddField(
            model_name="workflowhistory",
            name="timed_out",
            field=models.BooleanField(
                default=False,
                help_text="Made by the timer sweep: the instance was due at its step.",
                verbose_name="timed out",
            ),
        ),
        migrations.AddField(
            model_name="workflowinstance",
            name="due_at",
            field=models.DateTimeField(
                blank=True,
                editable=False,
                help_text="When the instance times out at its current step (its step's due after).",
                null=True,
                verbose_name="due at",
            ),
        ),
        migrations.AddField(
            model_name="workflowinstance",
            name="held_at",
            field=models.DateTimeField(
                blank=True,
                editable=False,
                help_text="Since when the instance is on hold; resuming moves the due time on by as much.",
                null=True,
                verbose_name="held at",
            ),
        ),
        migrations.AddField(
            model_name="workflowstep",
            name="due_after",
            field=models.DurationField(
                blank=True,
                help_text="How long an instance may stay at this step before it times out, e.g. “3 00:00:00” for three days (the clock stops while it is on hold).",
                null=True,
                verbose_name="due after",
            ),
        ),
        migrations.AddField(
            model_name="workflowstep",
            name="timeout_status",
            field=models.ForeignKey(
                blank=True,
                help_text="One of this step's statuses, set by the timer sweep when an instance is due: a completion status moves it on, a cancellation status cancels it, an on-hold status parks it, a plain one (say “Escalated”) marks it. Set with due after.",
                null=True,
                on_delete=django.db.models.deletion.RESTRICT,
                related_name="+",
                to="django_steps.workflowstepstatus",
                verbose_name="timeout status",
            ),
        ),
        migrations.AddIndex(
            model_name="workflowinstance",
            index=models.Index(
                condition=models.Q(("due_at__isnull", False)),
                fields=["lifecycle", "due_at"],
                name="django_steps_instance_due",
            ),
        ),
        migrations.AddConstraint(
            model_name="workflowstep",
            constraint=models.CheckConstraint(
                **{
                    CHECK_ARGUMENT: models.Q(
                        models.Q(("due_after__isnull", True), ("timeout_status__isnull", True)),
                        models.Q(
                            ("due_after__gt", datetime.timedelta(0)),
                            ("is_final_step", False),
                            ("timeout_status__isnull", False),
                        ),
                        _connector="OR",
                    )
                },
                name="django_steps_step_deadline",
                violation_error_message="A deadline needs both a positive due after and a timeout status, on a step that is not final.",
            ),
        ),
    ]
