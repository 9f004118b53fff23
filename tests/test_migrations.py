"""Every model change ships with its migration."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

# Apps whose migrations this repository owns; naming them makes makemigrations
# also report an app whose migrations package is missing altogether.
OWN_APPS = ("django_steps", "testapp")


@pytest.mark.django_db
def test_models_have_migrations() -> None:
    output = StringIO()
    try:
        call_command("makemigrations", *OWN_APPS, "--check", "--dry-run", stdout=output)
    except SystemExit:  # makemigrations --check exits 1 when a migration is missing
        missing = True
    else:
        missing = False
    if missing:
        pytest.fail(
            "Models changed without a migration; run "
            "`DJANGO_SETTINGS_MODULE=tests.settings python -m django makemigrations`:\n"
            + output.getvalue(),
            pytrace=False,
        )
    assert "No changes detected" in output.getvalue()
