"""The declared public API: ``__all__`` of each public module, internal modules marked,
and every Sphinx cross-reference in the code's docstrings pointing at something real."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

import django_steps

PACKAGE = Path(django_steps.__file__).parent

PUBLIC = [
    "django_steps.admin",
    "django_steps.admin.definitions",
    "django_steps.admin.instances",
    "django_steps.actors",
    "django_steps.cel",
    "django_steps.cel.backends",
    "django_steps.cel.variables",
    "django_steps.checks",
    "django_steps.conf",
    "django_steps.contrib.celery",
    "django_steps.diagrams",
    "django_steps.engine",
    "django_steps.exceptions",
    "django_steps.forms",
    "django_steps.introspection",
    "django_steps.machines",
    "django_steps.machines.context",
    "django_steps.machines.deadlines",
    "django_steps.machines.definition",
    "django_steps.machines.describe",
    "django_steps.machines.diagram",
    "django_steps.machines.explain",
    "django_steps.machines.lifecycle",
    "django_steps.machines.runner",
    "django_steps.machines.serialization",
    "django_steps.machines.validation",
    "django_steps.models",
    "django_steps.services",
    "django_steps.signals",
    "django_steps.tasks",
    "django_steps.testing",
    "django_steps.timers",
    "django_steps.transfer",
    "django_steps.validation",
]

INTERNAL = [
    "django_steps._engine",
    "django_steps._engine.cache",
    "django_steps._engine.context",
    "django_steps._engine.loading",
    "django_steps._engine.receivers",
    "django_steps._engine.statements",
    "django_steps.admin.panels",
    "django_steps.cel.backends.cel_expr",
    "django_steps.cel.backends.celpy",
    "django_steps.cel.backends.celpy_functions",
    "django_steps.cel.backends.celpy_transpiler",
    "django_steps.cel.conditions",
    "django_steps.cel.context",
    "django_steps.cel.cost",
    "django_steps.cel.limits",
    "django_steps.cel.quoted_fields",
    "django_steps.cel.safety",
    "django_steps.contrib",
    "django_steps.machines.compiler",
    "django_steps.machines.flat_engine",
]

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj):`~?([^`<]+)`")


def source_modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        if "migrations" in relative.parts or "management" in relative.parts:
            continue
        parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
        if parts != ("django_steps",) and parts[-1] != "apps":
            names.append(".".join(parts))
    return names


def test_every_module_is_either_public_or_internal():
    assert sorted(PUBLIC + INTERNAL) == sorted(source_modules())


@pytest.mark.parametrize("name", PUBLIC)
def test_a_public_module_declares_its_names(name):
    module = importlib.import_module(name)
    assert module.__all__, name
    assert len(set(module.__all__)) == len(module.__all__)
    for exported in module.__all__:
        assert hasattr(module, exported), f"{name}.__all__ names {exported!r}, not defined"


@pytest.mark.parametrize("name", PUBLIC)
def test_the_package_docstring_lists_each_public_module(name):
    top = ".".join(name.split(".")[:2])
    assert f":mod:`{top}`" in (django_steps.__doc__ or "")


@pytest.mark.parametrize("name", INTERNAL)
def test_an_internal_module_says_so(name):
    doc = importlib.import_module(name).__doc__ or ""
    assert "Internal" in doc, name


def resolves(target: str) -> bool:
    parts = target.split(".")
    for split in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            if not hasattr(found, attribute):
                return False
            found = getattr(found, attribute)
        return True
    return False


def candidates(module: str, package: str, target: str) -> list[str]:
    if target.startswith("."):
        name = target.lstrip(".")
        base = package.split(".")
        up = len(target) - len(name) - 1
        return [".".join([*base[: len(base) - up], name]), f"{module}.{name}"]
    return [target, f"{module}.{target}", f"{package}.{target}"]


def class_members(module: str) -> set[str]:
    """Names defined in the module's classes: a docstring may cite ``:meth:`other```."""
    found = importlib.import_module(module)
    return {
        member
        for _, cls in inspect.getmembers(found, inspect.isclass)
        if cls.__module__ == module
        for member in vars(cls)
    }


@pytest.mark.parametrize("module", [*source_modules(), "django_steps"])
def test_cross_references_in_docstrings_resolve(module):
    imported = importlib.import_module(module)
    path = Path(imported.__file__ or "")
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    text = path.read_text()
    broken = [
        target
        for target in ROLE.findall(text)
        if not any(resolves(name) for name in candidates(module, package, target.strip()))
        and target.strip() not in class_members(module)
    ]
    assert broken == []
