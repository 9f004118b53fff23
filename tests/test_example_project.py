"""The example project, run as ``make demo`` runs it (migrate, import, demo) on a fresh database."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.programs import requires_graphviz

EXAMPLE = Path(__file__).resolve().parent.parent / "example_project"


def manage(*args: str, database: Path, path: str | None = None) -> str:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("DJANGO_")}
    environment["EXAMPLE_DATABASE"] = str(database)
    if path is not None:
        environment["PATH"] = path
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=EXAMPLE,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def demo_output(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    directory = tmp_path_factory.mktemp("example")
    database, diagram = directory / "db.sqlite3", directory / "claims.svg"
    manage("migrate", "--verbosity", "0", database=database)
    imported = manage("steps_import", "claims/workflows/claims.yaml", database=database)
    assert imported.strip() == "Workflow 'Claims': created."
    shutil.copyfile(database, directory / "imported.sqlite3")  # for a second demo run
    return manage("demo", "--diagram", str(diagram), database=database), diagram


def rows(output: str) -> dict[str, list[str]]:
    """Table rows by claim title: the cells split on runs of two or more spaces."""
    table = output.split("\n\n", 1)[0].splitlines()[2:]
    cells = [re.split(r"\s{2,}", line.strip()) for line in table]
    return {row[1]: row[2:] for row in cells}


def test_each_claim_takes_its_path(demo_output: tuple[str, Path]) -> None:
    table = rows(demo_output[0])
    path, step, status, lifecycle = 2, 3, 4, 5
    low = table["Cracked windscreen"]
    assert low[path] == "Submitted -> Review -> Payment -> Closed"
    assert (low[step], low[status], low[lifecycle]) == ("Closed", "Closed", "Completed")
    high = table["Storm damage to roof"]
    assert high[path].endswith("Review -> Senior Review")
    risky = table["Warehouse fire"]
    assert (risky[step], risky[status]) == ("Investigation", "Open")
    held = table["Burst pipe"]
    assert (held[step], held[status], held[lifecycle]) == ("Payment", "Scheduled", "Running")
    cancelled = table["Duplicate of a claim"]
    assert (cancelled[step], cancelled[status], cancelled[lifecycle]) == (
        "Review",
        "Rejected",
        "Cancelled",
    )
    refused = table["Stolen bicycle"]
    assert (refused[step], refused[status], refused[lifecycle]) == ("Review", "Pending", "Running")


def test_notes_explain_hold_and_refusal(demo_output: tuple[str, Path]) -> None:
    output = demo_output[0]
    assert "resumed to the status it had before ('In progress')" in output
    assert "'Approved' refused, nothing changed: Workflow 'Claims'" in output
    assert "ERROR: no such member in mapping: 'is_high_risk'" in output
    assert "with the claim's full data, 'Approved' would move it to 'Payment'" in output
    assert "'Investigate high risk' false, 'Senior review over 10,000' true" in output


def test_the_example_apps_own_tests_pass(tmp_path: Path) -> None:
    manage("test", "claims", "--verbosity", "0", database=tmp_path / "unused.sqlite3")


@requires_graphviz
def test_the_diagram_is_written(demo_output: tuple[str, Path]) -> None:
    output, diagram = demo_output
    assert f"Workflow diagram: {diagram}" in output
    assert diagram.read_text().lstrip().startswith(("<?xml", "<svg"))
    assert "Senior Review" in diagram.read_text()


def test_without_graphviz_the_diagram_is_mermaid_text(demo_output: tuple[str, Path]) -> None:
    directory = demo_output[1].parent
    output = manage(
        "demo",
        "--diagram",
        str(directory / "fallback.svg"),
        database=directory / "imported.sqlite3",
        path="/nonexistent",  # no dot
    )
    mermaid = directory / "fallback.mmd"
    assert f"Workflow diagram: {mermaid}" in output
    assert mermaid.read_text().startswith("stateDiagram-v2")
    assert not (directory / "fallback.svg").exists()
