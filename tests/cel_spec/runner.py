"""Run the conformance cases through django-steps' condition layer on one backend.

A case is compiled with :func:`~django_steps.cel.compile_condition` (the checks made
when a definition is saved), its bindings converted with
:func:`~django_steps.cel.convert_context` and the condition evaluated. The outcome
is ``True``, ``False``, ``"error"`` (a :class:`ConditionEvaluationError`), or
``"refused"`` with the reason (the text or the context was refused before
evaluation). A case agrees when the outcome is the expected result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django_steps.cel import compile_condition, convert_context
from django_steps.exceptions import ConditionEvaluationError, ConditionSyntaxError, ContextError

from .cases import Case, load_cases

__all__ = ["MESSAGE_TYPES", "Outcome", "run_all", "run_case"]

#: Cases needing protobuf message types: a context holds plain data only.
MESSAGE_TYPES = re.compile(
    r"TestAllTypes|NestedTestAllTypes|google\.protobuf\.|cel\.expr\.|proto[23]\."
)


@dataclass(frozen=True)
class Outcome:
    case: Case
    result: bool | str
    detail: str = ""

    @property
    def agrees(self) -> bool:
        return self.result == self.case.expected


def run_case(case: Case, backend: str) -> Outcome:
    """The outcome of one case on ``backend``."""
    if MESSAGE_TYPES.search(case.expr) or case.container:
        return Outcome(case, "refused", "needs protobuf message types")
    if case.context is None:
        return Outcome(case, "refused", f"context cannot hold {case.unsupported_binding}")
    try:
        condition = compile_condition(case.expr, backend=backend)
    except ConditionSyntaxError as error:
        return Outcome(case, "refused", str(error))
    try:
        activation = convert_context(case.context, backend=backend)
    except ContextError as error:
        return Outcome(case, "refused", str(error))
    try:
        return Outcome(case, condition.evaluate(activation))
    except ConditionEvaluationError as error:
        return Outcome(case, "error", str(error))


def run_all(backend: str) -> list[Outcome]:
    """Every case's outcome on ``backend``, in file order."""
    return [run_case(case, backend) for case in load_cases()]
