"""External programs that some tests need, and what happens when one is missing.

Mark such a test (or a module, through ``pytestmark``) with
``requires_program("dot", package="graphviz")``, or call
``need_program("dot", package="graphviz")`` in a fixture, which also returns the
program's path. When the program is not on ``PATH`` the test is skipped with a message
naming the program and the Debian package that provides it; under ``CI=true`` the test
fails instead, since CI must never pass by skipping. ``scripts/install-system-packages``
(run by ``make test``) installs the packages when it can.

``DJANGO_STEPS_TEST_HIDE_PROGRAMS=dot,chromium`` hides the named programs for the whole
run, to try a machine without them on one that has them: on ``PATH``, each directory
that holds one is replaced by a copy without it (links to the rest), so
the checks here, the code under test and the processes that tests start all find the
programs missing.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import NoReturn

import pytest

#: Names of the programs to hide for the run, comma-separated.
HIDE_VARIABLE = "DJANGO_STEPS_TEST_HIDE_PROGRAMS"


def _is_true(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def unavailable(reason: str) -> NoReturn:
    """Skip the running test with ``reason``; fail it under ``CI=true``."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: this test must run, not skip)", pytrace=False)
    pytest.skip(reason)


def in_ci() -> bool:
    """Whether this run is CI (``CI=true``), where a missing program fails its tests."""
    return _is_true(os.environ.get("CI"))


def _reason(program: str, package: str) -> str:
    return (
        f"needs the program {program!r}, which is not on PATH: install Debian's {package} "
        "package (make system-packages does)"
    )


def missing_program(program: str, *, package: str) -> str | None:
    """Why a test needing ``program`` cannot run, or ``None`` when it is on PATH."""
    return None if shutil.which(program) else _reason(program, package)


def need_program(program: str, *, package: str) -> str:
    """The path of ``program``; skips (under CI, fails) the test when it is missing."""
    found = shutil.which(program)
    if found is None:
        unavailable(_reason(program, package))
    return found


def requires_program(program: str, *, package: str) -> pytest.MarkDecorator:
    """Mark a test as needing ``program`` (from Debian's ``package``); see the module doc."""
    return pytest.mark.requires_program(program, package=package)


#: The Graphviz program that draws SVG and PNG diagrams.
requires_graphviz = requires_program("dot", package="graphviz")


def hide_programs(names: set[str]) -> list[Path]:
    """Take ``names`` off ``PATH``: each directory holding one becomes a copy without it.

    The copy is a new directory of links to the directory's other entries; directories
    without any of ``names`` stay on ``PATH`` as they are. Returns the copies made.
    """
    entries: list[str] = []
    copies: list[Path] = []
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        if entry and any(os.path.lexists(os.path.join(entry, name)) for name in names):
            copy = Path(tempfile.mkdtemp(prefix="django-steps-path-"))
            copies.append(copy)
            for program in os.scandir(entry):
                if program.name not in names:
                    (copy / program.name).symlink_to(program.path)
            entry = str(copy)
        entries.append(entry)
    os.environ["PATH"] = os.pathsep.join(entries)
    return copies
