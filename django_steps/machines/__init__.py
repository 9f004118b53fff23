"""Workflow definitions compiled into python-statemachine classes with CEL guards.

This package needs neither a database nor configured Django settings: it works on
plain, immutable definitions (:mod:`.definition`), so workflow machines can be
built, drawn and driven in unit tests with no database.
"""

from __future__ import annotations

from .cel import CelLimits, CompiledCondition, compile_condition, convert_context
from .compiler import Evaluation, WorkflowMachine, compile_workflow
from .definition import (
    Lifecycle,
    StatusDefinition,
    StepDefinition,
    TransitionDefinition,
    WorkflowDefinition,
)
from .runner import Change, ChangeKind, MachineState, Outcome, WorkflowRunner

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
