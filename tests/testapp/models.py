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
