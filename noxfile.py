"""Test matrix: the suite on SQLite across supported Python and Django versions (`make matrix`)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import nox

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "venv"
nox.options.reuse_venv = "yes"
nox.options.error_on_missing_interpreters = True
nox.options.download_python = "never"

PYPROJECT = nox.project.load_toml("pyproject.toml")

# (Python, Django series, Django requirement) for each supported Django series.
MATRIX = [
    ("3.11", "4.2", "Django>=4.2,<4.3"),
    ("3.11", "5.2", "Django>=5.2,<5.3"),
    ("3.12", "6.x", "Django>=6.0,<7"),
]


def find_interpreter(version: str) -> str:
    """Path of a working ``python<version>``, also when pyenv does not expose it.

    pyenv puts a ``python3.12`` shim on PATH that fails unless 3.12 is a selected
    pyenv version, so installed pyenv versions are looked up directly as a fallback.
    Returns the bare version (for nox to report as missing) when none is found.
    """
    command = f"python{version}"
    found = shutil.which(command)
    if found and subprocess.run([found, "-c", ""], capture_output=True).returncode == 0:
        return found
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = sorted(
        pyenv_root.glob(f"versions/{version}.*/bin/{command}"),
        key=lambda path: [int(part) for part in path.parts[-3].split(".") if part.isdigit()],
    )
    return str(candidates[-1]) if candidates else version


@nox.session
@nox.parametrize(
    ("python", "django"),
    [
        nox.param(find_interpreter(python), requirement, id=f"django{series}-py{python}")
        for python, series, requirement in MATRIX
    ],
)
def tests(session: nox.Session, django: str) -> None:
    """Run the suite on SQLite, minus browser and slow tests."""
    requirements = nox.project.dependency_groups(PYPROJECT, "test")
    if django == "Django>=4.2,<4.3":
        # django-tasks-db needs Django 5.2; on 4.2 its worker test is skipped.
        requirements = tuple(r for r in requirements if not r.startswith("django-tasks-db"))
    session.install("--editable", ".", *requirements, django)
    session.run(
        "pytest",
        "-m",
        "not browser and not slow",
        *session.posargs,
        env={"DJANGO_STEPS_TEST_DB": "sqlite"},
    )
