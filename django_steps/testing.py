"""Test workflow definitions with no database and no Django settings.

Load a definition from a dict, a YAML or JSON file, or a ``steps_export`` file, then
drive it through statuses and contexts, or assert where a context leads::

    from django_steps.testing import assert_transition, drive, load_definition

    claims = load_definition("workflows/claims.yaml")
    run = drive(claims, ["Accepted", ("Approved", {"claim": {"amount": 50000.0,
                                                             "is_high_risk": False}})])
    assert run.path == ["Submitted", "Review", "Senior Review"]

    assert_transition(claims, from_step="Review", status="Approved",
                      context={"claim": {"amount": 500.0, "is_high_risk": True}},
                      to_step="Investigation")

Conditions see ``object``, ``actor`` and ``now`` as the plain values given here
(``drive(orders, ["Approved"], object={"amount": 25000.0}, actor={...})``), ``status``
as the status being set and ``instance`` as the scenario's own (``id`` is ``None``).

Deadlines run on a controllable clock: a scenario starts at a fixed time and
:meth:`WorkflowScenario.advance` (or a ``timedelta`` among :func:`drive`'s actions)
moves it on, firing each timeout at its due time as the timer sweep would::

    run = drive(claims, ["Accepted", timedelta(days=3)])
    assert run.status == "Escalated"

Status rules (``permission``, ``actor_condition``) apply as in the services. An actor
is plain values: ``{"id": 7, "username": "mia", "groups": ["managers"],
"permissions": ["purchasing.approve_order"]}`` holds exactly the permissions listed;
:data:`~django_steps.actors.SYSTEM` passes every rule, and no actor passes none.
Switch actor with :meth:`WorkflowScenario.acting_as`; ``instance.actors`` records the
``id`` of who set a status at each step, as the services do::

    run = WorkflowScenario(orders, actor=clerk).set_status("Submitted")
    run.acting_as(manager).set_status("Approved")
    assert run.available() == []

The same :class:`~django_steps.machines.WorkflowRunner` as the services applies the
rules, so a definition behaves here as it does in the database. This module imports
only the database-free :mod:`django_steps.machines` package.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Union

from .actors import SYSTEM, SystemActor, is_system
from .cel import DEFAULT_LIMITS, CelLimits
from .exceptions import DefinitionError
from .machines.context import Surroundings
from .machines.deadlines import Deadline, next_deadline
from .machines.definition import WorkflowDefinition
from .machines.describe import StateDescription, describe_state
from .machines.explain import Explanation, explain_status
from .machines.lifecycle import ChangeKind, Lifecycle
from .machines.runner import Change, MachineState, Outcome, WorkflowRunner
from .machines.serialization import definitions_from_data, read_definitions

__all__ = [
    "CANCEL",
    "HOLD",
    "RESUME",
    "START_TIME",
    "SYSTEM",
    "Operation",
    "ScenarioResult",
    "WorkflowScenario",
    "assert_transition",
    "drive",
    "explain_definition",
    "load_definition",
    "load_definitions",
    "runner_for",
]

DefinitionSource = Union[WorkflowDefinition, Mapping[str, Any], str, Path]  # noqa: UP007


class Operation(str, enum.Enum):
    """Operations that are not a status, for :func:`drive`."""

    HOLD = "hold"
    RESUME = "resume"
    CANCEL = "cancel"


HOLD, RESUME, CANCEL = Operation.HOLD, Operation.RESUME, Operation.CANCEL

Action = Union[str, Operation, timedelta, tuple[str, Union[Mapping[str, Any], None]]]  # noqa: UP007

#: Where a scenario's clock starts unless it is given ``now``.
START_TIME = datetime(2030, 1, 1, tzinfo=timezone.utc)


# --- loading ---------------------------------------------------------------------------


def load_definitions(source: Mapping[str, Any] | str | Path) -> list[WorkflowDefinition]:
    """Every workflow of a definitions file (path) or of its parsed data (dict)."""
    if isinstance(source, Mapping):
        return definitions_from_data(source)
    return read_definitions(source)


def load_definition(source: DefinitionSource, *, name: str | None = None) -> WorkflowDefinition:
    """One workflow from a definition, a dict, or a YAML/JSON/export file.

    ``name`` picks a workflow from a file that holds several; without it the file
    must hold exactly one. :class:`~django_steps.exceptions.DefinitionError` says
    what is wrong.
    """
    if isinstance(source, WorkflowDefinition):
        return source
    definitions = load_definitions(source)
    if name is not None:
        for definition in definitions:
            if definition.name == name:
                return definition
        known = ", ".join(repr(d.name) for d in definitions) or "none"
        raise DefinitionError(f"No workflow named {name!r} (found: {known}).", workflow=name)
    if len(definitions) != 1:
        known = ", ".join(repr(d.name) for d in definitions) or "none"
        raise DefinitionError(
            f"Expected one workflow, found {len(definitions)} ({known}); pass name=... to pick one."
        )
    return definitions[0]


@functools.lru_cache(maxsize=64)
def _runner(definition: WorkflowDefinition, backend: str, limits: CelLimits) -> WorkflowRunner:
    return WorkflowRunner(definition, backend=backend, limits=limits)


def runner_for(
    source: DefinitionSource, *, backend: str = "celpy", limits: CelLimits = DEFAULT_LIMITS
) -> WorkflowRunner:
    """The (cached) runner of a definition.

    A definition with validation errors raises
    :class:`~django_steps.exceptions.DefinitionError` with the same ``problems`` (and
    codes) as the services; so do every helper below, which run through it.
    """
    return _runner(load_definition(source), backend, limits)


# --- driving ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ScenarioResult:
    """Where a scenario went: the steps visited, every change, and the final state."""

    path: list[str]
    history: list[Change]
    step: str | None
    status: str | None
    lifecycle: Lifecycle
    due_at: datetime | None = None
    timeouts: list[datetime] = field(default_factory=list)

    @property
    def is_completed(self) -> bool:
        return self.lifecycle is Lifecycle.COMPLETED

    @property
    def is_cancelled(self) -> bool:
        return self.lifecycle is Lifecycle.CANCELLED

    def __str__(self) -> str:
        lines = [
            f"Path: {' -> '.join(self.path)}",
            f"Final: step {self.step!r}, status {self.status!r}, {self.lifecycle.value}",
            "History:",
        ]
        lines += [
            f"  {c.kind.value}: {c.from_step}/{c.from_status} -> {c.to_step}/{c.to_status}"
            for c in self.history
        ]
        return "\n".join(lines)


#: What conditions see as ``actor`` when ``SYSTEM`` acts (as the engine gives them).
SYSTEM_VALUES: Mapping[str, Any] = {
    "id": None,
    "username": "SYSTEM",
    "groups": [],
    "is_staff": False,
    "is_superuser": False,
}


def plain_surroundings(
    object: Mapping[str, Any] | None,
    actor: Mapping[str, Any] | SystemActor | None,
    instance: Mapping[str, Any],
    now: datetime,
) -> Surroundings:
    """The surroundings of plain values: ``actor`` holds the permissions its
    ``"permissions"`` list names, ``SYSTEM`` passes every rule, ``None`` none."""
    if is_system(actor):
        return Surroundings(
            object=dict(object or {}), actor=SYSTEM_VALUES, instance=instance, now=now, system=True
        )
    has_perm = None
    if isinstance(actor, Mapping):
        has_perm = frozenset(actor.get("permissions") or ()).__contains__
    return Surroundings(
        object=dict(object or {}), actor=actor, instance=instance, now=now, has_perm=has_perm
    )


@dataclass
class WorkflowScenario:
    """A workflow instance with no database, started at creation; calls chain.

    ``WorkflowScenario(claims).set_status("Accepted").set_status("Approved", ctx)``.
    Refused operations raise the same :class:`~django_steps.exceptions.StepsError`
    subclasses as the services, and leave the scenario unchanged. Conditions see
    ``object`` and ``actor`` as given (``{}`` and ``None`` by default), ``now`` as the
    scenario's clock and ``instance`` with ``id`` ``None``. The
    actor holds the permissions its ``"permissions"`` list names (``SYSTEM``: all);
    ``actors`` maps each step to the ``id`` of the actor who last set a status there.

    The scenario has a clock, ``now`` (:data:`START_TIME` unless given), which only
    :meth:`advance` moves; ``due_at`` follows the same rules as an instance's in the
    database, and ``timeouts`` lists when each timeout fired (as ``SYSTEM``, like the
    timer sweep).
    """

    definition: DefinitionSource
    backend: str = "celpy"
    limits: CelLimits = DEFAULT_LIMITS
    object: Mapping[str, Any] | None = None
    actor: Mapping[str, Any] | SystemActor | None = None
    now: datetime = START_TIME
    actors: dict[str, Any] = field(init=False, default_factory=dict)
    runner: WorkflowRunner = field(init=False)
    state: MachineState = field(init=False)
    history: list[Change] = field(init=False, default_factory=list)
    started_at: datetime = field(init=False)
    step_entered_at: datetime = field(init=False)
    deadline: Deadline = field(init=False, default_factory=Deadline)
    timeouts: list[datetime] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.runner = runner_for(self.definition, backend=self.backend, limits=self.limits)
        self.definition = self.runner.definition
        self.state, outcome = self.runner.start()
        self.history = []
        self.started_at = self.step_entered_at = self.now
        self._apply(outcome)

    def surroundings(self) -> Surroundings:
        """What the scenario's conditions see as ``object``, ``actor``, ``instance``, ``now``."""
        return self._surroundings(self.actor)

    def _surroundings(self, actor: Mapping[str, Any] | SystemActor | None) -> Surroundings:
        return plain_surroundings(
            self.object,
            actor,
            {
                "id": None,
                "started_at": self.started_at,
                "step_entered_at": self.step_entered_at,
                "due_at": self.deadline.due_at,
                "actors": dict(self.actors),
            },
            now=self.now,
        )

    def acting_as(self, actor: Mapping[str, Any] | SystemActor | None) -> WorkflowScenario:
        """Make the next operations as ``actor`` (plain values, ``SYSTEM`` or ``None``)."""
        self.actor = actor
        return self

    def available(self) -> list[str]:
        """The statuses the current actor may set now, as ``get_available_statuses`` says."""
        return [
            status.name
            for status, reason in self.runner.status_options(self.state, self.surroundings())
            if not reason
        ]

    def _apply(self, outcome: Outcome, *, timed_out: bool = False) -> WorkflowScenario:
        self.history.extend(outcome.changes)
        actor_id = self.actor.get("id") if isinstance(self.actor, Mapping) else None
        if not timed_out and actor_id is not None and outcome.acted_at is not None:
            self.actors[outcome.acted_at] = actor_id
        if any(change.kind is ChangeKind.STEP_CHANGED for change in outcome.changes):
            self.step_entered_at = self.now
        self.deadline = next_deadline(
            self.runner.definition,
            self.state,
            outcome,
            self.deadline,
            self.now,
            timed_out=timed_out,
        )
        return self

    @property
    def due_at(self) -> datetime | None:
        """When the instance times out at its current step (``None``: no deadline)."""
        return self.deadline.due_at

    def advance(self, duration: timedelta | None = None, **units: float) -> WorkflowScenario:
        """Move the clock on by ``duration`` (or ``timedelta(**units)``: ``hours=1``).

        Each timeout due on the way fires at its due time, as a timer sweep running
        all along would: the step's timeout status is set, the deadline of the step it
        leads to (if any) starts then. A timeout that is refused (no transition
        passes, a condition fails) raises its error with the clock at that due time.
        """
        target = self.now + (duration if duration is not None else timedelta(**units))
        while self.deadline.due_at is not None and self.deadline.is_due(target):
            self.now = max(self.now, self.deadline.due_at)
            outcome = self.runner.time_out(self.state, self._surroundings(SYSTEM))
            self._apply(outcome, timed_out=True)
            if not outcome.changed:  # already at the timeout status: the deadline is spent
                self.deadline = Deadline(None, self.deadline.held_at)
            self.timeouts.append(self.now)
        self.now = target
        return self

    def set_status(self, status: str, context: Mapping[str, Any] | None = None) -> WorkflowScenario:
        """Set a status of the current step (completing it takes a transition)."""
        return self._apply(self.runner.set_status(self.state, status, context, self.surroundings()))

    def hold(self) -> WorkflowScenario:
        return self._apply(self.runner.hold(self.state, self.surroundings()))

    def resume(self) -> WorkflowScenario:
        return self._apply(self.runner.resume(self.state, self.surroundings()))

    def cancel(self) -> WorkflowScenario:
        return self._apply(self.runner.cancel(self.state, self.surroundings()))

    def perform(self, action: Action) -> WorkflowScenario:
        """One :func:`drive` action: a status, ``(status, context)``, an :class:`Operation`
        or a ``timedelta`` to :meth:`advance` the clock by."""
        if isinstance(action, timedelta):
            return self.advance(action)
        if isinstance(action, Operation):
            return getattr(self, action.value)()
        if isinstance(action, tuple):
            status, context = action
            return self.set_status(status, context)
        return self.set_status(action)

    @property
    def step(self) -> str | None:
        return self.state.step

    @property
    def status(self) -> str | None:
        return self.state.status

    @property
    def lifecycle(self) -> Lifecycle:
        return self.state.lifecycle

    @property
    def path(self) -> list[str]:
        """The steps visited, from the initial step to the current one."""
        steps = [c.to_step for c in self.history if c.kind is ChangeKind.STARTED]
        steps += [c.to_step for c in self.history if c.kind is ChangeKind.STEP_CHANGED]
        return [step for step in steps if step is not None]

    def options(self) -> StateDescription:
        """What the scenario's instance may do now (statuses, hold, resume, cancel)."""
        return describe_state(self.runner, self.state, self.surroundings())

    def explain(
        self, context: Mapping[str, Any] | None = None, status: str | None = None
    ) -> Explanation:
        """Explain setting ``status`` (default: the completion status) now; changes nothing."""
        return explain_status(self.runner, self.state, context, status, self.surroundings())

    def result(self) -> ScenarioResult:
        return ScenarioResult(
            path=self.path,
            history=list(self.history),
            step=self.state.step,
            status=self.state.status,
            lifecycle=self.state.lifecycle,
            due_at=self.due_at,
            timeouts=list(self.timeouts),
        )


def drive(
    definition: DefinitionSource,
    actions: Iterable[Action],
    *,
    object: Mapping[str, Any] | None = None,
    actor: Mapping[str, Any] | SystemActor | None = None,
    now: datetime | None = None,
    backend: str = "celpy",
    limits: CelLimits = DEFAULT_LIMITS,
) -> ScenarioResult:
    """Start the workflow and perform ``actions`` in turn; the path and final state.

    An action is a status name, a ``(status, context)`` pair, :data:`HOLD`,
    :data:`RESUME`, :data:`CANCEL`, or a ``timedelta`` that advances the clock (firing
    the timeouts due on the way). A refused action raises its
    :class:`~django_steps.exceptions.StepsError`. Conditions see ``object``, ``actor`` and
    ``now`` as given (plain values, e.g. ``object={"amount": 25000.0}``,
    ``actor={"username": "mia", "groups": ["managers"]}``; ``now`` defaults to
    :data:`START_TIME`).
    """
    scenario = WorkflowScenario(
        definition,
        backend=backend,
        limits=limits,
        object=object,
        actor=actor,
        now=START_TIME if now is None else now,
    )
    for action in actions:
        scenario.perform(action)
    return scenario.result()


# --- assertions ------------------------------------------------------------------------


def explain_definition(
    definition: DefinitionSource,
    context: Mapping[str, Any] | None = None,
    *,
    step: str | None = None,
    status: str | None = None,
    object: Mapping[str, Any] | None = None,
    actor: Mapping[str, Any] | SystemActor | None = None,
    now: datetime | None = None,
    backend: str = "celpy",
    limits: CelLimits = DEFAULT_LIMITS,
) -> Explanation:
    """Explain setting ``status`` (default: completion) at ``step`` (default: initial).

    Conditions see ``object``, ``actor`` and ``now`` as given.
    """
    runner = runner_for(definition, backend=backend, limits=limits)
    if step is None:
        state, _ = runner.start()
    else:
        step_definition = runner.definition.get_step(step)
        state = MachineState(step=step, status=runner.default_status(step_definition).name)
    when = now or START_TIME
    surroundings = plain_surroundings(
        object, actor, {"id": None, "started_at": when, "step_entered_at": when}, when
    )
    return explain_status(runner, replace(state), context, status, surroundings)


def assert_transition(
    definition: DefinitionSource,
    *,
    from_step: str,
    to_step: str,
    context: Mapping[str, Any] | None = None,
    status: str | None = None,
    object: Mapping[str, Any] | None = None,
    actor: Mapping[str, Any] | SystemActor | None = None,
    now: datetime | None = None,
    backend: str = "celpy",
    limits: CelLimits = DEFAULT_LIMITS,
) -> Explanation:
    """Assert that setting ``status`` at ``from_step`` with ``context`` leads to ``to_step``.

    ``status`` defaults to the step's completion status; a step with several must be
    told which one (``ValueError`` otherwise), since conditions may route each one
    differently. Conditions see ``object``, ``actor`` and ``now`` as given. On failure
    the ``AssertionError`` shows every condition's result and the engine's verdict.
    Returns the :class:`~django_steps.machines.explain.Explanation`.
    """
    if status is None:
        step = runner_for(definition, backend=backend, limits=limits).definition.get_step(from_step)
        completions = [s.name for s in step.statuses if s.is_completion]
        if len(completions) > 1:
            raise ValueError(
                f"Step {from_step!r} has several completion statuses "
                f"({', '.join(map(repr, completions))}); pass status=... to choose the one "
                "to assert."
            )
    explanation = explain_definition(
        definition,
        context,
        step=from_step,
        status=status,
        object=object,
        actor=actor,
        now=now,
        backend=backend,
        limits=limits,
    )
    if explanation.next_step != to_step:
        if explanation.allowed:
            got = f"it goes to {explanation.next_step!r}"
        else:
            got = "the update is refused"
        raise AssertionError(
            f"Expected step {from_step!r} with status {explanation.status!r} to lead to "
            f"{to_step!r}, but {got}.\n\n{explanation}"
        )
    return explanation
