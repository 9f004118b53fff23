"""Export stored workflow definitions to files, and import them back in place.

:func:`export_definitions` writes the ``django-steps/1`` file format (see
:mod:`django_steps.machines.serialization`). :func:`import_definitions` validates
every workflow of a file before writing anything, then writes them all in one
transaction. A workflow that already exists is updated in place: its steps,
statuses and transitions are matched by name; new ones are created, changed ones
updated, missing ones deleted. Deleting a step or status that an instance is at is
refused (:class:`~django_steps.exceptions.DefinitionInUse`) and nothing is written.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.apps import apps
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import transaction
from django.db.models import Field, IntegerField, Model, Q

from ._engine.loading import definition_from_db
from .exceptions import DefinitionError, DefinitionInUse, WorkflowNotFound
from .machines.definition import (
    STATUS_FIELDS,
    STEP_FIELDS,
    TRANSITION_FIELDS,
    StatusDefinition,
    StepDefinition,
    TransitionDefinition,
    WorkflowDefinition,
    model_values,
    transition_name,
)
from .machines.serialization import dump_definitions, read_definitions
from .models import (
    Workflow,
    WorkflowInstance,
    WorkflowStep,
    WorkflowStepStatus,
    WorkflowTransition,
)
from .validation import Problem, errors_of, validate_workflow

__all__ = [
    "ImportReport",
    "WorkflowImport",
    "check_importable",
    "export_definitions",
    "import_definitions",
    "import_file",
    "transition_names",
]


@dataclass
class WorkflowImport:
    """What importing one workflow did (or, in a dry run, would do)."""

    name: str
    created: bool
    changes: list[str] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.created or bool(self.changes)

    def __str__(self) -> str:
        if self.created:
            lines = [f"Workflow {self.name!r}: created."]
        elif not self.changes:
            lines = [f"Workflow {self.name!r}: unchanged."]
        else:
            lines = [f"Workflow {self.name!r}: updated:", *(f"  {c}" for c in self.changes)]
        return "\n".join(lines + [f"  {warning}" for warning in self.warnings])


@dataclass
class ImportReport:
    """The outcome of an import: one :class:`WorkflowImport` per workflow in the file."""

    workflows: list[WorkflowImport]
    dry_run: bool = False

    def __str__(self) -> str:
        lines = [str(item) for item in self.workflows]
        if self.dry_run:
            lines.append("Dry run: nothing was written.")
        return "\n".join(lines)


# --- export --------------------------------------------------------------------------


def export_definitions(names: Sequence[str] | None = None, *, format: str = "yaml") -> str:
    """The text of a definitions file holding the named workflows (default: all, by name).

    Raises :class:`~django_steps.exceptions.WorkflowNotFound` for an unknown name.
    """
    if names:
        found = {workflow.name: workflow for workflow in Workflow.objects.filter(name__in=names)}
        missing = [name for name in names if name not in found]
        if missing:
            raise WorkflowNotFound(missing[0])
        workflows: Iterable[Workflow] = [found[name] for name in dict.fromkeys(names)]
    else:
        workflows = Workflow.objects.order_by("name")
    return dump_definitions((definition_from_db(w) for w in workflows), format=format)


# --- import --------------------------------------------------------------------------


def import_file(path: str | Path, *, dry_run: bool = False) -> ImportReport:
    """Import the definitions file at ``path`` (see :func:`import_definitions`)."""
    return import_definitions(read_definitions(path), dry_run=dry_run)


def import_definitions(
    definitions: Sequence[WorkflowDefinition], *, dry_run: bool = False
) -> ImportReport:
    """Create or update the given workflows, all or nothing.

    Every definition is validated first; :class:`DefinitionError` lists the
    problems of every workflow at fault and nothing is written. The writes happen
    in one transaction; :class:`DefinitionInUse` (nothing written) when a step or
    status to delete is used by an instance. With ``dry_run`` the transaction is
    rolled back and the report tells what would have changed.
    """
    warnings = check_importable(definitions)
    with transaction.atomic():
        report = ImportReport(
            [_import_workflow(d, warnings[d.name]) for d in definitions], dry_run=dry_run
        )
        if dry_run:
            transaction.set_rollback(True)
    return report


def check_importable(definitions: Sequence[WorkflowDefinition]) -> dict[str, list[Problem]]:
    """Validate every definition; the warnings of each, by workflow name.

    Raises :class:`DefinitionError` listing every error of every definition (the
    validation rules of :func:`django_steps.validation.validate_workflow`, the
    unique names import matches rows by, and the limits of the database columns:
    lengths, integer ranges, characters refused in names, NUL characters).
    """
    problems: list[Any] = []
    messages: list[str] = []
    warnings: dict[str, list[Problem]] = {}
    for definition in definitions:
        if definition.name in warnings:
            messages.append(f"Workflow {definition.name!r} appears more than once.")
        found = validate_workflow(definition)
        errors = errors_of(found)
        warnings[definition.name] = [problem for problem in found if not problem.is_error]
        problems += errors
        messages += [str(problem) for problem in errors]  # each names its workflow
        messages += _transition_name_clashes(definition)
        messages += _database_limit_problems(definition)
        messages += _unknown_groups(definition)
    if messages:
        raise DefinitionError(
            "Nothing was imported; the definitions have problems:\n"
            + "\n".join(f"- {message}" for message in messages),
            workflow=definitions[0].name if len(definitions) == 1 else None,
            problems=problems,
        )
    return warnings


def _unknown_groups(definition: WorkflowDefinition) -> list[str]:
    """A message for each step whose ``assignee_group`` names no auth group (one query)."""
    wanted = {step.name: step.assignee_group for step in definition.steps if step.assignee_group}
    if not wanted:
        return []
    existing = set(
        Group.objects.filter(name__in=set(wanted.values())).values_list("name", flat=True)
    )
    return [
        f"Workflow {definition.name!r}: step {step!r} has assignee_group {group!r}, and no "
        "group has that name; create the group first or fix the name."
        for step, group in wanted.items()
        if group not in existing
    ]


def _transition_name_clashes(definition: WorkflowDefinition) -> list[str]:
    names = [t.name for t in definition.transitions if t.name]
    return [
        f"Workflow {definition.name!r}: more than one transition is named {name!r}; "
        "transition names must be unique within a workflow."
        for name in sorted({name for name in names if names.count(name) > 1})
    ]


#: The range of an integer every supported database can store.
_SIGNED_64_BITS = (MinValueValidator(-(2**63)), MaxValueValidator(2**63 - 1))


def _database_limit_problems(definition: WorkflowDefinition) -> list[str]:
    """What the database (or the models' validators) would refuse, per row and field.

    Checked before anything is written, so a name too long for its column is
    reported with its row instead of failing as a ``DataError`` inside the import.
    """
    rows: list[tuple[type[Model], str, dict[str, Any]]] = [
        (Workflow, "", {"name": definition.name, "description": definition.description})
    ]
    for step in definition.steps:
        values = {"name": step.name, "order": step.order, "description": step.description}
        rows.append((WorkflowStep, f"step {step.name!r}", values))
        for status in step.statuses:
            where = f"status {status.name!r} of step {step.name!r}"
            rows.append((WorkflowStepStatus, where, {"name": status.name, **_texts(status)}))
    for transition, name in zip(
        definition.transitions, transition_names(definition.transitions), strict=True
    ):
        values = {"name": name, "priority": transition.priority, **_texts(transition)}
        rows.append((WorkflowTransition, f"transition {name!r}", values))
    messages = []
    for model, where, values in rows:
        prefix = f"Workflow {definition.name!r}" + (f", {where}" if where else "")
        for field_name, value in values.items():
            field = model._meta.get_field(field_name)
            assert isinstance(field, Field)
            if isinstance(value, str) and "\x00" in value:
                messages.append(f"{prefix}: {field_name} contains a NUL character (U+0000).")
                continue
            try:
                field.run_validators(value)
                if isinstance(field, IntegerField):
                    # Django adds range validators per database; on SQLite only from 5.0.
                    for validator in _SIGNED_64_BITS:
                        validator(value)
            except ValidationError as error:
                messages += [f"{prefix}: {field_name}: {text}" for text in error.messages]
    if "\\u0000" in json.dumps(definition.context_variables, default=str):
        messages.append(
            f"Workflow {definition.name!r}: context_variables contain a NUL character (U+0000)."
        )
    return messages


def _texts(row: StatusDefinition | TransitionDefinition) -> dict[str, str]:
    texts = {"description": row.description}
    if isinstance(row, TransitionDefinition):
        texts["condition"] = row.condition
    return texts


def transition_names(transitions: Sequence[TransitionDefinition]) -> list[str]:
    """The stored name of each transition: its own, else ``From -> To`` as the model does.

    A second unnamed transition between the same steps is numbered ``From -> To (2)``,
    skipping names already used, like :meth:`WorkflowTransition.unique_default_name`.
    """
    taken = {t.name for t in transitions if t.name}
    names = []
    for transition in transitions:
        name = transition.name
        if not name:
            number = 1
            name = transition_name(transition.from_step, transition.to_step)
            while name in taken:
                number += 1
                name = transition_name(transition.from_step, transition.to_step, number)
            taken.add(name)
        names.append(name)
    return names


def _update(row: Model, values: dict[str, Any]) -> list[str]:
    """Set ``values`` on ``row``; the names of the fields that changed."""
    changed = [name for name, value in values.items() if getattr(row, name) != value]
    for name in changed:
        setattr(row, name, values[name])
    return changed


def _assignee_group_id(step: StepDefinition) -> Any:
    """The key of the auth group named by the step's ``assignee_group`` (checked to exist)."""
    if not step.assignee_group:
        return None
    return Group.objects.values_list("pk", flat=True).get(name=step.assignee_group)


def _import_workflow(definition: WorkflowDefinition, warnings: list[Problem]) -> WorkflowImport:
    name = definition.name
    workflow = Workflow.objects.select_for_update().filter(name=name).first()
    content_type = (
        ContentType.objects.get_for_model(apps.get_model(definition.model))
        if definition.model
        else None
    )
    if workflow is None:
        workflow = Workflow.objects.create(
            name=name,
            description=definition.description,
            context_variables=dict(definition.context_variables),
            content_type=content_type,
        )
        result = WorkflowImport(name, created=True, warnings=warnings)
    else:
        result = WorkflowImport(name, created=False, warnings=warnings)
        changed = _update(
            workflow,
            {
                "description": definition.description,
                "context_variables": dict(definition.context_variables),
                "content_type_id": content_type.pk if content_type is not None else None,
            },
        )
        if changed:
            workflow.save(update_fields=changed)
            result.changes.append(f"workflow: {', '.join(changed)} changed")
    _WorkflowRows(workflow, definition, result).apply()
    return result


class _WorkflowRows:
    """Bring one stored workflow's rows in line with its definition, matching by name."""

    def __init__(self, workflow: Workflow, definition: WorkflowDefinition, result: WorkflowImport):
        self.workflow = workflow
        self.definition = definition
        self.changes = result.changes
        self.steps = {
            step.name: step
            for step in WorkflowStep.objects.filter(workflow=workflow).select_related(
                "timeout_status"
            )
        }
        self.statuses = {
            (status.step.name, status.name): status
            for status in WorkflowStepStatus.objects.filter(step__workflow=workflow)
            .select_related("step")
            .order_by("pk")
        }
        self.transitions = list(
            WorkflowTransition.objects.filter(workflow=workflow)
            .select_related("from_step", "to_step")
            .order_by("pk")
        )
        self.existing_transition_names = {row.name for row in self.transitions}
        self.report = not result.created

    def note(self, message: str) -> None:
        if self.report:
            self.changes.append(message)

    def apply(self) -> None:
        wanted_steps = {step.name for step in self.definition.steps}
        plan = self._plan_transitions(wanted_steps)
        kept = {row.pk for _, row in plan if row is not None}
        planned = {name for name, _ in plan}
        for row in self.transitions:
            if row.pk not in kept:
                row.delete()
                if row.name not in planned:
                    self.note(f"transition {row.name!r} deleted")
        # A deadline names a status, which must exist first; it is cleared before the
        # statuses and flags it depends on change, and set again once they are written.
        deadlines = self._clear_changed_deadlines()
        self._delete_statuses(wanted_steps)
        self._delete_steps(wanted_steps)
        self._write_steps()
        self._write_statuses()
        self._write_deadlines(deadlines)
        self._write_transitions(plan)

    def _clear_changed_deadlines(self) -> list[StepDefinition]:
        """Clear the stored deadlines that change; the steps whose deadline to write."""
        changed = []
        for step in self.definition.steps:
            row = self.steps.get(step.name)
            if row is None:
                if step.due_after is not None or step.timeout_status is not None:
                    changed.append(step)
                continue
            stored = row.timeout_status if row.timeout_status_id is not None else None
            stored_status = stored.name if stored is not None else None
            if (row.due_after, stored_status) == (step.due_after, step.timeout_status):
                continue
            changed.append(step)
            if row.timeout_status_id is not None or row.due_after is not None:
                row.due_after, row.timeout_status = None, None
                row.save(update_fields=["due_after", "timeout_status", "updated_at"])
        return changed

    def _write_deadlines(self, steps: list[StepDefinition]) -> None:
        for step in steps:
            row = self.steps[step.name]
            row.due_after = step.due_after
            row.timeout_status = (
                self.statuses[(step.name, step.timeout_status)] if step.timeout_status else None
            )
            row.save(update_fields=["due_after", "timeout_status", "updated_at"])
            self.note(f"step {step.name!r}: due_after, timeout_status changed")

    def _plan_transitions(
        self, wanted_steps: set[str]
    ) -> list[tuple[str, WorkflowTransition | None]]:
        """Which existing rows to keep (in file order), and where new rows are needed.

        Transitions of equal priority are tried in creation order, so a row is kept
        only while kept rows stay in file order; every transition after a new or
        out-of-order one is recreated.
        """
        existing = {row.name: row for row in self.transitions}
        plan: list[tuple[str, WorkflowTransition | None]] = []
        last_pk: Any = None
        creating = False
        for name in transition_names(self.definition.transitions):
            row = existing.get(name)
            usable = (
                row is not None
                and not creating
                and (last_pk is None or row.pk > last_pk)
                and row.from_step.name in wanted_steps
                and row.to_step.name in wanted_steps
            )
            if usable and row is not None:
                plan.append((name, row))
                last_pk = row.pk
            else:
                plan.append((name, None))
                creating = True
        return plan

    def _in_use(self, query: Q) -> int:
        return WorkflowInstance.objects.filter(query).count()

    def _delete_statuses(self, wanted_steps: set[str]) -> None:
        wanted = {(s.name, status.name) for s in self.definition.steps for status in s.statuses}
        for (step_name, status_name), row in list(self.statuses.items()):
            if step_name not in wanted_steps or (step_name, status_name) in wanted:
                continue
            count = self._in_use(Q(current_step_status=row))
            if count:
                raise DefinitionInUse(
                    f"Workflow {self.workflow.name!r}: cannot delete status {status_name!r} of "
                    f"step {step_name!r}: {count} workflow instance(s) have it. Keep it in the "
                    "file, or move or finish those instances first. Nothing was imported.",
                    workflow=self.workflow.name,
                    step=step_name,
                    status=status_name,
                    instances=count,
                )
            row.delete()
            del self.statuses[(step_name, status_name)]
            self.note(f"status {status_name!r} of step {step_name!r} deleted")

    def _delete_steps(self, wanted_steps: set[str]) -> None:
        for name, row in list(self.steps.items()):
            if name in wanted_steps:
                continue
            count = self._in_use(Q(current_step=row) | Q(current_step_status__step=row))
            if count:
                raise DefinitionInUse(
                    f"Workflow {self.workflow.name!r}: cannot delete step {name!r}: {count} "
                    "workflow instance(s) are at it. Keep it in the file, or move or finish "
                    "those instances first. Nothing was imported.",
                    workflow=self.workflow.name,
                    step=name,
                    instances=count,
                )
            row.delete()
            del self.steps[name]
            self.statuses = {k: v for k, v in self.statuses.items() if k[0] != name}
            self.note(f"step {name!r} deleted")

    def _write_steps(self) -> None:
        # One initial step per workflow is a database constraint: take the flag off
        # the old initial step before giving it to another.
        for step in self.definition.steps:
            row = self.steps.get(step.name)
            if row is not None and row.is_initial_step and not step.is_initial:
                row.is_initial_step = False
                row.save(update_fields=["is_initial_step", "updated_at"])
        for step in self.definition.steps:
            values = {
                **model_values(STEP_FIELDS, step),
                "assignee_group_id": _assignee_group_id(step),
            }
            row = self.steps.get(step.name)
            if row is None:
                self.steps[step.name] = WorkflowStep.objects.create(
                    workflow=self.workflow, name=step.name, **values
                )
                self.note(f"step {step.name!r} created")
                continue
            changed = _update(row, values)
            if changed:
                row.save(update_fields=[*changed, "updated_at"])
                self.note(f"step {step.name!r}: {', '.join(changed)} changed")

    def _write_statuses(self) -> None:
        for step in self.definition.steps:
            for status in step.statuses:  # one default status per step, as for steps
                row = self.statuses.get((step.name, status.name))
                if row is not None and row.is_default_status and not status.is_default:
                    row.is_default_status = False
                    row.save(update_fields=["is_default_status", "updated_at"])
        for step in self.definition.steps:
            for status in step.statuses:
                values = model_values(STATUS_FIELDS, status)
                row = self.statuses.get((step.name, status.name))
                if row is None:
                    self.statuses[(step.name, status.name)] = WorkflowStepStatus.objects.create(
                        step=self.steps[step.name], name=status.name, **values
                    )
                    self.note(f"status {status.name!r} of step {step.name!r} created")
                    continue
                changed = _update(row, values)
                if changed:
                    row.save(update_fields=[*changed, "updated_at"])
                    self.note(
                        f"status {status.name!r} of step {step.name!r}: "
                        f"{', '.join(changed)} changed"
                    )

    def _write_transitions(self, plan: list[tuple[str, WorkflowTransition | None]]) -> None:
        for transition, (name, row) in zip(self.definition.transitions, plan, strict=True):
            values = {
                "from_step": self.steps[transition.from_step],
                "to_step": self.steps[transition.to_step],
                **model_values(TRANSITION_FIELDS, transition),
            }
            if row is None:
                WorkflowTransition.objects.create(workflow=self.workflow, name=name, **values)
                if name in self.existing_transition_names:
                    self.note(f"transition {name!r} recreated to keep the order they are tried in")
                else:
                    self.note(f"transition {name!r} created")
                continue
            changed = _update(row, values)
            if changed:
                row.save(update_fields=[*changed, "updated_at"])
                self.note(f"transition {name!r}: {', '.join(changed)} changed")
