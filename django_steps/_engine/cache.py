"""Process-wide cache of compiled workflows, keyed by workflow and definition version.

Internal (see :mod:`django_steps._engine`).

:func:`cached_workflow` returns the compiled form of a workflow row. The workflow's
``version`` is read together with the instance (one joined query), so a cache hit
costs no query; a change to any step, status or transition bumps the version and
every process rebuilds on its next use, without a restart.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from ..cel import CelLimits
from ..conf import current_limits, steps_settings
from ..exceptions import DefinitionError
from ..machines.compiler import compile_workflow
from ..machines.definition import WorkflowDefinition
from ..machines.lifecycle import Lifecycle
from ..machines.runner import MachineState, WorkflowRunner
from ..models import Workflow, WorkflowInstance, WorkflowStep, WorkflowStepStatus
from .loading import checked_definition, load_workflow_rows


@dataclass(frozen=True)
class CachedWorkflow:
    """A workflow's runner and the rows it maps names to (read-only, shared)."""

    workflow_id: Any
    version: int
    created_at: Any
    runner: WorkflowRunner
    steps: dict[str, WorkflowStep]
    statuses: dict[tuple[str, str], WorkflowStepStatus]
    step_names: dict[Any, str]
    status_names: dict[Any, str]
    workflow_values: tuple[tuple[str, Any], ...] = ()

    def workflow_row(self, using: str) -> Workflow:
        """A new ``Workflow`` object holding the row this entry was compiled from.

        Any save of a workflow bumps its version, so the row of a matching version is
        this one; each caller gets its own object.
        """
        names = [name for name, _ in self.workflow_values]
        # JSON values are copied: a caller changing its object must not change the cache.
        values = [
            copy.deepcopy(value) if isinstance(value, (dict, list)) else value
            for _, value in self.workflow_values
        ]
        return Workflow.from_db(using, names, values)

    def matches(self, workflow: Workflow) -> bool:
        """Whether this entry was compiled from this row's current definition.

        ``created_at`` tells a workflow from one deleted and recreated with the same
        primary key (SQLite reuses them).
        """
        return self.version == workflow.version and self.created_at == workflow.created_at

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
    """A bounded, thread-safe LRU of :class:`CachedWorkflow` per workflow id."""

    def __init__(self) -> None:
        self._entries: OrderedDict[Any, CachedWorkflow] = OrderedDict()
        self._settings_key: tuple[Any, ...] | None = None
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def current(self, workflow_id: Any, version: int, created_at: Any) -> CachedWorkflow | None:
        """The entry of this workflow version if it is cached (no compiling, no query)."""
        settings_key = (steps_settings.CEL_BACKEND, current_limits())
        with self._lock:
            if settings_key != self._settings_key:
                return None  # the settings changed: get() recompiles
            entry = self._entries.get(workflow_id)
            if entry is None or entry.version != version or entry.created_at != created_at:
                return None
            self._entries.move_to_end(workflow_id)
            self.hits += 1
            return entry

    def get(self, workflow: Workflow) -> CachedWorkflow:
        """The compiled workflow for this row's version, compiling it on a miss.

        Raises :class:`~django_steps.exceptions.DefinitionError` when the stored
        definition cannot be compiled.
        """
        backend, limits = steps_settings.CEL_BACKEND, current_limits()
        settings_key = (backend, limits)
        with self._lock:
            if settings_key != self._settings_key:
                self._entries.clear()
                self._settings_key = settings_key
            entry = self._entries.get(workflow.pk)
            if entry is not None and entry.matches(workflow):
                self._entries.move_to_end(workflow.pk)
                self.hits += 1
                return entry
        self.misses += 1
        entry = self._compile(workflow, backend, limits)
        with self._lock:
            current = self._entries.get(workflow.pk)
            # Keep a newer entry another thread stored meanwhile, but never one left by a
            # deleted workflow whose primary key was reused: it would block this one.
            if (
                current is None
                or current.created_at != entry.created_at
                or current.version <= entry.version
            ):
                self._entries[workflow.pk] = entry
                self._entries.move_to_end(workflow.pk)
            while len(self._entries) > max(1, steps_settings.MACHINE_CACHE_SIZE):
                self._entries.popitem(last=False)
        return entry

    def _compile(self, workflow: Workflow, backend: str, limits: CelLimits) -> CachedWorkflow:
        rows = load_workflow_rows(workflow)
        # Validated once per version, on a miss, rows included: the compiler refuses a
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
            version=workflow.version,
            created_at=workflow.created_at,
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
    """The compiled form of ``workflow`` (cached per id and version)."""
    return workflow_cache.get(workflow)
