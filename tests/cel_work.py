"""Count the work that compiling a condition does, to bound refusals by work, not time.

A wall-clock bound ("refused within a second") fails on a loaded machine. What makes
refusing a hostile text cheap is where the refusal comes from: the checks before the
parser are single passes over the text (no parse at all); the parse-tree checks come
after one parse (LALR, linear in the text) and walk the tree once; and neither needs
the program built. Building it (transpiling) and evaluating it are where cel-python's
costly parts are (deep recursion, its backtracking duration pattern), so a refusal
must come before them. :func:`compile_work` counts the parses and the program builds;
``make bench`` gives the time the costliest refusals take (its "refuse ..." rows).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import lark
import pytest

from django_steps.cel import get_backend


@dataclass
class Work:
    """What one compilation did: lark parses run, and programs built."""

    parses: int = 0
    programs: int = 0


@contextmanager
def compile_work(backend: str) -> Iterator[Work]:
    """Count lark parses (cel-python's parser, which every backend's checks use) and
    ``backend``'s program builds while the block runs."""
    work = Work()
    cel = get_backend(backend)
    parse, program = lark.Lark.parse, cel.program

    def counted_parse(self: lark.Lark, *args: Any, **kwargs: Any) -> Any:
        work.parses += 1
        return parse(self, *args, **kwargs)

    def counted_program(*args: Any, **kwargs: Any) -> Any:
        work.programs += 1
        return program(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lark.Lark, "parse", counted_parse)
        patch.setattr(cel, "program", counted_program)
        yield work
