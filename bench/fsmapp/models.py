"""``Order``: a django-fsm-2 state field, and the object django-steps workflows attach to."""

from __future__ import annotations

from django.db import models
from django_fsm import FSMField, transition


class Order(models.Model):
    """An order with a django-fsm-2 state: ``new`` <-> ``approved``.

    ``approve`` has a condition, as the guarded django-steps transitions have.
    """

    amount = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    state = FSMField(default="new")

    def __str__(self) -> str:
        return f"Order {self.pk} ({self.state})"

    def can_approve(self) -> bool:
        return self.amount >= 0

    @transition(field=state, source="new", target="approved", conditions=[can_approve])
    def approve(self) -> None:
        """Approve a new order."""

    @transition(field=state, source="approved", target="new")
    def reopen(self) -> None:
        """Send an approved order back to new."""
