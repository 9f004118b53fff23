"""Integrations with optional third-party packages; each module imports its own.

Internal as a package: it defines nothing itself. Its module
:mod:`django_steps.contrib.celery` (the timer sweep as a Celery task) is public.
"""
