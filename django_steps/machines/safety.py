"""Checks on a parsed condition that keep hostile texts from hurting the server."""

from __future__ import annotations

from typing import Any


def check_condition_safety(expression: str, ast: Any) -> None:
    """Raise ``ConditionSyntaxError`` for constructs that are too costly to evaluate.

    The rules are completed by the validation work (nested macros, ``duration()``
    and ``timestamp()`` on non-literals); the length and depth limits are enforced
    before parsing by :func:`django_steps.machines.cel.compile_condition`.
    """
