"""Conditions see ``object``, ``status``, ``actor``, ``instance`` and ``now`` (issue 15).

The acceptance scenarios: a model declaring ``amount`` and ``is_high_risk`` routes on
``object.amount`` with no ``context_data``; "Sent back" and "Approved" on one step
route on ``status``; ``"managers" in actor.groups`` routes by the actor; a reserved
key in ``context_data`` is refused with nothing written; a model without a
declaration exposes only ``pk`` and a condition on an undeclared field fails closed
naming it. Query counts are asserted.
"""

from __future__ import annotations

import io
import json
import logging
import logging.config
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import override_settings
from django.utils.log import DEFAULT_LOGGING

from django_steps import engine
from django_steps._engine.context import actor_values, object_values
from django_steps.checks import check_object_fields
from django_steps.exceptions import (
    ContextError,
    DefinitionError,
    NoTransitionAvailable,
    WrongModel,
)
from django_steps.introspection import describe_instance, explain
from django_steps.machines.definition import WorkflowDefinition
from django_steps.machines.validation import validate_definition
from django_steps.models import Workflow, WorkflowHistory, WorkflowInstance
from django_steps.services import (
    get_workflow_instance_for_object,
    start_workflow_instance,
    update_workflow_step_status,
)
from django_steps.testing import assert_transition, drive, load_definitions
from django_steps.transfer import export_definitions, import_definitions
from django_steps.validation import validate_workflow
from tests.factories import create_workflow
from tests.testapp.models import Claim, Expense, PurchaseOrder

pytestmark = pytest.mark.django_db

# SAVEPOINT, SELECT ... FOR UPDATE, UPDATE, INSERT, RELEASE (UPDATE+INSERT one on PostgreSQL)
STATE_CHANGE = 4 if connection.vendor == "postgresql" else 5

ORDERS: dict[str, Any] = {
    "name": "Orders",
    "steps": [
        {
            "name": "Review",
            "order": 1,
            "initial": True,
            "statuses": [
                {"name": "Pending", "default": True},
                {"name": "Approved", "completion": True},
                {"name": "Sent back", "completion": True},
            ],
        },
        {
            "name": "Senior Review",
            "order": 2,
            "statuses": [
                {"name": "Pending", "default": True},
                {"name": "Approved", "completion": True},
            ],
        },
        {
            "name": "Rework",
            "order": 3,
            "statuses": [
                {"name": "Open", "default": True},
                {"name": "Resubmitted", "completion": True},
            ],
        },
        {
            "name": "Ordered",
            "order": 4,
            "final": True,
            "statuses": [{"name": "Ordered", "default": True, "completion": True}],
        },
    ],
    "transitions": [
        {"from": "Review", "to": "Rework", "condition": 'status == "Sent back"', "priority": 30},
        {
            "from": "Review",
            "to": "Senior Review",
            "condition": "object.amount > 10000 || object.is_high_risk",
            "priority": 20,
        },
        {"from": "Review", "to": "Ordered", "priority": 0},
        {"from": "Senior Review", "to": "Ordered", "condition": '"managers" in actor.groups'},
        {"from": "Rework", "to": "Review"},
    ],
}


def single_step(name: str, condition: str) -> dict[str, Any]:
    """Draft -(condition)-> Done, else Draft -> Other."""
    return {
        "name": name,
        "steps": [
            {
                "name": "Draft",
                "order": 1,
                "initial": True,
                "statuses": [
                    {"name": "New", "default": True},
                    {"name": "Submitted", "completion": True},
                ],
            },
            {
                "name": "Done",
                "order": 2,
                "final": True,
                "statuses": [{"name": "Done", "default": True, "completion": True}],
            },
            {
                "name": "Other",
                "order": 3,
                "final": True,
                "statuses": [{"name": "Other", "default": True, "completion": True}],
            },
        ],
        "transitions": [
            {"from": "Draft", "to": "Done", "condition": condition, "priority": 10},
            {"from": "Draft", "to": "Other", "condition": "false", "priority": 0},
        ],
    }


@pytest.fixture
def orders() -> Workflow:
    return create_workflow(ORDERS)


@pytest.fixture
def managers() -> Group:
    return Group.objects.create(name="managers")


def start(workflow: Workflow, obj: Any) -> WorkflowInstance:
    instance = start_workflow_instance(workflow.name, obj)
    assert instance is not None
    return instance


def step_of(instance: WorkflowInstance) -> str:
    instance.refresh_from_db()
    return instance.current_step.name


# --- the acceptance scenarios ----------------------------------------------------------


def test_a_declared_field_routes_with_no_context_data(orders):
    large = start(orders, PurchaseOrder.objects.create(amount=25000))
    small = start(orders, PurchaseOrder.objects.create(amount=500))
    risky = start(orders, PurchaseOrder.objects.create(amount=500, is_high_risk=True))

    for instance in (large, small, risky):
        assert update_workflow_step_status(instance, "Approved") is True

    assert step_of(large) == "Senior Review"
    assert step_of(small) == "Ordered"
    assert step_of(risky) == "Senior Review"


def test_two_completion_statuses_route_on_status(orders):
    sent_back = start(orders, PurchaseOrder.objects.create(amount=500))
    approved = start(orders, PurchaseOrder.objects.create(amount=500))

    assert update_workflow_step_status(sent_back, "Sent back") is True
    assert update_workflow_step_status(approved, "Approved") is True

    assert step_of(sent_back) == "Rework"
    assert step_of(approved) == "Ordered"


def test_actor_groups_route_by_the_user_passed_as_actor(orders, managers):
    manager = User.objects.create_user("mia")
    manager.groups.add(managers)
    clerk = User.objects.create_user("carl")
    instance = start(orders, PurchaseOrder.objects.create(amount=25000))
    assert update_workflow_step_status(instance, "Approved") is True  # -> Senior Review

    assert update_workflow_step_status(instance, "Approved", actor=clerk) is False
    assert isinstance(instance.refusal, NoTransitionAvailable)
    assert update_workflow_step_status(instance, "Approved") is False  # no actor: null
    assert step_of(instance) == "Senior Review"

    assert update_workflow_step_status(instance, "Approved", actor=manager) is True
    assert instance.refusal is None
    assert step_of(instance) == "Ordered"


@pytest.mark.parametrize("key", ["object", "status", "actor", "instance", "now"])
def test_a_reserved_key_in_context_data_is_refused_and_nothing_is_written(orders, key):
    instance = start(orders, PurchaseOrder.objects.create(amount=500))
    rows = WorkflowHistory.objects.count()

    with pytest.raises(ContextError, match=repr(key)) as caught:
        update_workflow_step_status(instance, "Approved", {key: {"amount": 1}})

    assert caught.value.path == key
    assert WorkflowHistory.objects.count() == rows
    assert step_of(instance) == "Review"
    assert instance.current_step_status.name == "Pending"
    with pytest.raises(ContextError, match=repr(key)):
        engine.check_context({key: 1})


def test_a_model_without_a_declaration_exposes_only_pk():
    claim = Claim.objects.create(title="Hail", amount=99999)
    assert object_values(claim) == {"pk": claim.pk}
    workflow = create_workflow(single_step("Only pk", f"object.pk == {claim.pk}"))
    instance = start(workflow, claim)

    assert update_workflow_step_status(instance, "Submitted") is True
    assert step_of(instance) == "Done"


def test_a_condition_on_an_undeclared_field_fails_closed_naming_it():
    order = PurchaseOrder.objects.create(amount=500, secret="hunter2")
    assert object_values(order) == {"pk": order.pk, "amount": order.amount, "is_high_risk": False}
    workflow = create_workflow(single_step("Oracle", 'object.secret.startsWith("h")'))
    instance = start(workflow, order)

    assert update_workflow_step_status(instance, "Submitted") is False

    assert "secret" in str(instance.refusal)
    assert "hunter2" not in str(instance.refusal)
    assert step_of(instance) == "Draft"


def test_a_model_may_declare_its_fields_with_workflow_context():
    expense = Expense.objects.create(amount=80, category="travel", secret="x")
    assert object_values(expense) == {
        "pk": expense.pk,
        "amount": expense.amount,
        "category": "travel",
    }
    workflow = create_workflow(single_step("Expenses", 'object.category == "travel"'))
    instance = start(workflow, expense)

    assert update_workflow_step_status(instance, "Submitted") is True
    assert step_of(instance) == "Done"


def test_instance_and_now_are_seen():
    condition = (
        'instance.step == "Draft" && instance.status == "New" && '
        "instance.step_entered_at <= now && instance.started_at <= now && "
        "string(instance.id).size() == 36"
    )
    workflow = create_workflow(single_step("Clock", condition))
    instance = start(workflow, Claim.objects.create(title="c"))
    assert instance.step_entered_at == instance.started_at

    assert update_workflow_step_status(instance, "Submitted") is True
    assert step_of(instance) == "Done"
    assert instance.step_entered_at > instance.started_at


def test_step_entered_at_changes_with_the_step_only():
    data = single_step("Entered", "true")
    data["steps"][0]["statuses"].append({"name": "Working"})
    workflow = create_workflow(data)
    instance = start(workflow, Claim.objects.create(title="c"))
    entered = instance.step_entered_at

    assert update_workflow_step_status(instance, "Working") is True
    instance.refresh_from_db()
    assert instance.step_entered_at == entered
    assert update_workflow_step_status(instance, "Submitted") is True
    instance.refresh_from_db()
    assert instance.step_entered_at > entered


def test_actor_values():
    user = User.objects.create_user("ann", is_staff=True)
    user.groups.add(Group.objects.create(name="b"), Group.objects.create(name="a"))
    assert actor_values(user) == {
        "id": user.pk,
        "username": "ann",
        "groups": ["a", "b"],
        "is_staff": True,
        "is_superuser": False,
    }
    assert actor_values(None) is None


def test_a_workflow_for_another_model_is_not_started(orders):
    orders.content_type = ContentType.objects.get_for_model(PurchaseOrder)
    orders.save()
    claim = Claim.objects.create(title="c")

    with pytest.raises(WrongModel, match=r"testapp\.purchaseorder"):
        engine.start_workflow_instance("Orders", claim)
    assert start_workflow_instance("Orders", claim) is None
    assert not WorkflowInstance.objects.exists()
    assert start(orders, PurchaseOrder.objects.create(amount=1)) is not None


def test_context_variables_cannot_declare_a_reserved_name(orders):
    orders.context_variables = {"status": "string"}
    with pytest.raises(ValidationError, match="status"):
        orders.full_clean()


# --- refusals a developer sees ---------------------------------------------------------


def test_a_refusal_is_logged_where_djangos_default_logging_shows_it_in_debug(orders):
    instance = start(orders, PurchaseOrder.objects.create(amount=25000))
    update_workflow_step_status(instance, "Approved")
    stream = io.StringIO()
    django_logger = logging.getLogger("django")
    saved = (django_logger.handlers[:], django_logger.level, django_logger.propagate)
    try:
        logging.config.dictConfig(DEFAULT_LOGGING)
        console = next(h for h in django_logger.handlers if h.name == "console")
        console.setStream(stream)  # type: ignore[attr-defined]
        with override_settings(DEBUG=True):
            assert update_workflow_step_status(instance, "Approved") is False
        shown_in_debug = stream.getvalue()
        with override_settings(DEBUG=False):
            assert update_workflow_step_status(instance, "Approved") is False
    finally:
        django_logger.handlers[:], django_logger.level, django_logger.propagate = saved
    assert "Refused to update the status of workflow instance" in shown_in_debug
    assert "could not be evaluated" in shown_in_debug
    assert stream.getvalue() == shown_in_debug  # not shown when DEBUG is off


# --- query budgets ---------------------------------------------------------------------


@pytest.fixture
def warm(orders):
    """Compile the workflow and fill the content type cache, as in a running process."""
    order = PurchaseOrder.objects.create(amount=1)
    ContentType.objects.get_for_model(order)
    update_workflow_step_status(start(orders, order), "Approved")


def test_a_condition_reading_object_costs_one_query_to_load_it(
    orders, warm, django_assert_num_queries
):
    order = PurchaseOrder.objects.create(amount=25000)
    # Fetched by primary key, so its object is not loaded (the look-up by object
    # attaches the object it is given).
    instance = WorkflowInstance.objects.get(pk=start(orders, order).pk)

    with django_assert_num_queries(STATE_CHANGE + 1):
        assert update_workflow_step_status(instance, "Approved") is True
    assert instance.current_step.name == "Senior Review"


def test_a_loaded_object_costs_no_query(orders, warm, django_assert_num_queries):
    order = PurchaseOrder.objects.create(amount=25000)
    start(orders, order)
    instance = get_workflow_instance_for_object(order)
    assert instance.content_object.amount == 25000  # loaded by the caller

    with django_assert_num_queries(STATE_CHANGE):
        assert update_workflow_step_status(instance, "Approved") is True
    assert instance.current_step.name == "Senior Review"


def test_conditions_that_do_not_read_object_load_nothing(orders, warm, django_assert_num_queries):
    order = PurchaseOrder.objects.create(amount=25000)
    instance = WorkflowInstance.objects.get(pk=start(orders, order).pk)  # object not loaded

    # "Sent back" is tried first and passes: object.amount is never evaluated, but
    # the step's conditions read object, so it is loaded (one query) ...
    with django_assert_num_queries(STATE_CHANGE + 1):
        assert update_workflow_step_status(instance, "Sent back") is True
    # ... while Rework's only transition has no condition: nothing is loaded.
    with django_assert_num_queries(STATE_CHANGE):
        assert update_workflow_step_status(instance, "Resubmitted") is True


def test_reading_actor_costs_one_query_for_its_groups(
    orders, warm, managers, django_assert_num_queries
):
    manager = User.objects.create_user("mia")
    manager.groups.add(managers)
    order = PurchaseOrder.objects.create(amount=25000)
    instance = start(orders, order)
    instance.content_object  # noqa: B018 - loaded
    assert update_workflow_step_status(instance, "Approved") is True

    with django_assert_num_queries(STATE_CHANGE + 1):
        assert update_workflow_step_status(instance, "Approved", actor=manager) is True


# --- save-time checks ------------------------------------------------------------------


def problems_of(data: dict[str, Any], **kwargs: Any) -> list[Any]:
    return validate_definition(WorkflowDefinition.from_dict(data), **kwargs)


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        (
            'actor.usernme == "mia"',
            "actor.usernme (line 1, column 7) is not a key of actor; did you mean 'username'?",
        ),
        ("instance.step_entred_at < now", "did you mean 'step_entered_at'"),
        (
            'status == "Sent bak"',
            "status is compared with 'Sent bak' (line 1, column 11), which is not a "
            "completion status of the step, so it never matches; did you mean 'Sent back'?",
        ),
    ],
)
def test_reserved_names_are_checked_with_line_column_and_suggestion(condition, message):
    data = single_step("Checked", condition)
    data["steps"][0]["statuses"].append({"name": "Sent back", "completion": True})

    problems = [p for p in problems_of(data) if p.is_error]

    assert len(problems) == 1
    assert message in problems[0].message
    assert problems[0].line == 1


def test_object_fields_are_checked_when_the_workflow_knows_its_model():
    data = single_step("Fields", "object.amont > 10 && object.secret == 'x'")
    problems = problems_of(data, object_fields=("pk", "amount", "is_high_risk"))
    messages = [p.message for p in problems if p.is_error]
    assert any("object.amont (line 1, column 8)" in m and "'amount'" in m for m in messages)
    assert any("object.secret" in m for m in messages)
    assert not [p for p in problems_of(data) if p.is_error]  # model unknown: not checked


def test_a_stored_workflow_for_a_model_checks_object_fields(orders):
    orders.content_type = ContentType.objects.get_for_model(PurchaseOrder)
    orders.save()
    assert not [p for p in validate_workflow(orders) if p.is_error]
    orders.transitions.filter(name="Review -> Senior Review").update(
        condition="object.secret == 'x'"
    )
    with pytest.raises(ValidationError, match=r"object\.secret"):
        orders.full_clean()
    transition = orders.transitions.get(name="Review -> Senior Review")
    with pytest.raises(ValidationError, match=r"object\.secret"):
        transition.full_clean()


def test_reserved_names_count_as_declared_variables():
    data = single_step("Declared", "object.amount > amount && status == 'Submitted'")
    data["context_variables"] = {"amount": "double"}
    assert not [p for p in problems_of(data) if p.is_error]
    data["context_variables"] = {"object": "map"}
    assert [p.code for p in problems_of(data) if p.is_error] == ["invalid_context_variables"]


def test_two_completion_statuses_through_the_same_transition_warn():
    data = single_step("Alike", "true")
    data["steps"][0]["statuses"].append({"name": "Sent back", "completion": True})
    assert "completion_statuses_alike" in [p.code for p in problems_of(data)]
    data["transitions"][0]["condition"] = 'status == "Sent back"'
    assert "completion_statuses_alike" not in [p.code for p in problems_of(data)]


def test_object_fields_setting_is_checked():
    with override_settings(
        DJANGO_STEPS={
            "OBJECT_FIELDS": {
                "testapp.PurchaseOrder": ["amount", "nope"],
                "testapp.Missing": ["x"],
                "testapp.Expense": ["amount"],
            }
        }
    ):
        messages = check_object_fields()
    texts = [(m.id, m.msg) for m in messages]
    assert any(i == "django_steps.E005" and "'nope'" in t for i, t in texts)
    assert any(i == "django_steps.E005" and "'testapp.Missing'" in t for i, t in texts)
    assert any(i == "django_steps.W002" and "workflow_context" in t for i, t in texts)
    assert check_object_fields() == []


# --- the testing helpers ---------------------------------------------------------------


def test_the_testing_helpers_take_object_actor_and_now_as_plain_values():
    definition = ORDERS
    assert drive(definition, ["Approved"], object={"amount": 25000.0}).path == [
        "Review",
        "Senior Review",
    ]
    assert drive(definition, ["Sent back"], object={"amount": 25000.0}).path == ["Review", "Rework"]
    manager = {"id": 1, "username": "mia", "groups": ["managers"]}
    result = drive(definition, ["Approved", "Approved"], object={"amount": 25000.0}, actor=manager)
    assert result.is_completed
    assert_transition(
        definition,
        from_step="Review",
        status="Approved",
        object={"amount": 5.0, "is_high_risk": False},
        to_step="Ordered",
    )
    with pytest.raises(ValueError, match="several completion statuses"):
        assert_transition(definition, from_step="Review", to_step="Ordered")


# --- explain and describe_instance -----------------------------------------------------


def test_explain_sees_what_the_engine_would(orders, managers):
    manager = User.objects.create_user("mia")
    manager.groups.add(managers)
    instance = start(orders, PurchaseOrder.objects.create(amount=25000))

    approved = explain(instance, status="Approved")
    sent_back = explain(instance, status="Sent back")

    assert approved.next_step == "Senior Review"
    assert sent_back.next_step == "Rework"
    assert update_workflow_step_status(instance, "Approved") is True
    assert explain(instance, status="Approved", actor=manager).next_step == "Ordered"
    assert not explain(instance, status="Approved").allowed  # no actor: actor is null


def test_explain_refuses_a_reserved_key_on_every_check(orders):
    instance = start(orders, PurchaseOrder.objects.create(amount=25000))
    explanation = explain(instance, {"status": "Approved"}, status="Sent back")
    assert not explanation.allowed
    assert all("reserved" in (check.error or "") for check in explanation.checks)


def test_describe_instance_uses_the_live_object(orders):
    instance = start(orders, PurchaseOrder.objects.create(amount=25000))
    options = {option.name: option for option in describe_instance(instance).statuses}
    assert options["Approved"].allowed
    assert options["Sent back"].allowed


# --- import and export -----------------------------------------------------------------


def test_the_model_a_workflow_is_for_is_exported_and_imported(orders):
    orders.content_type = ContentType.objects.get_for_model(PurchaseOrder)
    orders.save()
    exported = export_definitions(["Orders"], format="json")
    assert '"model": "testapp.PurchaseOrder"' in exported
    orders.content_type = None
    orders.save()

    import_definitions(load_definitions(json.loads(exported)))

    orders.refresh_from_db()
    assert orders.content_type == ContentType.objects.get_for_model(PurchaseOrder)


def test_an_import_for_an_unknown_model_or_an_undeclared_field_is_refused():
    data = single_step("Imported", "object.secret == 'x'")
    data["model"] = "testapp.PurchaseOrder"
    with pytest.raises(DefinitionError, match=r"object\.secret"):
        import_definitions(load_definitions({"workflows": [data]}))
    data["model"] = "testapp.Nope"
    with pytest.raises(DefinitionError, match=r"'testapp\.Nope' is not an installed model"):
        import_definitions(load_definitions({"workflows": [data]}))
    assert not Workflow.objects.filter(name="Imported").exists()


def test_a_workflow_with_instances_of_another_model_cannot_be_made_for_one(orders):
    start(orders, Claim.objects.create(title="c"))
    orders.content_type = ContentType.objects.get_for_model(PurchaseOrder)
    with pytest.raises(ValidationError, match="attached to objects of other models"):
        orders.full_clean()
