"""Minimal settings for the django-steps test suite.

The database is chosen by ``DJANGO_STEPS_TEST_DB``: ``sqlite`` (default, in memory)
or ``postgres``, which reads the standard libpq variables ``PGHOST``, ``PGPORT``,
``PGUSER``, ``PGPASSWORD`` and ``PGDATABASE`` (``make test`` sets them for the
throwaway cluster it starts).
"""

from __future__ import annotations

from importlib.util import find_spec

from tests.databases import databases_from_environment

SECRET_KEY = "django-steps-tests-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_steps",
    "tests.testapp",
]

# The timer task runs on Django's task framework (django.tasks from Django 6, the
# django-tasks backport before) with django-tasks-db's database backend, whose
# db_worker tests/test_timer_workers.py starts.
if find_spec("django.tasks") is None and find_spec("django_tasks") is not None:
    INSTALLED_APPS.append("django_tasks")
if find_spec("django_tasks_db") is not None:
    INSTALLED_APPS.append("django_tasks_db")
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

STATIC_URL = "/static/"

# What conditions may read of the test models as ``object`` (Expense declares its own).
DJANGO_STEPS = {"OBJECT_FIELDS": {"testapp.PurchaseOrder": ["amount", "is_high_risk"]}}

DATABASES = databases_from_environment("DJANGO_STEPS_TEST_DB", "DJANGO_STEPS_SQLITE_NAME")
# A second database, for the tests of routers and of two databases holding the same
# rows (tests/test_routing.py); created only for tests that ask for it.
DATABASES["other"] = {
    **DATABASES["default"],
    "TEST": {"NAME": "test_django_steps_other"}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    else {},
}

# ModelBackend, and an object-permission backend like django-guardian's for the tests
# of status permissions granted per object.
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "tests.object_permissions.ObjectPermissionBackend",
]
