"""Forms of the admin: definition inlines that check rows against each other, and set-status.

The definition forms leave the rules of a single row to the models' ``clean()``
(conditions are checked there, with line and column); the inline formsets add the
rules that span rows of one submission (one initial step, one default status), which
the database would otherwise only report as an integrity error. :class:`SetStatusForm`
validates an operator's input before it reaches the engine.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.forms.formsets import DELETION_FIELD_NAME
from django.forms.models import BaseInlineFormSet
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _

from . import engine
from .cel.variables import check_declared_context, parse_declarations
from .engine import check_context
from .exceptions import ContextError, DefinitionError, StepsError
from .models import WorkflowInstance, WorkflowStep, WorkflowStepStatus, WorkflowTransition

__all__ = [
    "ConditionWidget",
    "SetStatusForm",
    "StatusInlineFormSet",
    "StepInlineFormSet",
    "TransitionInlineFormSet",
    "WorkflowTransitionForm",
]

CODE_ATTRS = {"class": "steps-code", "spellcheck": "false", "autocomplete": "off"}


class ConditionWidget(forms.Textarea):
    """A small monospace textarea for CEL conditions."""

    def __init__(self, attrs: dict[str, Any] | None = None):
        attrs = {**CODE_ATTRS, "class": "steps-code steps-condition", "rows": 2, **(attrs or {})}
        super().__init__(attrs=attrs)


def short_text_input() -> forms.TextInput:
    """A name input that fits a table row."""
    return forms.TextInput(attrs={"class": "steps-name"})


def short_textarea() -> forms.Textarea:
    """A one-line description textarea that fits a table row (it grows when dragged)."""
    return forms.Textarea(attrs={"class": "steps-short", "rows": 1})


class WorkflowTransitionForm(forms.ModelForm):
    """A transition; a blank name is left for the model to fill in (“From -> To”)."""

    class Meta:
        model = WorkflowTransition
        fields = ["name", "from_step", "to_step", "condition", "priority", "description"]
        widgets = {
            "name": short_text_input(),
            "condition": ConditionWidget(),
            "description": short_textarea(),
        }

    def clean_name(self) -> str | None:
        # ``None`` rather than "": the formset's unique check skips it (two new rows
        # left blank are not duplicates) and the model's save() names (and numbers) it.
        return self.cleaned_data["name"] or None


# The workflow page's steps inline posts its rows under the steps' related name.
STEPS_PREFIX = "steps"
STEP_DELETE_KEY = re.compile(rf"^{STEPS_PREFIX}-(\d+)-{DELETION_FIELD_NAME}$")


class TransitionInlineFormSet(BaseInlineFormSet):
    """Transitions of one workflow: step choices are that workflow's steps only."""

    @cached_property
    def steps(self) -> QuerySet[WorkflowStep]:
        steps = WorkflowStep.objects.filter(workflow=self.instance).order_by("order", "pk")
        return steps if self.instance.pk is not None else steps.none()

    @cached_property
    def step_choices(self) -> list[tuple[Any, str]]:
        # Loaded once for every row's two selects, instead of one query per select.
        return [("", "---------"), *((step.pk, step.name) for step in self.steps)]

    def clean(self) -> None:
        super().clean()
        deleted = self.steps_deleted_with_it()
        for form in self.forms:
            if not form.has_changed() or form.cleaned_data.get(DELETION_FIELD_NAME):
                continue
            for name in ("from_step", "to_step"):
                step = form.cleaned_data.get(name)
                if step is not None and step.pk in deleted:
                    form.add_error(
                        name,
                        _(
                            "Step “%(step)s” is being deleted, which deletes its transitions; "
                            "delete this transition too, or keep the step."
                        )
                        % {"step": step.name},
                    )

    def steps_deleted_with_it(self) -> set[int]:
        """Ids of the steps that the same submission deletes (the steps inline's rows)."""
        deleted = set()
        for key, value in self.data.items():
            match = STEP_DELETE_KEY.match(key)
            if match and value and str(value).lower() not in {"false", "0", "off"}:
                step_id = self.data.get(f"{STEPS_PREFIX}-{match.group(1)}-id", "")
                if str(step_id).isdigit():
                    deleted.add(int(step_id))
        return deleted

    def add_fields(self, form: Any, index: int | None) -> None:
        super().add_fields(form, index)
        for name in ("from_step", "to_step"):
            field = form.fields.get(name)
            if isinstance(field, forms.ModelChoiceField):
                field.queryset = self.steps
                field.choices = self.step_choices


class StepInlineFormSet(BaseInlineFormSet):
    """Steps of one workflow: at most one of the submitted rows is the initial step."""

    def clean(self) -> None:
        super().clean()
        _at_most_one(
            self,
            "is_initial_step",
            _("Only one step can be the initial step; %(names)s are all marked initial."),
        )


class StatusInlineFormSet(BaseInlineFormSet):
    """Statuses of one step: at most one of the submitted rows is the default."""

    def clean(self) -> None:
        super().clean()
        _at_most_one(
            self,
            "is_default_status",
            _("Only one status can be the default; %(names)s are all marked default."),
        )


def _at_most_one(formset: BaseInlineFormSet, flag: str, message: Any) -> None:
    """Report, on each flagged row, that more than one row of ``formset`` has ``flag``."""
    flagged = [
        form
        for form in formset.forms
        if getattr(form, "cleaned_data", None) and form.cleaned_data.get(flag)
        if not (formset.can_delete and form.cleaned_data.get(DELETION_FIELD_NAME))
    ]
    if len(flagged) > 1:
        names = ", ".join(f"“{form.cleaned_data.get('name', '')}”" for form in flagged)
        for form in flagged:
            form.add_error(flag, message % {"names": names})


class SetStatusForm(forms.Form):
    """An operator's status change: a status of the current step, optional context and note.

    Conditions see the instance's object, the operator as ``actor``, the status and
    the instance as the engine builds them; ``context_data`` is optional, for extra
    keys only. It must be a JSON object that conditions can use (checked with
    :func:`django_steps.engine.check_context`, which also refuses the reserved names
    as keys) and that matches the workflow's declared context variables, so a bad
    context is reported on the form, not by the engine.
    """

    status = forms.ChoiceField(label=_("New status"))
    context_data = forms.CharField(
        label=_("Extra context data (JSON)"),
        required=False,
        widget=forms.Textarea(
            attrs={**CODE_ATTRS, "class": "vLargeTextField steps-code", "rows": 4}
        ),
        help_text=_(
            "Optional. Conditions already see the object's declared fields (object), you "
            "(actor), the status, the instance and the time (now); add other keys as a JSON "
            'object, e.g. {"reason": "late delivery"}.'
        ),
    )
    note = forms.CharField(
        label=_("Note"),
        required=False,
        widget=forms.Textarea(attrs={"class": "vLargeTextField", "rows": 2}),
        help_text=_("Recorded in the history with your name."),
    )

    def __init__(self, *args: Any, instance: WorkflowInstance, actor: Any = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.instance = instance
        statuses: list[WorkflowStepStatus] = (
            list(instance.current_step.possible_statuses.all()) if instance.current_step else []
        )
        if actor is not None and statuses:
            # Offer only the statuses whose rule (permission, actor_condition) lets the
            # actor through; the engine checks again when the form is submitted.
            try:
                checks = engine.rule_checks(instance, actor)
            except StepsError:
                # The definition cannot be used: the engine refuses every status anyway,
                # and says why when the form is sent.
                checks = ()
            refused = {check.status for check in checks if not check.allowed}
            statuses = [status for status in statuses if status.name not in refused]
        field = self.fields["status"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(status.name, status_label(status)) for status in statuses]
        if instance.current_step_status is not None:
            field.initial = instance.current_step_status.name

    def clean_context_data(self) -> dict[str, Any] | None:
        text = self.cleaned_data["context_data"].strip()
        if not text:
            return None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValidationError(
                _("Not valid JSON: %(error)s (line %(line)s, column %(column)s)."),
                code="invalid_json",
                params={"error": error.msg, "line": error.lineno, "column": error.colno},
            ) from None
        except RecursionError:
            raise ValidationError(
                _("The JSON is nested too deeply to be read."), code="too_deep"
            ) from None
        except ValueError as error:  # e.g. an integer of more than 4,300 digits
            raise ValidationError(
                _("The JSON cannot be read: %(error)s"),
                code="unreadable_json",
                params={"error": error},
            ) from None
        if not isinstance(data, dict):
            raise ValidationError(
                _("Context data must be a JSON object ({...}), not %(type)s."),
                code="not_an_object",
                params={"type": type(data).__name__},
            )
        try:
            check_context(data)
            self._check_declared(data)
        except ContextError as error:
            raise ValidationError(str(error), code="unusable_context") from None
        return data

    def _check_declared(self, data: dict[str, Any]) -> None:
        """Check ``data`` against the workflow's declared context variables, if any."""
        workflow = self.instance.workflow
        try:
            declarations = parse_declarations(workflow.context_variables)
        except DefinitionError:
            return  # a broken declaration is the workflow's error; the engine reports it
        check_declared_context(declarations, data, workflow=workflow.name)


def status_label(status: WorkflowStepStatus) -> str:
    """A status name with its flags, e.g. ``Approved (completion)``."""
    flags = [
        str(label)
        for flag, label in (
            (status.is_default_status, _("default")),
            (status.is_completion_status, _("completion")),
            (status.is_cancellation_status, _("cancellation")),
            (status.is_on_hold_status, _("on hold")),
        )
        if flag
    ]
    return f"{status.name} ({', '.join(flags)})" if flags else status.name
