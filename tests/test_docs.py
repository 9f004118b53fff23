"""Run the documentation's examples, so the docs cannot drift from the code.

A fenced block right after a ``<!-- run -->`` line is executed, in page order, in one
namespace per page, against the test database:

- ``python`` blocks are executed as they are;
- ``pycon`` blocks are doctests: every ``>>>`` line runs and its shown output must match;
- ``yaml`` blocks are workflow definitions in the export format, imported as
  ``steps_import`` would.

The pages write the quickstart's ``claims`` app; ``claims.models`` is the suite's
``tests.testapp.models``, whose ``Claim`` is the quickstart's model (checked below).
"""

from __future__ import annotations

import ast
import doctest
import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import django
import pytest
from django.dispatch import Signal

from django_steps import signals
from django_steps.machines.serialization import parse_definitions
from django_steps.transfer import import_definitions
from tests.testapp import models as testapp_models

DOCS = Path(__file__).resolve().parent.parent / "docs"
RUN_MARKER = "<!-- run -->"
SIGNALS = [value for value in vars(signals).values() if isinstance(value, Signal)]
FENCE = re.compile(r"^(?P<fence>`{3,})(?P<language>[\w-]*)")


@dataclass(frozen=True)
class Example:
    """One runnable fenced block of a page."""

    page: Path
    line: int
    language: str
    code: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(DOCS.parent)}:{self.line}"


def examples(page: Path) -> list[Example]:
    """The blocks of ``page`` marked to run, in page order."""
    lines = page.read_text().splitlines()
    found = []
    for index, line in enumerate(lines):
        if line.strip() != RUN_MARKER:
            continue
        opening = FENCE.match(lines[index + 1]) if index + 1 < len(lines) else None
        if opening is None:
            raise AssertionError(f"{page}:{index + 1}: {RUN_MARKER} is not followed by a fence")
        end = next(
            i for i in range(index + 2, len(lines)) if lines[i].strip() == opening.group("fence")
        )
        found.append(
            Example(
                page=page,
                line=index + 3,
                language=opening.group("language"),
                code="\n".join(lines[index + 2 : end]) + "\n",
            )
        )
    return found


def pages_with_examples() -> list[Path]:
    return sorted(page for page in DOCS.rglob("*.md") if RUN_MARKER in page.read_text())


def run_doctest(example: Example, namespace: dict[str, Any]) -> None:
    test = doctest.DocTestParser().get_doctest(
        example.code, namespace, example.where, str(example.page), example.line - 1
    )
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS, verbose=False)
    report = io.StringIO()
    runner.run(test, out=report.write, clear_globs=False)
    assert runner.failures == 0, f"{example.where}:\n{report.getvalue()}"
    namespace.update(test.globs)  # the doctest ran on a copy; later blocks see its names


def run_example(example: Example, namespace: dict[str, Any]) -> None:
    if example.language == "python":
        exec(compile(example.code, example.where, "exec"), namespace)
    elif example.language == "pycon":
        run_doctest(example, namespace)
    elif example.language == "yaml":
        import_definitions(parse_definitions(example.code, "yaml"))
    else:
        raise AssertionError(f"{example.where}: cannot run a {example.language!r} block")


@pytest.fixture
def claims_app(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``from claims.models import Claim`` import the suite's testapp model."""
    package = type(sys)("claims")
    package.models = testapp_models  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "claims", package)
    monkeypatch.setitem(sys.modules, "claims.models", testapp_models)


@pytest.fixture
def isolated_signals() -> Iterator[None]:
    """Disconnect whatever receivers a page connects, even when its example fails."""
    saved = {signal: list(signal.receivers) for signal in SIGNALS}
    yield
    for signal, receivers in saved.items():
        with signal.lock:
            signal.receivers = receivers
            signal.sender_receivers_cache.clear()


@pytest.mark.django_db
@pytest.mark.usefixtures("claims_app", "isolated_signals")
@pytest.mark.parametrize(
    "page", pages_with_examples(), ids=lambda page: str(page.relative_to(DOCS))
)
def test_page_examples_run(page: Path) -> None:
    namespace: dict[str, Any] = {"__name__": f"docs.{page.stem}"}
    for example in examples(page):
        run_example(example, namespace)


def test_quickstart_and_services_have_examples() -> None:
    pages = {page.name for page in pages_with_examples()}
    assert {"quickstart.md", "services.md"} <= pages


def test_quickstart_model_is_the_one_the_examples_run_with() -> None:
    text = (DOCS / "quickstart.md").read_text()
    block = re.search(r'```python title="claims/models.py"\n(.*?)```', text, re.DOTALL)
    assert block is not None
    fields = {
        node.targets[0].id: ast.unparse(node.value)
        for node in ast.walk(ast.parse(block.group(1)))
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
    }
    model = testapp_models.Claim
    assert fields == {
        "title": "models.CharField(max_length=100)",
        "amount": "models.DecimalField(max_digits=12, decimal_places=2, default=0)",
    }
    assert model._meta.get_field("title").max_length == 100
    amount = model._meta.get_field("amount")
    assert (amount.max_digits, amount.decimal_places, amount.default) == (12, 2, 0)


def titled_block(text: str, title: str) -> str:
    found = re.search(rf'```\w+ title="{re.escape(title)}"\n(.*?)```', text, re.DOTALL)
    assert found is not None, f"no block titled {title!r}"
    return found.group(1)


def test_quickstart_in_a_new_startproject_project(tmp_path: Path) -> None:
    """Follow the quickstart as a newcomer would, in a project made by ``startproject``."""
    text = (DOCS / "quickstart.md").read_text()
    environment = {
        key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"
    }

    def run(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, *args],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    run("-m", "django", "startproject", "mysite", ".")
    run("manage.py", "startapp", "claims")
    settings = tmp_path / "mysite" / "settings.py"
    installed = re.compile(r"^INSTALLED_APPS = \[.*?\]\n", re.DOTALL | re.MULTILINE)
    assert installed.search(settings.read_text())
    settings.write_text(
        installed.sub(lambda _: titled_block(text, "mysite/settings.py"), settings.read_text())
    )
    (tmp_path / "claims" / "models.py").write_text(titled_block(text, "claims/models.py"))
    (tmp_path / "claims-workflow.yaml").write_text(titled_block(text, "claims-workflow.yaml"))
    for command in re.findall(
        r"^python manage\.py (makemigrations claims|migrate|steps_import .*)$", text, re.MULTILINE
    ):
        run("manage.py", *command.split())
    sessions = tmp_path / "session.txt"
    sessions.write_text("\n".join(re.findall(r"```pycon\n(.*?)```", text, re.DOTALL)))
    checked = run(
        "manage.py",
        "shell",
        *(["--no-imports"] if django.VERSION >= (5, 2) else []),  # the page's own imports
        "-c",
        "import doctest; result = doctest.testfile('session.txt', module_relative=False, "
        "optionflags=doctest.ELLIPSIS); print('doctest', result.failed, result.attempted)",
    )
    failed, attempted = checked.split("doctest ")[-1].split()
    assert (failed, int(attempted) > 10) == ("0", True), checked


def test_deployment_lists_every_setting_with_its_default() -> None:
    from django_steps.conf import DEFAULTS

    text = (DOCS / "deployment.md").read_text()
    block = re.search(r"```python[^\n]*\n(DJANGO_STEPS = \{.*?\n\})\n```", text, re.DOTALL)
    assert block is not None
    namespace: dict[str, Any] = {}
    exec(block.group(1), namespace)
    assert namespace["DJANGO_STEPS"] == DEFAULTS
