"""Application configuration: connects internal receivers and system checks."""

from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DjangoStepsConfig(AppConfig):
    name = "django_steps"
    verbose_name = _("Workflows")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import (
            checks,  # noqa: F401  (registers the system checks)
            engine,  # noqa: F401  (finishes the instances of deleted objects)
        )
        from ._engine import receivers  # noqa: F401  (connects the internal receivers)
