"""The model the claims workflow is attached to."""

from __future__ import annotations

from typing import Any

from django.db import models

WORKFLOW_NAME = "Claims"


class Claim(models.Model):
    """An insurance claim; its progress is a ``Claims`` workflow instance."""

    title = models.CharField(max_length=200)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    is_high_risk = models.BooleanField("high risk", default=False)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.title

    def workflow_context(self) -> dict[str, Any]:
        """The ``context_data`` the workflow's conditions read (``claim.amount``...)."""
        return {"claim": {"amount": self.amount, "is_high_risk": self.is_high_risk}}
