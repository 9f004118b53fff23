"""``manage.py demo_setup``: load the claims workflow if missing and create the demo user."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from claims.workflow import load_claims_workflow

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo"


class Command(BaseCommand):
    help = "Prepare the example for the admin: the claims workflow and a demo superuser."

    def handle(self, *args: Any, **options: Any) -> None:
        workflow = load_claims_workflow()
        self.stdout.write(f"Workflow {workflow.name!r} is loaded.")
        user_model = get_user_model()
        if not user_model.objects.filter(username=DEMO_USERNAME).exists():
            user_model.objects.create_superuser(DEMO_USERNAME, "demo@example.com", DEMO_PASSWORD)
        self.stdout.write(
            "Admin: http://127.0.0.1:8000/admin/ "
            f"(user {DEMO_USERNAME!r}, password {DEMO_PASSWORD!r}; local use only)"
        )
