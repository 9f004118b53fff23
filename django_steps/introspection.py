"""Introspection of stored workflows and instances: structure, options now, and ``explain``.

These functions read only; none writes to the database. Workflows are compiled
through :func:`django_steps._engine.cache.cached_workflow`, so they honour the
``DJANGO_STEPS`` settings and cost no query on a cache hit. The results are the
dataclasses of :mod:`django_steps.machines.describe` and
:mod:`django_steps.machines.explain`, which also work on plain definitions with no
database (see :mod:`django_steps.testing`).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from ._engine.cache import cached_workflow
from ._engine.context import actor_values, surroundings_for
from .actors import is_system
from .conf import current_limits, steps_settings
from .exceptions import WorkflowNotFound
from .machines.context import Surroundings
from .machines.definition import WorkflowDefinition
from .machines.describe import (
    StateDescription,
    WorkflowDescription,
    describe_definition,
    describe_state,
)
from .machines.explain import Explanation, explain_status
from .machines.runner import MachineState, WorkflowRunner
from .models import Workflow, WorkflowInstance

__all__ = [
    "WorkflowRef",
    "describe_instance",
    "describe_workflow",
    "explain",
    "instance_state",
    "workflow_runner",
]

WorkflowRef = Workflow | WorkflowDefinition | str


def workflow_runner(workflow: WorkflowRef) -> WorkflowRunner:
    """The runner of a stored workflow (row or name) or of a plain definition.

    Raises :class:`~django_steps.exceptions.WorkflowNotFound` for an unknown name and
    :class:`~django_steps.exceptions.DefinitionError` listing the problems when it
    has validation errors.
    """
    if isinstance(workflow, WorkflowDefinition):
        return WorkflowRunner(workflow, backend=steps_settings.CEL_BACKEND, limits=current_limits())
    if isinstance(workflow, str):
        name = workflow
        try:
            workflow = Workflow.objects.get(name=name)
        except Workflow.DoesNotExist:
            raise WorkflowNotFound(name) from None
    return cached_workflow(workflow).runner


def instance_state(instance: WorkflowInstance) -> tuple[WorkflowRunner, MachineState]:
    """The runner of an instance's workflow and the instance's machine state."""
    compiled = cached_workflow(instance.workflow)
    return compiled.runner, compiled.state_of(instance)


def describe_workflow(workflow: WorkflowRef) -> WorkflowDescription:
    """A workflow's machine class, steps, statuses and transitions in the order tried."""
    return describe_definition(workflow_runner(workflow))


def describe_instance(instance: WorkflowInstance, *, actor: Any = None) -> StateDescription:
    """The statuses an instance may take now and whether it can be held, resumed, cancelled.

    The answers come from the same :class:`~django_steps.machines.WorkflowRunner`
    the services use, tried on a copy of the instance's state, with the context the
    services would build (its object, ``actor``, the instance, now).
    """
    runner, state = instance_state(instance)
    return describe_state(runner, state, surroundings_for(instance, actor=actor))


def explain(
    subject: WorkflowInstance | WorkflowRef,
    context_data: Mapping[str, Any] | None = None,
    *,
    step: str | None = None,
    status: str | None = None,
    actor: Any = None,
    now: datetime.datetime | None = None,
) -> Explanation:
    """Explain what setting ``status`` would do, evaluating every outgoing condition.

    ``subject`` is an instance (its current step and status are used) or a workflow
    (row, name or definition; ``step`` defaults to the initial step, at its default
    status). ``status`` defaults to the step's completion status. Each outgoing
    transition of the step is evaluated against ``context_data`` in the order the
    engine tries them, and the result says which one would be taken, or why the
    update would be refused. Nothing is changed.

    For an instance, conditions see what the services would give them: its object,
    ``actor``, the instance and ``now`` (default: the current time). For a workflow
    there is no object (``object`` is ``{}``) nor stored instance.
    """
    if isinstance(subject, WorkflowInstance):
        if step is not None:
            raise ValueError(
                "explain() takes no step for an instance: it explains the instance's current "
                "step. Pass the workflow instead to explain another step."
            )
        runner, state = instance_state(subject)
        surroundings = surroundings_for(subject, actor=actor, now=now)
    else:
        runner = workflow_runner(subject)
        state = _state_at(runner, step)
        surroundings = Surroundings(
            actor=actor_values(actor),
            now=now,
            has_perm=getattr(actor, "has_perm", None),
            system=is_system(actor),
        )
    return explain_status(runner, state, context_data, status, surroundings)


def _state_at(runner: WorkflowRunner, step_name: str | None) -> MachineState:
    """A fresh state at ``step_name`` (default: where a new instance starts)."""
    if step_name is None:
        state, _ = runner.start()
        return state
    step = runner.definition.get_step(step_name)
    return MachineState(step=step.name, status=runner.default_status(step).name)
