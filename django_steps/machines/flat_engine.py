"""A python-statemachine engine that skips the statechart work a flat machine never needs.

Internal: the compiler gives it to the machines it builds.

Compiled workflow machines are flat: every state is a top-level atomic state, no
history, no parallel regions, no eventless transitions, no invoked children. The
library's :class:`~statemachine.engines.sync.SyncEngine` runs the full SCXML
algorithm for every event anyway: it looks for eventless transitions before and after
each event, resolves conflicts between enabled transitions, and computes the exit set,
entry set and transition domain of the transition it takes. For a flat machine those
results never change, so :class:`FlatMachineEngine` answers them without the work:

* eventless transitions are not looked for when the machine class has none;
* which transitions an event of the class names is worked out once per event, by
  the library's own matching, instead of matching every transition's event names
  (wildcards and dotted prefixes included) on every send;
* a single enabled transition has no conflict to resolve;
* a transition's ``before``, ``on`` and ``after`` content is skipped when nothing is
  registered for it (nor for ``prepare_event``): running it would only build the
  arguments of callbacks that do not exist;
* the exit and entry plans of a transition (the states left and entered, the new
  configuration) are computed once per machine by the library's own code, then reused
  for that transition whenever the machine is in its source state. They hold the
  machine's own state objects (python-statemachine gives each instance its own), so
  they are kept by the machine's engine, never by the class: a class-level plan would
  hand one machine's states to another's callbacks, and keep the first machine (and
  its model) alive as long as the class;
* a transition whose only condition is a guard the compiler marked (the CEL
  guards, which take only arguments given to ``send()``) has it called with those
  arguments, as the library's dispatch would, without building an event data object
  and binding the guard's signature for each transition tried; with a
  ``prepare_event`` callback (which may add arguments) or errors caught as events,
  the library dispatches it.

Transitions are still selected by the library (guards in priority order, the first
that passes is taken), and every callback group (``before``, exit, ``on``, entry,
``after``, listeners) still runs as the library runs it. A machine that is not flat (or has
async callbacks) gets the library's engine unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from statemachine.engines.sync import SyncEngine
from statemachine.orderedset import OrderedSet

if TYPE_CHECKING:
    from statemachine import StateChart
    from statemachine.event_data import TriggerData
    from statemachine.state import State
    from statemachine.transition import Transition


class FlatShape:
    """What the engine needs to know about a flat machine class, worked out once.

    ``transitions`` are the class's own transitions (never the throw-away ones the
    library builds to enter the initial state). Everything here belongs to the class
    and is shared by its machines; nothing refers to one machine.
    """

    __slots__ = (
        "event_ids",
        "guards",
        "has_eventless",
        "matches",
        "transitions",
    )

    def __init__(
        self,
        transitions: frozenset[Transition],
        has_eventless: bool,
        event_ids: frozenset[str],
        guards: dict[Transition, DirectGuard] | None = None,
    ):
        self.transitions = transitions
        self.has_eventless = has_eventless
        self.event_ids = event_ids
        self.guards = guards or {}
        self.matches: dict[str, frozenset[Transition]] = {}

    def matching(self, event: Any) -> frozenset[Transition] | None:
        """The class's transitions ``event`` triggers; ``None`` for an event not declared.

        ``event`` may be a machine's bound event, which refers to its machine: the
        cache is keyed by the event's name, so it keeps no machine alive.
        """
        if event is None:
            return None
        name = str(event)
        if name not in self.event_ids:
            return None
        found = self.matches.get(name)
        if found is None:
            found = self.matches[name] = frozenset(t for t in self.transitions if t.match(name))
        return found

    @classmethod
    def of(cls, machine_class: type[StateChart]) -> FlatShape | None:
        """The shape of ``machine_class``, or ``None`` when the class is not flat."""
        shape = machine_class.__dict__.get("_flat_shape", False)
        if shape is False:
            shape = cls._compute(machine_class)
            # Set on the class itself, so a subclass works out its own shape.
            type.__setattr__(machine_class, "_flat_shape", shape)
        return shape

    @classmethod
    def _compute(cls, machine_class: type[StateChart]) -> FlatShape | None:
        states = list(machine_class.states_map.values())
        if any(
            not state.is_atomic or state.parent is not None or state.is_history or state.history
            for state in states
        ):
            return None
        transitions = [t for state in states for t in state.transitions]
        return cls(
            frozenset(transitions),
            any(t.is_eventless for t in transitions),
            frozenset(str(event) for event in machine_class._events),
            {t: guard for t in transitions if (guard := _direct_guard(t)) is not None},
        )


DirectGuard = tuple[Callable[..., bool], tuple[str, ...]]

DIRECT_ARGUMENTS = "direct_arguments"
"""Attribute naming the keyword arguments of a guard the engine may call directly."""


def _direct_guard(transition: Transition) -> DirectGuard | None:
    """The transition's guard when it is its only condition and marked for direct calls.

    The compiler marks its CEL guards with the keyword arguments they take, all of
    which come from ``send()``: calling such a guard with them is what the library's
    callback dispatch does, without building an event data object and binding the
    guard's signature for every transition tried.
    """
    specs = list(transition.cond)
    if len(specs) != 1 or list(transition.validators):
        return None
    (spec,) = specs
    arguments = getattr(spec.func, DIRECT_ARGUMENTS, None)
    if arguments is None or spec.is_convention or spec.cond is not None:
        return None
    if spec.expected_value is not True:  # an ``unless`` guard
        return None
    return spec.func, tuple(arguments)


class FlatMachineEngine(SyncEngine):
    """:class:`SyncEngine` for a flat machine class; see the module docstring."""

    def __init__(self, sm: StateChart, shape: FlatShape):
        super().__init__(sm)
        self.shape = shape
        # This machine's plans per transition: they hold its own state objects.
        self.exit_plans: dict[Transition, Any] = {}
        self.entry_plans: dict[Transition, Any] = {}

    def _run_macrostep(self) -> bool:
        # Without eventless transitions, a macrostep can only run internal events.
        if not self.shape.has_eventless and self.internal_queue.is_empty():
            self._microstep_count = 0
            return False
        return bool(super()._run_macrostep())

    def select_eventless_transitions(self, trigger_data: TriggerData) -> OrderedSet[Transition]:
        if not self.shape.has_eventless:
            return OrderedSet()
        return super().select_eventless_transitions(trigger_data)

    def select_transitions(self, trigger_data: TriggerData) -> OrderedSet[Transition]:
        matching = self.shape.matching(trigger_data.event)
        if matching is None:
            return super().select_transitions(trigger_data)
        return self._select_transitions(trigger_data, lambda transition, _: transition in matching)

    def _conditions_match(self, transition: Transition, trigger_data: TriggerData) -> bool:
        direct = self.shape.guards.get(transition)
        callbacks = self.sm._callbacks
        if (
            direct is None
            or self.sm.prepare.key in callbacks  # prepare_event may add arguments
            or self._on_error_handler() is not None  # errors become events: the library's way
        ):
            return bool(super()._conditions_match(transition, trigger_data))
        guard, names = direct
        given = trigger_data.kwargs
        return bool(guard(**{name: given[name] for name in names if name in given}))

    def _filter_conflicting_transitions(
        self, transitions: OrderedSet[Transition]
    ) -> OrderedSet[Transition]:
        if len(transitions) <= 1:
            return transitions
        return super()._filter_conflicting_transitions(transitions)

    def _execute_transition_content(
        self,
        enabled_transitions: list[Transition],
        trigger_data: TriggerData,
        get_key: Callable[[Transition], str],
        set_target_as_state: bool = False,
        **kwargs_extra: Any,
    ) -> list[Any]:
        callbacks = self.sm._callbacks
        if self.sm.prepare.key not in callbacks and not any(
            get_key(transition) in callbacks for transition in enabled_transitions
        ):
            return []
        result: list[Any] = super()._execute_transition_content(
            enabled_transitions, trigger_data, get_key, set_target_as_state, **kwargs_extra
        )
        return result

    def _cached(self, transitions: list[Transition], active: Any) -> Transition | None:
        """The transition whose cached plans apply, or ``None`` to compute them.

        They apply to one of the class's own transitions taken from its source state,
        ``active`` being the active state values (a flat machine has one).
        """
        if len(transitions) != 1:
            return None
        transition = transitions[0]
        if transition in self.shape.transitions and active == transition.source.value:
            return transition
        return None

    def _prepare_exit_states(self, enabled_transitions: list[Transition]) -> Any:
        key = self._cached(enabled_transitions, self.sm.current_state_value)
        if key is None:
            return super()._prepare_exit_states(enabled_transitions)
        plan = self.exit_plans.get(key)
        if plan is None:
            plan = self.exit_plans[key] = super()._prepare_exit_states(enabled_transitions)
        return plan

    def _prepare_entry_states(
        self,
        enabled_transitions: list[Transition],
        states_to_exit: OrderedSet[State],
        previous_configuration: OrderedSet[State],
    ) -> Any:
        active = (
            next(iter(previous_configuration)).value if len(previous_configuration) == 1 else None
        )
        key = self._cached(enabled_transitions, active)
        if key is None:
            return super()._prepare_entry_states(
                enabled_transitions, states_to_exit, previous_configuration
            )
        plan = self.entry_plans.get(key)
        if plan is None:
            plan = self.entry_plans[key] = super()._prepare_entry_states(
                enabled_transitions, states_to_exit, previous_configuration
            )
        return plan
