"""Tests of the example claims app: its admin columns and actions, and the demo.

Run them with ``python manage.py test claims`` (the suite under ``tests/`` does).
"""

from __future__ import annotations

from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import connection
from django.test import TestCase
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from django_steps.services import get_workflow_instance_for_object, start_workflow_instance

from .demo import run_demo
from .models import WORKFLOW_NAME, Claim
from .workflow import load_claims_workflow

CHANGELIST = reverse("admin:claims_claim_changelist")


class ClaimAdminTests(TestCase):
    @classmethod
    def setUpTestData(cls) -> None:
        load_claims_workflow()
        cls.user = get_user_model().objects.create_superuser("admin", "a@example.com", "pw")

    def setUp(self) -> None:
        self.client.force_login(self.user)

    def claim(self, amount: str, *, started: bool = True) -> Claim:
        claim = Claim.objects.create(title=f"Claim of {amount}", amount=Decimal(amount))
        if started:
            start_workflow_instance(WORKFLOW_NAME, claim)
        return claim

    def changelist_queries(self) -> int:
        with CaptureQueriesContext(connection) as queries:
            response = self.client.get(CHANGELIST)
        assert response.status_code == 200
        return len(queries)

    def test_changelist_shows_step_and_status_in_constant_queries(self) -> None:
        self.claim("100.00")
        few = self.changelist_queries()
        for _ in range(5):
            self.claim("200.00")
        assert self.changelist_queries() == few
        response = self.client.get(CHANGELIST)
        self.assertContains(response, '<td class="field-workflow_step">Submitted</td>', count=6)

    def test_start_action_starts_the_workflow(self) -> None:
        claim = self.claim("100.00", started=False)
        self.client.post(CHANGELIST, {"action": "start_workflow", "_selected_action": [claim.pk]})
        instance = get_workflow_instance_for_object(claim, WORKFLOW_NAME)
        assert instance is not None
        assert instance.history.get().actor == self.user

    def test_complete_action_takes_the_transition_for_the_claim(self) -> None:
        claim = self.claim("24000.00")
        for _ in range(2):  # Submitted -> Review, then Review -> Senior Review
            self.client.post(
                CHANGELIST, {"action": "complete_current_step", "_selected_action": [claim.pk]}
            )
        instance = get_workflow_instance_for_object(claim, WORKFLOW_NAME)
        assert instance is not None
        assert instance.current_step is not None
        assert instance.current_step.name == "Senior Review"

    def test_complete_action_reports_a_claim_without_workflow(self) -> None:
        claim = self.claim("100.00", started=False)
        response = self.client.post(
            CHANGELIST,
            {"action": "complete_current_step", "_selected_action": [claim.pk]},
            follow=True,
        )
        self.assertContains(response, f"{claim}: no running workflow.")


class DemoTests(TestCase):
    def test_every_scenario_ends_where_it_should(self) -> None:
        ends = {
            report.claim.title: (report.step, report.status, report.lifecycle)
            for report in run_demo()
        }
        assert ends == {
            "Cracked windscreen": ("Closed", "Closed", "Completed"),
            "Storm damage to roof": ("Senior Review", "Pending", "Running"),
            "Warehouse fire": ("Investigation", "Open", "Running"),
            "Burst pipe": ("Payment", "Scheduled", "Running"),
            "Duplicate of a claim": ("Review", "Rejected", "Cancelled"),
            "Stolen bicycle": ("Review", "Pending", "Running"),
        }
