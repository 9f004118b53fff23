"""Griffe extension for the docs: show the docstrings' Sphinx roles as inline code.

The code's docstrings use Sphinx roles (``:class:`~django_steps.exceptions.StepsError```);
mkdocstrings would print them verbatim. A role becomes inline code of its target,
shortened to the last name when the target starts with ``~``.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj):`(~?)([^`]+)`")
DOUBLE_BACKTICKS = re.compile(r"``([^`]+)``")


def _inline(match: re.Match[str]) -> str:
    short, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if short else target}`"


class SphinxRoles(griffe.Extension):
    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            text = ROLE.sub(_inline, obj.docstring.value)
            obj.docstring.value = DOUBLE_BACKTICKS.sub(r"`\1`", text)
