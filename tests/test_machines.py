"""Compiling and driving workflow machines with no database."""

from __future__ import annotations

import pytest
from statemachine import StateMachine

from django_steps.cel import compile_condition, convert_context
from django_steps.exceptions import (
    ConditionSyntaxError,
    ContextError,
    DefinitionError,
    InstanceFinished,
    InvalidStatus,
    NoTransitionAvailable,
    OperationNotAllowed,
    TransitionConditionError,
)
from django_steps.machines import (
    ChangeKind,
    MachineState,
    WorkflowDefinition,
    WorkflowRunner,
    compile_workflow,
)
from django_steps.machines.lifecycle import Lifecycle
from django_steps.machines.validation import errors_of, validate_definition
from tests.conftest import HIGH, LOW, RISKY
from tests.factories import claims_definition


@pytest.fixture
def runner(definition: WorkflowDefinition) -> WorkflowRunner:
    return WorkflowRunner(definition)


def at_review(runner: WorkflowRunner) -> MachineState:
    state, _ = runner.start()
    runner.set_status(state, "Accepted")
    assert state.step == "Review"
    return state


def test_compiled_class_is_a_state_machine_with_steps_as_states(definition):
    machine = compile_workflow(definition)
    assert issubclass(machine, StateMachine)
    assert [state.name for state in machine.states] == [s.name for s in definition.steps]
    assert machine.initial_state.name == "Submitted"
    assert [state.name for state in machine.final_states] == ["Closed"]
    assert set(machine.state_ids.values()) == {s.id for s in machine.states}


def test_safe_ids_for_names_with_spaces_and_reserved_words():
    definition = WorkflowDefinition.from_dict(
        {
            "name": "Odd names",
            "steps": [
                {
                    "name": "model",
                    "initial": True,
                    "statuses": [{"name": "a", "default": True}, {"name": "b", "completion": True}],
                },
                {
                    "name": "Senior Review",
                    "statuses": [{"name": "x", "default": True}, {"name": "y", "completion": True}],
                },
                {
                    "name": "senior-review",
                    "statuses": [{"name": "x", "default": True}, {"name": "y", "completion": True}],
                },
                {
                    "name": "complete",
                    "final": True,
                    "statuses": [{"name": "done", "default": True, "completion": True}],
                },
            ],
            "transitions": [
                {"from": "model", "to": "Senior Review", "condition": "go == 1"},
                {"from": "model", "to": "senior-review", "condition": "go == 2"},
                {"from": "model", "to": "complete"},
                {"from": "Senior Review", "to": "complete"},
                {"from": "senior-review", "to": "complete"},
            ],
        }
    )
    machine = compile_workflow(definition)
    assert len(machine.states) == 4
    assert machine.state_ids["Senior Review"] != machine.state_ids["senior-review"]
    runner = WorkflowRunner(machine)
    state, _ = runner.start()
    runner.set_status(state, "b", {"go": 2})
    assert state.step == "senior-review"


def test_compile_does_not_modify_the_definition(definition):
    before = definition.to_dict()
    compile_workflow(definition)
    assert definition.to_dict() == before


def test_recompiling_replaces_the_class_in_the_registry(definition):
    from statemachine import registry

    compile_workflow(definition)
    count = len(registry._REGISTRY)
    for _ in range(5):
        compile_workflow(definition)
    assert len(registry._REGISTRY) == count


def test_start_enters_initial_step_with_default_status(runner):
    state, outcome = runner.start()
    assert (state.step, state.status, state.lifecycle) == ("Submitted", "New", Lifecycle.RUNNING)
    assert outcome.kinds == [ChangeKind.STARTED]


@pytest.mark.parametrize(
    ("context", "target"),
    [(LOW, "Payment"), (HIGH, "Senior Review"), (RISKY, "Investigation")],
)
def test_completion_takes_first_passing_transition_by_priority(runner, context, target):
    state = at_review(runner)
    outcome = runner.set_status(state, "Approved", context)
    assert state.step == target
    assert state.status == runner.definition.get_step(target).default_status.name
    assert outcome.kinds == [ChangeKind.STATUS_CHANGED, ChangeKind.STEP_CHANGED]
    assert outcome.evaluations[-1].transition.to_step == target
    assert outcome.evaluations[-1].result is True
    assert all(e.result is False for e in outcome.evaluations[:-1])


def test_ties_in_priority_keep_creation_order():
    data = claims_definition()
    for transition in data["transitions"]:
        if transition["from"] == "Review":
            transition["priority"] = 5
            transition["condition"] = ""
    runner = WorkflowRunner(WorkflowDefinition.from_dict(data))
    state = at_review(runner)
    runner.set_status(state, "Approved", LOW)
    assert state.step == "Investigation"  # first created


def test_no_passing_condition_refuses_and_lists_each_condition():
    data = claims_definition()
    data["transitions"] = [
        t for t in data["transitions"] if t.get("condition") or t["from"] != "Review"
    ]
    runner = WorkflowRunner(WorkflowDefinition.from_dict(data))
    state = at_review(runner)
    before = MachineState(**vars(state))
    with pytest.raises(NoTransitionAvailable) as excinfo:
        runner.set_status(state, "Approved", LOW)
    assert state == before
    message = str(excinfo.value)
    assert "claim.is_high_risk == true" in message
    assert "claim.amount > 10000.0" in message
    assert [e.result for e in excinfo.value.evaluations] == [False, False]


def test_fail_closed_when_a_condition_cannot_be_evaluated(runner):
    state = at_review(runner)
    before = MachineState(**vars(state))
    with pytest.raises(TransitionConditionError) as excinfo:
        runner.set_status(state, "Approved", {"claim": {"amount": 5.0}})
    assert state == before
    message = str(excinfo.value)
    assert "'Claims'" in message
    assert "Review -> Investigation" in message
    assert "claim.is_high_risk == true" in message
    assert "is_high_risk" in message
    assert "activation" not in message.lower()
    assert "\n" not in message


def test_undefined_variable_is_named(runner):
    state = at_review(runner)
    with pytest.raises(TransitionConditionError, match="undefined variable 'claim'"):
        runner.set_status(state, "Approved", {})


def test_non_bool_condition_result_is_an_error():
    data = claims_definition()
    data["transitions"][1]["condition"] = "claim.amount"
    runner = WorkflowRunner(WorkflowDefinition.from_dict(data))
    state = at_review(runner)
    with pytest.raises(TransitionConditionError, match="not a bool"):
        runner.set_status(state, "Approved", LOW)


def test_plain_status_and_same_status(runner):
    state = at_review(runner)
    assert runner.set_status(state, "In progress").kinds == [ChangeKind.STATUS_CHANGED]
    assert runner.set_status(state, "In progress").changed is False
    assert state.status == "In progress"


def test_unknown_status_is_refused_with_the_step_statuses(runner):
    state = at_review(runner)
    with pytest.raises(InvalidStatus, match="'Review' has no status 'Paid'") as excinfo:
        runner.set_status(state, "Paid")
    assert excinfo.value.step == "Review"
    assert "'Pending'" in str(excinfo.value)


def test_hold_resume_returns_to_previous_status(runner):
    state = at_review(runner)
    runner.set_status(state, "In progress")
    assert runner.hold(state).kinds == [ChangeKind.HELD]
    assert (state.status, state.lifecycle) == ("On hold", Lifecycle.ON_HOLD)
    with pytest.raises(OperationNotAllowed, match="already on hold"):
        runner.hold(state)
    with pytest.raises(OperationNotAllowed, match="resume it"):
        runner.set_status(state, "Approved", LOW)
    runner.resume(state)
    assert (state.status, state.lifecycle) == ("In progress", Lifecycle.RUNNING)
    with pytest.raises(OperationNotAllowed, match="not on hold"):
        runner.resume(state)


def test_on_hold_status_is_the_same_as_hold(runner):
    state = at_review(runner)
    assert runner.set_status(state, "On hold").kinds == [ChangeKind.HELD]
    assert state.status_before_hold == "Pending"


def test_cancellation_status_is_accepted_while_on_hold(runner):
    state = at_review(runner)
    runner.hold(state)
    assert runner.set_status(state, "Rejected").kinds == [ChangeKind.CANCELLED]
    assert state.lifecycle is Lifecycle.CANCELLED
    with pytest.raises(InstanceFinished):
        runner.set_status(state, "Pending")
    with pytest.raises(InstanceFinished):
        runner.cancel(state)


def test_steps_without_hold_or_cancellation_status_refuse_them(runner):
    state = at_review(runner)
    runner.set_status(state, "Approved", LOW)  # Payment: no on-hold, no cancellation status
    with pytest.raises(OperationNotAllowed, match="no on-hold status"):
        runner.hold(state)
    with pytest.raises(OperationNotAllowed, match="no cancellation status"):
        runner.cancel(state)


def test_reaching_a_final_step_with_completion_default_completes(runner):
    state = at_review(runner)
    runner.set_status(state, "Approved", LOW)
    outcome = runner.set_status(state, "Paid")
    assert outcome.kinds == [
        ChangeKind.STATUS_CHANGED,
        ChangeKind.STEP_CHANGED,
        ChangeKind.COMPLETED,
    ]
    assert (state.step, state.status, state.lifecycle) == ("Closed", "Closed", Lifecycle.COMPLETED)


def test_completion_status_on_a_final_step_completes():
    data = claims_definition()
    data["steps"][-1]["statuses"] = [
        {"name": "Open", "default": True},
        {"name": "Archived", "completion": True},
    ]
    runner = WorkflowRunner(WorkflowDefinition.from_dict(data))
    state = at_review(runner)
    runner.set_status(state, "Approved", LOW)
    runner.set_status(state, "Paid")
    assert (state.step, state.lifecycle) == ("Closed", Lifecycle.RUNNING)
    assert runner.set_status(state, "Archived").kinds == [ChangeKind.COMPLETED]
    assert state.lifecycle is Lifecycle.COMPLETED


def test_machine_tells_which_transitions_the_context_allows(runner):
    state = at_review(runner)
    machine = runner.machine(state)
    # Completing a step is the machine's one event; hold, resume and cancel change the
    # status and lifecycle only, and are the runner's (describe_state tells them).
    assert {event.id for event in machine.allowed_events} == {"complete"}
    assert {e.id for e in machine.enabled_events(activation=convert_context(RISKY))} == {"complete"}
    runner.hold(state)
    assert {event.id for event in runner.machine(state).allowed_events} == {"complete"}


def test_plain_python_object_holds_the_state(runner):
    class Claim:
        step = "Review"
        status = "Pending"
        lifecycle = "running"

    machine = runner.machine(Claim())  # type: ignore[arg-type]
    assert [state.name for state in machine.configuration] == ["Review"]


@pytest.mark.parametrize(
    ("data", "codes"),
    [
        ({"name": "Empty", "steps": []}, ["no_steps"]),
        (
            {
                "name": "Two initial",
                "steps": [
                    {"name": "a", "initial": True, "statuses": [{"name": "x", "default": True}]},
                    {"name": "b", "initial": True, "statuses": [{"name": "x", "default": True}]},
                ],
            },
            [
                "multiple_initial_steps",
                "no_final_step",
                "step_cannot_complete",
                "step_has_no_way_out",
            ],
        ),
        (
            {
                "name": "Unknown target",
                "steps": [
                    {"name": "a", "initial": True, "statuses": [{"name": "x", "default": True}]}
                ],
                "transitions": [{"from": "a", "to": "nowhere"}],
            },
            [
                "no_final_step",
                "step_cannot_complete",
                "step_has_no_way_out",
                "transition_unknown_step",
            ],
        ),
        (
            {
                "name": "Bad condition",
                "steps": [
                    {
                        "name": "a",
                        "initial": True,
                        "statuses": [
                            {"name": "x", "default": True},
                            {"name": "y", "completion": True},
                        ],
                    },
                    {
                        "name": "b",
                        "final": True,
                        "statuses": [{"name": "x", "default": True, "completion": True}],
                    },
                ],
                "transitions": [{"from": "a", "to": "b", "condition": "x >"}],
            },
            ["invalid_condition"],
        ),
    ],
)
def test_compile_refuses_definitions_with_errors_with_the_validator_problems(data, codes):
    definition = WorkflowDefinition.from_dict(data)
    with pytest.raises(DefinitionError, match=repr(data["name"])) as info:
        compile_workflow(definition)
    errors = errors_of(info.value.problems)
    assert sorted({problem.code for problem in errors}) == codes
    assert info.value.problems == validate_definition(definition)


def test_compile_refuses_a_workflow_with_no_final_step_as_the_services_do():
    data = claims_definition()
    data["steps"][-1]["final"] = False
    definition = WorkflowDefinition.from_dict(data)
    for build in (compile_workflow, WorkflowRunner):
        with pytest.raises(DefinitionError, match="'Claims' has 3 error") as info:
            build(definition)
        assert [p.code for p in errors_of(info.value.problems)] == [
            "no_final_step",
            "default_status_ends_step",
            "step_has_no_way_out",
        ]


def test_warnings_do_not_stop_compiling():
    data = claims_definition()
    data["transitions"][2]["priority"] = 30  # the same priority as another: a warning
    definition = WorkflowDefinition.from_dict(data)
    assert [p.code for p in validate_definition(definition)] == ["same_priority"]
    assert compile_workflow(definition).definition is definition


def test_syntax_error_has_line_and_column():
    with pytest.raises(ConditionSyntaxError) as excinfo:
        compile_condition("claim.amount >\n  ")
    assert excinfo.value.line is not None
    assert excinfo.value.column is not None


def test_from_dict_names_the_bad_place():
    data = claims_definition()
    data["steps"][1]["statuses"][0]["defualt"] = True
    with pytest.raises(DefinitionError, match=r"step 'Review', status 'Pending'.*'defualt'"):
        WorkflowDefinition.from_dict(data)


def test_from_dict_round_trips(definition):
    assert WorkflowDefinition.from_dict(definition.to_dict()) == definition


@pytest.mark.parametrize(
    ("value", "expression"),
    [
        (__import__("decimal").Decimal("12.50"), "v == 12.5"),
        (__import__("datetime").date(2026, 1, 2), "v == timestamp('2026-01-02T00:00:00Z')"),
        (__import__("uuid").UUID(int=1), "v == '00000000-0000-0000-0000-000000000001'"),
        ((1, 2), "v == [1, 2]"),
        (None, "v == null"),
        ({"a": [True]}, "v.a[0]"),
    ],
)
def test_context_conversion(value, expression):
    assert compile_condition(expression).evaluate(convert_context({"v": value})) is True


@pytest.mark.parametrize("value", [object(), {1: "x"}, {"s": {1, 2}}, b"bytes", 2**70])
def test_unconvertible_context_is_a_type_error(value):
    with pytest.raises(ContextError) as excinfo:
        convert_context({"v": value})
    assert isinstance(excinfo.value, TypeError)
