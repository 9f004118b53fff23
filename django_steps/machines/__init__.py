"""The database-free workflow core: definitions compiled into python-statemachine classes.

This package needs neither a database nor configured Django settings: it works on
plain, immutable definitions (:mod:`.definition`), so workflow machines can be
built, drawn and driven in unit tests with no database. It imports no Django and
nothing of django-steps above it: only :mod:`django_steps.cel` and
:mod:`django_steps.exceptions`.

Public modules: this package (the names in ``__all__``), :mod:`.definition`,
:mod:`.lifecycle`, :mod:`.runner`, :mod:`.context` (what conditions see),
:mod:`.deadlines` (when an instance is due),
:mod:`.serialization`, :mod:`.validation`, :mod:`.explain`, :mod:`.describe` and
:mod:`.diagram`. Internal: :mod:`.compiler` and
:mod:`.flat_engine` (use :func:`compile_workflow` and :class:`WorkflowRunner`).

The names below are loaded on first use, so importing a leaf module such as
:mod:`.lifecycle` (as :mod:`django_steps.models` does) loads nothing else.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..cel import CelLimits, CompiledCondition, compile_condition, convert_context
    from .compiler import Evaluation, WorkflowMachine, compile_workflow
    from .definition import (
        StatusDefinition,
        StepDefinition,
        TransitionDefinition,
        WorkflowDefinition,
    )
    from .lifecycle import ChangeKind, Lifecycle
    from .runner import Change, MachineState, Outcome, WorkflowRunner

_EXPORTS = {
    "CelLimits": "django_steps.cel",
    "Change": "django_steps.machines.runner",
    "ChangeKind": "django_steps.machines.lifecycle",
    "CompiledCondition": "django_steps.cel",
    "Evaluation": "django_steps.machines.compiler",
    "Lifecycle": "django_steps.machines.lifecycle",
    "MachineState": "django_steps.machines.runner",
    "Outcome": "django_steps.machines.runner",
    "StatusDefinition": "django_steps.machines.definition",
    "StepDefinition": "django_steps.machines.definition",
    "TransitionDefinition": "django_steps.machines.definition",
    "WorkflowDefinition": "django_steps.machines.definition",
    "WorkflowMachine": "django_steps.machines.compiler",
    "WorkflowRunner": "django_steps.machines.runner",
    "compile_condition": "django_steps.cel",
    "compile_workflow": "django_steps.machines.compiler",
    "convert_context": "django_steps.cel",
}

__all__ = [
    "CelLimits",
    "Change",
    "ChangeKind",
    "CompiledCondition",
    "Evaluation",
    "Lifecycle",
    "MachineState",
    "Outcome",
    "StatusDefinition",
    "StepDefinition",
    "TransitionDefinition",
    "WorkflowDefinition",
    "WorkflowMachine",
    "WorkflowRunner",
    "compile_condition",
    "compile_workflow",
    "convert_context",
]


def __getattr__(name: str) -> Any:
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
