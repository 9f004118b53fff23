"""Models that the test workflows attach to: one integer key, one UUID key."""

from __future__ import annotations

import uuid

from django.db import models


class Claim(models.Model):
    """An insurance claim with an integer primary key."""

    title = models.CharField(max_length=100)
    amount = models.DecimalField(max_digits=12, decimal_places=2, default=0)

    def __str__(self) -> str:
        return self.title


class Document(models.Model):
    """A document with a UUID primary key."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    title = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.title


class PurchaseOrder(models.Model):
    """An order whose readable fields are declared in ``DJANGO_STEPS["OBJECT_FIELDS"]``.

    ``secret`` is never declared: conditions must not see it.
    """

    amount = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    is_high_risk = models.BooleanField(default=False)
    secret = models.CharField(max_length=100, blank=True)

    def __str__(self) -> str:
        return f"PO {self.pk}"


class Expense(models.Model):
    """An expense that declares what conditions see with ``workflow_context()``."""

    amount = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    category = models.CharField(max_length=50, blank=True)
    secret = models.CharField(max_length=100, blank=True)

    def __str__(self) -> str:
        return f"Expense {self.pk}"

    def workflow_context(self) -> dict[str, object]:
        return {"amount": self.amount, "category": self.category}


class Order(models.Model):
    """The purchase order of the "Permissions and assignment" docs page."""

    amount = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    team = models.CharField(max_length=50, blank=True)

    def __str__(self) -> str:
        return f"Order {self.pk}"

    def workflow_context(self) -> dict[str, object]:
        return {"amount": self.amount, "team": self.team}
