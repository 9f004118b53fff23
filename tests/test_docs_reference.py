"""The reference pages (docs/reference/) against the code they describe.

Each test reads a page and compares it with what the code defines, so a setting, a
system check, a command option, a model field, an exception or a signal added,
renamed or changed without its reference page fails here.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from django.core.management import get_commands, load_command_class
from django.db import models

import django_steps.checks
from django_steps import exceptions, signals, testing
from django_steps.conf import DEFAULTS
from django_steps.models import (
    Workflow,
    WorkflowHistory,
    WorkflowInstance,
    WorkflowInstanceQuerySet,
    WorkflowStep,
    WorkflowStepStatus,
    WorkflowTransition,
)

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "reference"
MKDOCS = REFERENCE.parent.parent / "mkdocs.yml"
CHECK_ID = re.compile(r"django_steps\.[EW]\d{3}")
# Options every management command has, from Django.
BASE_OPTIONS = {
    "version",
    "verbosity",
    "settings",
    "pythonpath",
    "traceback",
    "no_color",
    "force_color",
    "skip_checks",
}


def page(name: str) -> str:
    return (REFERENCE / name).read_text()


def section(text: str, heading: str) -> str:
    """The text of the ``## heading`` section (up to the next ``## ``)."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match is not None, f"no section {heading!r}"
    return match.group(1)


def table_rows(text: str) -> list[list[str]]:
    """The cells of every table row of ``text`` but header and separator rows."""
    rows = []
    for line in text.splitlines():
        if line.startswith("|") and not re.fullmatch(r"\|[\s|:-]+\|", line):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return [row for row in rows if row[0] not in ("Setting", "Field", "Method", "Signal")]


def defined_check_ids() -> set[str]:
    """Every check id that checks.py can report."""
    source = Path(django_steps.checks.__file__).read_text()
    return set(CHECK_ID.findall(source))


def test_every_reference_page_is_in_the_nav():
    nav = MKDOCS.read_text()
    for path in REFERENCE.glob("*.md"):
        assert f"reference/{path.name}" in nav, path.name


def test_the_settings_page_lists_each_setting_with_its_default():
    rows = table_rows(page("settings.md"))
    documented = {row[0].strip("`"): ast.literal_eval(row[1].strip("`")) for row in rows}
    assert documented == DEFAULTS
    assert all(type(documented[name]) is type(DEFAULTS[name]) for name in DEFAULTS)


def test_the_settings_page_names_an_existing_check_for_each_setting():
    for row in table_rows(page("settings.md")):
        ids = set(CHECK_ID.findall(row[-1]))
        assert ids, f"{row[0]} names no system check"
        assert ids <= defined_check_ids(), row[0]


def test_the_checks_page_has_a_section_per_check_id():
    documented = set(re.findall(r"^## `(django_steps\.[EW]\d{3})`$", page("checks.md"), re.M))
    assert documented == defined_check_ids()


@pytest.mark.parametrize(
    "name", ["steps_check", "steps_diagram", "steps_export", "steps_import", "steps_run_timers"]
)
def test_the_commands_page_documents_each_argument(name):
    text = section(page("commands.md"), name)
    arguments = text.split("| Argument | Meaning |")[1].split("\n\n")[0]
    documented = " ".join(row[0] for row in table_rows(arguments))
    parser = load_command_class("django_steps", name).create_parser("manage.py", name)
    own = [
        action
        for action in parser._actions
        if action.dest not in BASE_OPTIONS and action.dest != "help"
    ]
    assert own
    for action in own:
        if action.option_strings:
            for option in action.option_strings:
                assert f"`{option}" in documented, f"{name}: {option} is not documented"
        else:  # a positional, shown as in the usage line: FILE, WORKFLOW ...
            shown = action.dest.upper()
            if action.nargs in ("*", "+"):
                shown = shown.removesuffix("S") + " ..."
            assert f"`{shown}`" in documented, f"{name}: {action.dest} is not documented"
        if action.choices:
            for choice in action.choices:
                assert choice in text, f"{name}: choice {choice!r} is not documented"


def test_the_commands_page_has_a_section_per_command():
    ours = sorted(name for name, app in get_commands().items() if app == "django_steps")
    documented = re.findall(r"^## (\w+)$", page("commands.md"), re.M)
    assert documented == ours


MODELS = [
    Workflow,
    WorkflowStep,
    WorkflowStepStatus,
    WorkflowTransition,
    WorkflowInstance,
    WorkflowHistory,
]


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.__name__)
def test_the_models_page_lists_every_field_and_constraint(model):
    text = section(page("models.md"), model.__name__).split("\n### ")[0]
    fields = [
        field.name
        for field in model._meta.get_fields()
        if not field.auto_created  # neither reverse relations nor the implicit ``id``
    ]
    documented = {name.strip().strip("`") for row in table_rows(text) for name in row[0].split(",")}
    assert set(fields) == documented
    for constraint in [*model._meta.constraints, *model._meta.indexes]:
        assert f"`{constraint.name}`" in text, constraint.name


def test_the_models_page_lists_every_queryset_method():
    text = section(page("models.md"), "WorkflowInstance")
    own = {
        name
        for name, value in vars(WorkflowInstanceQuerySet).items()
        if callable(value) and not name.startswith("_")
    }
    documented = {row[0].strip("`").split("(")[0] for row in table_rows(text.split("### ")[-1])}
    assert documented == own
    assert not set(dir(models.QuerySet)) & own  # no Django method shadowed


def exception_tree() -> str:
    """The hierarchy of django-steps' exceptions, each with the standard ones it adds."""
    classes = [getattr(exceptions, name) for name in exceptions.__all__]
    lines: list[str] = []

    def walk(cls: type, prefix: str, last: bool, root: bool) -> None:
        standard = [base.__name__ for base in cls.__bases__ if base not in classes]
        label = cls.__name__ + (f" ({', '.join(standard)})" if standard else "")
        lines.append(label if root else prefix + ("└── " if last else "├── ") + label)
        below = "" if root else prefix + ("    " if last else "│   ")
        children = [other for other in classes if cls in other.__bases__]
        for index, child in enumerate(children):
            walk(child, below, index == len(children) - 1, False)

    walk(exceptions.StepsError, "", True, True)
    return "\n".join(lines)


def test_the_exceptions_page_shows_the_hierarchy_of_the_code():
    block = re.search(r"```text\n(.*?)\n```", page("exceptions.md"), re.S)
    assert block is not None
    assert block.group(1) == exception_tree()


def test_the_signals_page_lists_every_signal():
    documented = [row[0].strip("`") for row in table_rows(page("signals.md"))]
    assert sorted(documented) == sorted(signals.__all__)


def test_the_testing_page_documents_the_helpers():
    text = page("testing.md")
    members = set(re.findall(r"^ {8}- (\w+)$", text, re.M))
    constants = {name for name in testing.__all__ if name.isupper()}
    assert members == set(testing.__all__) - constants
    assert all(f"`{name}`" in text for name in constants)
