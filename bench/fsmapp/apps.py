"""App config of the benchmark's django-fsm-2 app."""

from __future__ import annotations

from django.apps import AppConfig


class FsmAppConfig(AppConfig):
    name = "bench.fsmapp"
    label = "fsmapp"
    default_auto_field = "django.db.models.BigAutoField"
