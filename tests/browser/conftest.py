"""Playwright fixtures: Debian's headless Chromium driving the admin on the live server.

The browser is the ``chromium`` on PATH (Debian's ``/usr/bin/chromium``), or the program
``DJANGO_STEPS_CHROMIUM`` names; no browser is downloaded. Without it the browser tests
are skipped with the reason, except under ``CI=true``, where a missing browser fails
them: CI must never pass by skipping (``tests/programs.py``).
Screenshots go to ``artifacts/screenshots/``; with ``DJANGO_STEPS_DOCS_IMAGES=1``
those the documentation shows are also copied to ``docs/img/``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.programs import need_program, unavailable

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
DOCS_IMAGES = ROOT / "docs" / "img"
CHROMIUM = os.environ.get("DJANGO_STEPS_CHROMIUM", "chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "correct horse battery staple"
ASYNC_UNSAFE = "DJANGO_ALLOW_ASYNC_UNSAFE"


def _is_true(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """Chromium for the tests of this package, closed after the last of them.

    Playwright's sync API keeps an event loop running in this thread while it is
    open, and Django's ORM refuses to run under a running loop ("You cannot call
    this from an async context"). ``DJANGO_ALLOW_ASYNC_UNSAFE`` lifts that check for
    exactly as long as the browser is open, so the rest of the suite keeps it.
    """
    chromium = need_program(CHROMIUM, package="chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed: pip install playwright")
    previous = os.environ.get(ASYNC_UNSAFE)
    os.environ[ASYNC_UNSAFE] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium, args=CHROMIUM_ARGS, headless=True
            )
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop(ASYNC_UNSAFE, None)
        else:
            os.environ[ASYNC_UNSAFE] = previous


def _new_page(browser: Any, color_scheme: str) -> Any:
    context = browser.new_context(
        viewport={"width": 1440, "height": 900}, color_scheme=color_scheme, locale="en-US"
    )
    context.set_default_timeout(15_000)
    return context.new_page()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    page = _new_page(browser, "light")
    yield page
    page.context.close()


@pytest.fixture
def dark_page(browser: Any) -> Iterator[Any]:
    page = _new_page(browser, "dark")
    yield page
    page.context.close()


@pytest.fixture
def administrator(django_user_model: Any) -> Any:
    return django_user_model.objects.create_superuser("admin", "admin@example.com", PASSWORD)


def log_in(page: Any, live_server: Any, user: Any) -> None:
    """Log in through the admin's login form."""
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", user.get_username())
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")


def screenshot(page: Any, name: str, *, docs: bool = False) -> Path:
    """Save ``name``.png (the full page) under artifacts/screenshots.

    With ``docs`` and ``DJANGO_STEPS_DOCS_IMAGES=1`` it is also copied to docs/img,
    where the documentation uses it.
    """
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.wait_for_load_state("networkidle")  # icons and the diagram are drawn
    page.screenshot(path=str(path), full_page=True)
    if docs and _is_true(os.environ.get("DJANGO_STEPS_DOCS_IMAGES")):
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_IMAGES / path.name)
    return path
