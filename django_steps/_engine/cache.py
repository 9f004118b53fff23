"""Process-wide cache of compiled workflows, keyed by database, workflow and revision.

Internal (see :mod:`django_steps._engine`).

:func:`cached_workflow` returns the compiled form of a workflow row. An entry is
identified by the database alias, the workflow's primary key and its ``revision``, a
random UUID written with every committed change to the workflow, its steps, statuses
or transitions (and with every ``loaddata`` of them). The revision is read together
with the instance (one joined query), so a cache hit costs no query, and every
process rebuilds on its next use after a change, without a restart. A revision is
never reused: a rolled-back edit leaves the committed revision in place, and two
databases (or tenants) loaded from one fixture get revisions of their own; the alias
keeps apart databases that hold the same rows.

On PostgreSQL a definition is loaded from one snapshot: outside a transaction in a
``REPEATABLE READ READ ONLY`` one; inside a ``READ COMMITTED`` transaction (a state
change's), a load that an edit committed in the middle of is detected by the
revision having moved, and loaded again.
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction

from ..cel import CelLimits
from ..conf import current_limits, steps_settings
from ..exceptions import DefinitionError
from ..machines.compiler import compile_workflow
from ..machines.definition import WorkflowDefinition
from ..machines.lifecycle import Lifecycle
from ..machines.runner import MachineState, WorkflowRunner
from ..models import Workflow, WorkflowInstance, WorkflowStep, WorkflowStepStatus
from .loading import WorkflowRows, checked_definition, load_workflow_rows

# How many times a load that an edit committed in the middle of is tried again.
LOAD_ATTEMPTS = 3


@dataclass(frozen=True)
class CachedWorkflow:
    """A workflow's runner and the rows it maps names to (read-only, shared)."""

    workflow_id: Any
    revision: uuid.UUID
    using: str
    runner: WorkflowRunner
    steps: dict[str, WorkflowStep]
    statuses: dict[tuple[str, str], WorkflowStepStatus]
    step_names: dict[Any, str]
    status_names: dict[Any, str]
    workflow_values: tuple[tuple[str, Any], ...] = ()

    def workflow_row(self, using: str) -> Workflow:
        """A new ``Workflow`` object holding the row this entry was compiled from.

        Any save of a workflow writes a new revision, so the row of a matching
        revision is this one; each caller gets its own object.
        """
        names = [name for name, _ in self.workflow_values]
        # JSON values are copied: a caller changing its object must not change the cache.
        values = [
            copy.deepcopy(value) if isinstance(value, (dict, list)) else value
            for _, value in self.workflow_values
        ]
        return Workflow.from_db(using, names, values)

    def matches(self, workflow: Workflow) -> bool:
        """Whether this entry was compiled from this row's committed definition.

        A workflow deleted and recreated with the same primary key (SQLite reuses
        them) has a new revision.
        """
        return self.revision == workflow.revision and self.using == _alias(workflow)

    @property
    def definition(self) -> WorkflowDefinition:
        return self.runner.definition

    def state_of(self, instance: WorkflowInstance) -> MachineState:
        """The machine state of a stored instance."""
        try:
            step = self.step_names[instance.current_step_id]
            status = self.status_names[instance.current_step_status_id]
        except KeyError:
            raise DefinitionError(
                f"Workflow {self.definition.name!r}: instance {instance.pk} is at a step or "
                "status that is not part of the workflow.",
                workflow=self.definition.name,
            ) from None
        return MachineState(
            step=step,
            status=status,
            lifecycle=Lifecycle(instance.lifecycle),
            status_before_hold=self.status_names.get(instance.status_before_hold_id),
        )

    def step_row(self, name: str | None) -> WorkflowStep | None:
        return self.steps.get(name) if name is not None else None

    def status_row(self, step: str | None, status: str | None) -> WorkflowStepStatus | None:
        if step is None or status is None:
            return None
        return self.statuses.get((step, status))


class WorkflowCache:
    """A bounded, thread-safe LRU of :class:`CachedWorkflow` per database and workflow id."""

    def __init__(self) -> None:
        self._entries: OrderedDict[Any, CachedWorkflow] = OrderedDict()
        self._settings_key: tuple[Any, ...] | None = None
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def current(self, workflow_id: Any, revision: uuid.UUID, using: str) -> CachedWorkflow | None:
        """The entry of this workflow revision on ``using`` if it is cached (no query)."""
        settings_key = (steps_settings.CEL_BACKEND, current_limits())
        key = (using, workflow_id)
        with self._lock:
            if settings_key != self._settings_key:
                return None  # the settings changed: get() recompiles
            entry = self._entries.get(key)
            if entry is None or entry.revision != revision:
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry

    def get(self, workflow: Workflow) -> CachedWorkflow:
        """The compiled workflow for this row's revision, compiling it on a miss.

        Raises :class:`~django_steps.exceptions.DefinitionError` when the stored
        definition cannot be compiled.
        """
        backend, limits = steps_settings.CEL_BACKEND, current_limits()
        settings_key = (backend, limits)
        key = (_alias(workflow), workflow.pk)
        with self._lock:
            if settings_key != self._settings_key:
                self._entries.clear()
                self._settings_key = settings_key
            entry = self._entries.get(key)
            if entry is not None and entry.matches(workflow):
                self._entries.move_to_end(key)
                self.hits += 1
                return entry
        self.misses += 1
        entry = self._compile(workflow, backend, limits)
        with self._lock:
            # The latest compiled wins: revisions are random, so there is no "newer" to
            # keep; a thread that compiled an older revision is corrected on next use.
            self._entries[(entry.using, entry.workflow_id)] = entry
            self._entries.move_to_end((entry.using, entry.workflow_id))
            while len(self._entries) > max(1, steps_settings.MACHINE_CACHE_SIZE):
                self._entries.popitem(last=False)
        return entry

    def _compile(self, workflow: Workflow, backend: str, limits: CelLimits) -> CachedWorkflow:
        attempt = 1
        while True:
            rows = _load_rows(workflow)
            try:
                return self._build(rows, backend, limits)
            except DefinitionError:
                # Under READ COMMITTED an edit committed between the loading queries
                # mixes two revisions: a new revision says so, and the rows are loaded
                # again. The same revision means the stored definition is unusable.
                current = Workflow.objects.using(_alias(workflow)).filter(pk=workflow.pk).first()
                if (
                    attempt >= LOAD_ATTEMPTS
                    or current is None
                    or current.revision == rows.workflow.revision
                ):
                    raise
                workflow, attempt = current, attempt + 1

    def _build(self, rows: WorkflowRows, backend: str, limits: CelLimits) -> CachedWorkflow:
        workflow = rows.workflow
        # Validated once per revision, on a miss, rows included: the compiler refuses a
        # definition with errors, and takes these problems instead of validating again.
        definition, problems = checked_definition(rows, backend=backend, limits=limits)
        machine = compile_workflow(definition, backend=backend, limits=limits, problems=problems)
        runner = WorkflowRunner(machine, backend=backend, limits=limits)
        steps = {step.name: step for step in rows.steps}
        statuses = {
            (step.name, status.name): status
            for step in rows.steps
            for status in step.possible_statuses.all()
        }
        return CachedWorkflow(
            workflow_id=workflow.pk,
            revision=workflow.revision,
            using=_alias(workflow),
            runner=runner,
            steps=steps,
            statuses=statuses,
            step_names={step.pk: step.name for step in rows.steps},
            status_names={status.pk: status.name for status in statuses.values()},
            workflow_values=tuple(
                (field.attname, getattr(workflow, field.attname))
                for field in Workflow._meta.concrete_fields
            ),
        )

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


workflow_cache = WorkflowCache()


def cached_workflow(workflow: Workflow) -> CachedWorkflow:
    """The compiled form of ``workflow`` (cached per database, id and revision)."""
    return workflow_cache.get(workflow)


def _alias(workflow: Workflow) -> str:
    return workflow._state.db or DEFAULT_DB_ALIAS


def _load_rows(workflow: Workflow) -> WorkflowRows:
    """The workflow's rows; on PostgreSQL outside a transaction, from one snapshot.

    The rows take three queries. Outside a transaction on PostgreSQL they run, with a
    new read of the workflow row, in a ``REPEATABLE READ READ ONLY`` transaction, so
    they are the rows of one committed revision. Elsewhere :meth:`WorkflowCache._compile`
    detects a load an edit committed in the middle of.
    """
    using = _alias(workflow)
    connection = connections[using]
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return load_workflow_rows(workflow)
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        current = Workflow.objects.using(using).filter(pk=workflow.pk).first()
        return load_workflow_rows(current if current is not None else workflow)
