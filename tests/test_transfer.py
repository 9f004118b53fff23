"""Export and import of definitions: round trips, dry runs, validation, in-place updates."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest
import yaml
from django.core.management import CommandError, call_command
from django.db import transaction
from hypothesis import HealthCheck, given, settings

from django_steps._engine.loading import definition_from_db
from django_steps.exceptions import DefinitionError, DefinitionInUse, WorkflowNotFound
from django_steps.machines import WorkflowDefinition
from django_steps.machines.definition import (
    STATUS_FIELDS,
    STEP_DEADLINE_FIELDS,
    STEP_FIELDS,
    TRANSITION_FIELDS,
    TRANSITION_STEPS,
    StatusDefinition,
    StepDefinition,
    TransitionDefinition,
)
from django_steps.machines.serialization import (
    FORMAT_MARKER,
    dump_definitions,
    parse_definitions,
)
from django_steps.models import (
    Workflow,
    WorkflowHistory,
    WorkflowInstance,
    WorkflowStep,
    WorkflowStepStatus,
    WorkflowTransition,
)
from django_steps.services import start_workflow_instance, update_workflow_step_status
from django_steps.transfer import export_definitions, import_definitions, import_file
from tests.conftest import HIGH
from tests.factories import claims_definition, create_workflow
from tests.strategies import workflow_definitions
from tests.testapp.models import Claim

pytestmark = pytest.mark.django_db

MODELS = (Workflow, WorkflowStep, WorkflowStepStatus, WorkflowTransition, WorkflowInstance)


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


def definitions(*data: dict) -> list[WorkflowDefinition]:
    return [WorkflowDefinition.from_dict(item) for item in data]


def expense_definition() -> dict:
    return {
        "name": "Expenses",
        "context_variables": {"expense": "map"},
        "steps": [
            {
                "name": "Filed",
                "order": 1,
                "initial": True,
                "statuses": [
                    {"name": "Draft", "default": True},
                    {"name": "Submitted", "completion": True},
                ],
            },
            {
                "name": "Done",
                "order": 2,
                "final": True,
                "statuses": [{"name": "Done", "default": True, "completion": True}],
            },
        ],
        "transitions": [
            {"name": "file", "from": "Filed", "to": "Done", "condition": "expense.total < 100"}
        ],
    }


@pytest.fixture
def instance_at_review(claims):
    instance = start_workflow_instance("Claims", Claim.objects.create(title="Window"))
    update_workflow_step_status(instance, "Accepted")
    instance.refresh_from_db()
    return instance


# --- round trips ---------------------------------------------------------------------


@pytest.mark.parametrize("format", ["yaml", "json"])
def test_export_import_into_an_empty_database_export_is_identical(claims, format):
    create_workflow(expense_definition())
    first = export_definitions(format=format)
    Workflow.objects.all().delete()
    assert counts() == dict.fromkeys(counts(), 0)

    import_definitions(parse_definitions(first, format))
    second = export_definitions(format=format)

    assert second == first
    assert second.encode() == first.encode()
    assert Workflow.objects.count() == 2


def test_export_format_is_documented_shape(claims):
    data = yaml.safe_load(export_definitions(["Claims"]))
    assert list(data) == ["format", "workflows"]
    assert data["format"] == FORMAT_MARKER == "django-steps/1"
    (workflow,) = data["workflows"]
    assert workflow == {**WorkflowDefinition.from_dict(workflow).to_dict()}
    assert workflow["transitions"][1] == {
        "name": "Review -> Investigation",
        "from": "Review",
        "to": "Investigation",
        "condition": "claim.is_high_risk == true",
        "priority": 30,
        "description": "",
    }
    text = export_definitions(["Claims"])
    assert text.startswith("format: django-steps/1\nworkflows:\n  - name: Claims\n")
    json_data = json.loads(export_definitions(["Claims"], format="json"))
    assert json_data == data


def test_export_selected_workflows_in_the_order_given(claims):
    create_workflow(expense_definition())
    data = yaml.safe_load(export_definitions(["Expenses", "Claims"]))
    assert [w["name"] for w in data["workflows"]] == ["Expenses", "Claims"]
    with pytest.raises(WorkflowNotFound, match="'Nope'"):
        export_definitions(["Claims", "Nope"])


def test_export_costs_three_queries_per_workflow(claims, django_assert_num_queries):
    create_workflow(expense_definition())
    with django_assert_num_queries(1 + 3 * 2):
        export_definitions()
    with django_assert_num_queries(1 + 3):
        export_definitions(["Expenses"])


def test_reimporting_the_same_file_changes_nothing(claims):
    version = Workflow.objects.get(name="Claims").version
    report = import_definitions(parse_definitions(export_definitions()))
    assert str(report) == "Workflow 'Claims': unchanged."
    assert Workflow.objects.get(name="Claims").version == version


# --- dry runs and invalid files --------------------------------------------------------


def test_dry_run_writes_nothing(claims):
    changed = claims_definition()
    changed["transitions"][2]["condition"] = "claim.amount > 20000.0"
    before = counts()
    version = Workflow.objects.get(name="Claims").version

    report = import_definitions(definitions(changed, expense_definition()), dry_run=True)

    assert counts() == before
    assert Workflow.objects.get(name="Claims").version == version
    assert not Workflow.objects.filter(name="Expenses").exists()
    assert definition_from_db("Claims").transitions[2].condition == "claim.amount > 10000.0"
    text = str(report)
    assert "transition 'Review -> Senior Review': condition changed" in text
    assert "Workflow 'Expenses': created." in text
    assert text.endswith("Dry run: nothing was written.")


def test_invalid_workflow_anywhere_in_the_file_writes_nothing_and_names_it(claims):
    bad = expense_definition()
    bad["transitions"][0]["condition"] = "expense.total <"
    changed = claims_definition()
    changed["description"] = "Changed"
    before = counts()

    with pytest.raises(DefinitionError) as raised:
        import_definitions(definitions(changed, bad))

    message = str(raised.value)
    assert "Nothing was imported" in message
    assert "'Expenses'" in message
    assert "'file'" in message
    assert counts() == before
    assert Workflow.objects.get(name="Claims").description != "Changed"


def test_duplicate_names_are_reported_before_writing(db):
    data = claims_definition()
    data["transitions"].append({"from": "Review", "to": "Payment", "name": "pay"})
    data["transitions"].append({"from": "Submitted", "to": "Review", "name": "pay"})
    data["steps"][0]["statuses"].append({"name": "New"})
    with pytest.raises(DefinitionError) as raised:
        import_definitions(definitions(data))
    message = str(raised.value)
    assert "more than one transition is named 'pay'" in message
    assert "step 'Submitted' has 2 statuses called 'New'" in message
    assert Workflow.objects.count() == 0


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("format: django-steps/9\nworkflows: []\n", "Unsupported definitions file format"),
        ("workflows:\n  - name: X\n    stepz: []\n", "unknown key(s) 'stepz'"),
        ("name: [unclosed\n", "not valid YAML"),
        ('{"name": "X",}', "not valid JSON"),
        ("- just\n- a list\n", "must hold a mapping"),
    ],
)
def test_unreadable_files_name_the_problem(tmp_path, text, problem):
    path = tmp_path / ("workflows.json" if text.startswith("{") else "workflows.yaml")
    path.write_text(text)
    with pytest.raises(DefinitionError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        import_file(path)
    assert Workflow.objects.count() == 0


def test_a_workflow_twice_in_a_file_is_refused():
    text = dump_definitions(definitions(expense_definition(), expense_definition()))
    with pytest.raises(DefinitionError, match="'Expenses' appears more than once"):
        parse_definitions(text)


# --- hostile files (issue 14, findings 8 and 13) --------------------------------------------


def alias_bomb() -> str:
    """A 0.5 KB file whose nested aliases expand to 9**8 (43 million) strings."""
    lines = ["format: django-steps/1", 'a0: &a0 ["x","x","x","x","x","x","x","x","x"]']
    lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 8)]
    return "\n".join([*lines, "workflows: [*a7]"]) + "\n"


def test_yaml_aliases_are_refused_naming_the_file_and_writing_nothing(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb())
    with pytest.raises(CommandError) as raised:
        call_command("steps_import", str(path))
    message = str(raised.value)
    assert str(path) in message
    assert "alias *a0" in message
    assert "line 3, column 10" in message
    assert counts() == dict.fromkeys(counts(), 0)


def test_an_alias_of_a_plain_value_is_refused_too():
    data = claims_definition()
    text = dump_definitions(definitions(data)).replace("description: ''", "description: &d ''", 1)
    assert parse_definitions(text)  # an anchor alone is harmless
    with pytest.raises(DefinitionError, match="may not use YAML anchors and aliases"):
        parse_definitions(text.replace("description: ''", "description: *d", 1))


@pytest.mark.parametrize("format", ["json", "yaml"])
def test_deeply_nested_files_are_refused_with_a_definition_error(format):
    text = "[" * 100_000 + "]" * 100_000 if format == "json" else "a: " + "[" * 100_000
    with pytest.raises(DefinitionError, match=f"cannot be read as {format.upper()}|not valid"):
        parse_definitions(text, format)


def renamed(data: dict, old: str, new: str) -> dict:
    for step in data["steps"]:
        if step["name"] == old:
            step["name"] = new
    for transition in data["transitions"]:
        for end in ("from", "to"):
            if transition[end] == old:
                transition[end] = new
    return data


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            lambda data: data.update(name="W" * 101),
            "Workflow '" + "W" * 101 + "': name: Ensure this value has at most 100 characters",
        ),
        (
            lambda data: renamed(data, "Payment", "P" * 101),
            "step '" + "P" * 101 + "': name: Ensure this value has at most 100 characters",
        ),
        (
            lambda data: data["steps"][0]["statuses"][0].update(name="S" * 101),
            "status '" + "S" * 101 + "' of step 'Submitted': name: Ensure this value",
        ),
        (
            lambda data: data["transitions"][0].update(name="T" * 211),
            "name: Ensure this value has at most 210 characters",
        ),
        (
            lambda data: data["transitions"][0].update(priority=2**63),
            "transition 'Submitted -> Review': priority: Ensure this value is less than",
        ),
        (
            lambda data: data["steps"][1].update(order=2**63),
            "step 'Review': order: Ensure this value is less than",
        ),
        (
            lambda data: renamed(data, "Payment", "Pay\x00ment"),
            "name contains a NUL character",
        ),
        (
            lambda data: data["steps"][0].update(description="a\x00b"),
            "step 'Submitted': description contains a NUL character",
        ),
        (
            lambda data: renamed(data, "Payment", "Pay\x85ment"),
            "Names cannot contain the control character U+0085 (character 4)",
        ),
        (
            lambda data: renamed(data, "Payment", "Pay\u2028ment"),
            "Names cannot contain the line separator U+2028",
        ),
    ],
)
def test_what_the_database_would_refuse_is_reported_before_writing(change, problem):
    # Finding 13: a name too long for its column failed as a raw DataError on PostgreSQL.
    data = claims_definition()
    change(data)
    with pytest.raises(DefinitionError) as raised:
        import_definitions(definitions(data))
    assert problem in str(raised.value)
    assert str(raised.value).startswith("Nothing was imported")
    assert counts() == dict.fromkeys(counts(), 0)


def test_names_and_texts_with_any_allowed_character_round_trip_through_yaml():
    # Finding 13: U+0085 in a name came back as a space (a YAML reader's line break).
    odd = "é 🧾 a\u200db \u05d0\u202e x'y\"z: #&*! \\N \ufeff\u00a0end"
    data = renamed(claims_definition(), "Payment", "Pay " + odd)
    data["description"] = "line\x85next\u2028and\u2029more\r\n\ttab " + odd
    data["transitions"][0]["description"] = "\x85"
    (definition,) = definitions(data)
    for format in ("yaml", "json"):
        (again,) = parse_definitions(dump_definitions([definition], format), format)
        assert again.to_dict() == definition.to_dict()
    import_definitions([definition])
    stored = definition_from_db(Workflow.objects.get())
    assert stored.description == data["description"]
    assert stored.get_step("Pay " + odd)
    (exported,) = parse_definitions(export_definitions())
    assert exported.to_dict() == stored.to_dict()


# --- in-place updates ------------------------------------------------------------------


def test_update_in_place_keeps_running_instances_working(instance_at_review):
    instance = instance_at_review
    rows = {step.name: step.pk for step in WorkflowStep.objects.all()}
    data = claims_definition()
    review = data["steps"][1]
    review["description"] = "A person checks the claim."
    review["statuses"] = [s for s in review["statuses"] if s["name"] != "In progress"]
    review["statuses"].append({"name": "Escalated"})
    data["steps"].insert(
        3,
        {
            "name": "Audit",
            "order": 4,
            "statuses": [
                {"name": "Open", "default": True},
                {"name": "Done", "completion": True},
            ],
        },
    )
    data["transitions"][2]["condition"] = "claim.amount > 20000.0"
    data["transitions"] += [
        {"from": "Review", "to": "Audit", "condition": "claim.amount > 40000.0", "priority": 25},
        {"from": "Audit", "to": "Payment"},
    ]

    report = import_definitions(definitions(data))

    text = str(report)
    assert "status 'In progress' of step 'Review' deleted" in text
    assert "step 'Audit' created" in text
    assert "transition 'Review -> Senior Review': condition changed" in text
    assert "transition 'Review -> Audit' created" in text
    assert "recreated" not in text
    assert "step 'Review': description changed" in text
    # Kept rows keep their primary keys; the instance is where it was.
    assert {s.name: s.pk for s in WorkflowStep.objects.exclude(name="Audit")} == rows
    instance.refresh_from_db()
    assert (instance.current_step.name, instance.current_step_status.name) == (
        "Review",
        "Pending",
    )
    # ...and follows the new rules.
    update_workflow_step_status(instance, "Approved", HIGH)
    instance.refresh_from_db()
    assert instance.current_step.name == "Audit"
    stored = definition_from_db("Claims")
    assert [t.to_step for t in stored.transitions_from("Review")] == [
        "Investigation",
        "Audit",
        "Senior Review",
        "Payment",
    ]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(before=workflow_definitions(), after=workflow_definitions())
def test_updating_in_place_stores_what_a_fresh_import_stores(before, after):
    """Whatever workflow is stored, importing a file leaves exactly that file's workflow.

    Only the order of statuses may differ: new statuses of a kept step come after its
    existing ones (status rows are never recreated, instances and history use them).
    """

    def stored() -> dict:
        (data,) = yaml.safe_load(export_definitions())["workflows"]
        for step in data["steps"]:
            step["statuses"].sort(key=lambda status: status["name"])
        return data

    with transaction.atomic():
        import_definitions(definitions(after))
        fresh = stored()
        transaction.set_rollback(True)
    with transaction.atomic():
        import_definitions(definitions(before))
        report = import_definitions(definitions(after))
        assert stored() == fresh
        assert report.workflows[0].changed == (
            WorkflowDefinition.from_dict(before).to_dict()
            != WorkflowDefinition.from_dict(after).to_dict()
        )
        transaction.set_rollback(True)


def test_initial_step_and_default_status_can_move(claims):
    data = claims_definition()
    data["steps"][0]["initial"] = False
    data["steps"].insert(
        0,
        {
            "name": "Intake",
            "initial": True,
            "statuses": [{"name": "New", "default": True}, {"name": "Done", "completion": True}],
        },
    )
    data["transitions"].append({"from": "Intake", "to": "Submitted"})
    for status in data["steps"][2]["statuses"]:
        status["default"] = status["name"] == "In progress"
    import_definitions(definitions(data))
    stored = definition_from_db("Claims")
    assert stored.initial_step.name == "Intake"
    assert stored.get_step("Review").default_status.name == "In progress"


def test_equal_priority_transitions_keep_the_file_order(claims):
    data = claims_definition()
    for transition in data["transitions"]:
        if transition["from"] == "Review":
            transition["priority"] = 0
            transition["condition"] = transition.get("condition") or "claim.amount < 100.0"
    import_definitions(definitions(data))
    reordered = copy.deepcopy(data)
    review = [t for t in reordered["transitions"] if t["from"] == "Review"]
    rest = [t for t in reordered["transitions"] if t["from"] != "Review"]
    reordered["transitions"] = rest[:1] + list(reversed(review)) + rest[1:]

    report = import_definitions(definitions(reordered))

    assert "recreated to keep the order they are tried in" in str(report)
    stored = definition_from_db("Claims")
    assert [t.to_step for t in stored.transitions_from("Review")] == [
        "Payment",
        "Senior Review",
        "Investigation",
    ]
    again = export_definitions()
    assert parse_definitions(again)[0].to_dict() == WorkflowDefinition.from_dict(
        reordered
    ).to_dict() | {"transitions": parse_definitions(again)[0].to_dict()["transitions"]}
    assert [t["to"] for t in yaml.safe_load(again)["workflows"][0]["transitions"]] == [
        t["to"] for t in reordered["transitions"]
    ]


def test_deleting_a_step_in_use_fails_and_rolls_everything_back(instance_at_review):
    data = claims_definition()
    data["description"] = "Changed"
    data["steps"] = [s for s in data["steps"] if s["name"] != "Review"]
    data["transitions"] = [t for t in data["transitions"] if t["to"] != "Review"]
    for transition in data["transitions"]:
        if transition["from"] == "Review":
            transition["from"] = "Submitted"
    before = counts()
    history = WorkflowHistory.objects.count()

    with pytest.raises(DefinitionInUse) as raised:
        import_definitions(definitions(expense_definition(), data))

    assert str(raised.value) == (
        "Workflow 'Claims': cannot delete step 'Review': 1 workflow instance(s) are at it. "
        "Keep it in the file, or move or finish those instances first. Nothing was imported."
    )
    assert (raised.value.step, raised.value.instances) == ("Review", 1)
    assert counts() == before
    assert WorkflowHistory.objects.count() == history
    assert Workflow.objects.get(name="Claims").description != "Changed"
    assert not Workflow.objects.filter(name="Expenses").exists()


def test_deleting_a_status_in_use_fails_and_names_it(instance_at_review):
    data = claims_definition()
    statuses = data["steps"][1]["statuses"]
    statuses[:] = [s for s in statuses if s["name"] != "Pending"]
    statuses[0]["default"] = True
    before = counts()
    with pytest.raises(DefinitionInUse, match="cannot delete status 'Pending' of step 'Review'"):
        import_definitions(definitions(data))
    assert counts() == before


def test_deleting_unused_steps_deletes_their_transitions(claims):
    data = claims_definition()
    data["steps"] = [s for s in data["steps"] if s["name"] != "Investigation"]
    data["transitions"] = [t for t in data["transitions"] if "Investigation" not in t.values()]
    report = str(import_definitions(definitions(data)))
    assert "step 'Investigation' deleted" in report
    assert "transition 'Review -> Investigation' deleted" in report
    assert not WorkflowTransition.objects.filter(name__contains="Investigation").exists()


# --- commands --------------------------------------------------------------------------


def test_export_and_import_commands(claims, tmp_path, capsys):
    yaml_path, json_path = tmp_path / "claims.yaml", tmp_path / "claims.json"
    call_command("steps_export", "-o", str(yaml_path))
    call_command("steps_export", "Claims", "-o", str(json_path))
    assert yaml_path.read_text().startswith("format: django-steps/1\n")
    assert json.loads(json_path.read_text())["format"] == "django-steps/1"
    call_command("steps_export", "--format", "json")
    assert json.loads(capsys.readouterr().out) == json.loads(json_path.read_text())

    Workflow.objects.all().delete()
    call_command("steps_import", str(json_path), "--dry-run")
    assert "Workflow 'Claims': created.\nDry run: nothing was written." in capsys.readouterr().out
    assert not Workflow.objects.exists()
    call_command("steps_import", str(yaml_path))
    assert capsys.readouterr().out == "Workflow 'Claims': created.\n"
    assert export_definitions() == yaml_path.read_text()


def test_command_errors(claims, tmp_path):
    with pytest.raises(CommandError, match="No workflow named 'Nope'"):
        call_command("steps_export", "Nope")
    with pytest.raises(CommandError, match="Cannot read definitions file"):
        call_command("steps_import", str(tmp_path / "missing.yaml"))


# --- the field mapping ----------------------------------------------------------------

BOOKKEEPING = {"id", "name", "created_at", "updated_at"}
#: A step's group: handled beside the mapping (a foreign key written as the group's
#: name), exported only when set.
STEP_SPECIAL = {"assignee_group"}


@pytest.mark.parametrize(
    ("model", "definition", "fields", "own"),
    [
        (
            WorkflowStep,
            StepDefinition,
            STEP_FIELDS + STEP_DEADLINE_FIELDS,
            ({"workflow"} | STEP_SPECIAL, {"statuses"} | STEP_SPECIAL),
        ),
        (WorkflowStepStatus, StatusDefinition, STATUS_FIELDS, ({"step"}, set())),
        (
            WorkflowTransition,
            TransitionDefinition,
            TRANSITION_STEPS + TRANSITION_FIELDS,
            ({"workflow"}, set()),
        ),
    ],
    ids=["step", "status", "transition"],
)
def test_the_field_mapping_covers_every_field_of_rows_definitions_and_files(
    model, definition, fields, own
):
    model_fields, definition_fields = own
    assert {f.name for f in model._meta.concrete_fields} == (
        BOOKKEEPING | model_fields | {f.model_field for f in fields}
    )
    assert {f.name for f in dataclasses.fields(definition)} == (
        {"id", "name"} | definition_fields | {f.attribute for f in fields}
    )
    data = claims_definition()
    # The deadline keys are exported only when set: give the first step a deadline.
    data["steps"][0].update(due_after=3600, timeout_status="Withdrawn")
    exported = WorkflowDefinition.from_dict(data).to_dict()
    item = {
        StepDefinition: exported["steps"][0],
        StatusDefinition: exported["steps"][0]["statuses"][0],
        TransitionDefinition: exported["transitions"][0],
    }[definition]
    # Keys left at their default are written unless the field omits them (and the
    # step's special fields, unset in the claims workflow, are left out).
    assert set(item) == (
        {"name"}
        | (definition_fields - STEP_SPECIAL)
        | {f.key for f in fields if not f.omit_default}
    )
