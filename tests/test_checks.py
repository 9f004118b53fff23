"""The system checks of the ``DJANGO_STEPS`` settings, and settings read when used.

Every check id of :mod:`django_steps.checks` is triggered here, through the function
and through Django's check framework (``manage.py check``); the settings object
follows ``override_settings`` without a restart.
"""

from __future__ import annotations

import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from django_steps.cel import CelLimits
from django_steps.checks import check_settings
from django_steps.conf import DEFAULTS, current_limits, steps_settings
from django_steps.exceptions import ConfigurationError


def ids(messages: list[checks.CheckMessage]) -> list[str]:
    return [message.id or "" for message in messages]


def test_the_defaults_pass_every_check():
    assert check_settings() == []
    with override_settings(DJANGO_STEPS=dict(DEFAULTS)):
        assert check_settings() == []


@pytest.mark.parametrize("value", [["CONDITION_MAX_LENGTH", 10], "CONDITION_MAX_LENGTH=10"])
def test_a_setting_that_is_not_a_dict_is_e001(value):
    with override_settings(DJANGO_STEPS=value):
        messages = check_settings()
    assert ids(messages) == ["django_steps.E001"]
    assert messages[0].msg == "The DJANGO_STEPS setting must be a dict."
    assert messages[0].is_serious()


def test_unknown_keys_are_e002_with_the_known_ones_as_hint():
    with override_settings(DJANGO_STEPS={"CONDITION_MAX_LENGHT": 10, "CACHE": 1}):
        messages = check_settings()
    assert ids(messages) == ["django_steps.E002"]
    assert messages[0].msg == "Unknown DJANGO_STEPS setting(s): CACHE, CONDITION_MAX_LENGHT."
    assert messages[0].hint == f"Known settings: {', '.join(sorted(DEFAULTS))}."


#: The settings that take a positive integer (DIAGRAM_TIMEOUT, seconds or None, is in
#: test_diagrams; the others are checked below).
NUMERIC = sorted(
    name for name, value in DEFAULTS.items() if type(value) is int and name != "DIAGRAM_TIMEOUT"
)


def test_the_numeric_settings_are_the_limits_and_the_cache_size():
    assert NUMERIC == [
        "CONDITION_MAX_COMPREHENSIONS",
        "CONDITION_MAX_DEPTH",
        "CONDITION_MAX_LENGTH",
        "CONTEXT_MAX_BYTES",
        "CONTEXT_MAX_DEPTH",
        "MACHINE_CACHE_SIZE",
    ]


@pytest.mark.parametrize("name", NUMERIC)
@pytest.mark.parametrize("value", [0, -3, 2.0, "64k", False, None])
def test_every_numeric_setting_must_be_a_positive_integer_e003(name, value):
    with override_settings(DJANGO_STEPS={name: value}):
        messages = check_settings()
    assert ids(messages) == ["django_steps.E003"]
    assert messages[0].msg == f"DJANGO_STEPS[{name!r}] must be a positive integer, not {value!r}."


def test_each_bad_value_is_its_own_e003():
    with override_settings(DJANGO_STEPS={"CONTEXT_MAX_BYTES": 0, "MACHINE_CACHE_SIZE": "8"}):
        messages = check_settings()
    assert ids(messages) == ["django_steps.E003", "django_steps.E003"]
    assert "CONTEXT_MAX_BYTES" in messages[0].msg
    assert "MACHINE_CACHE_SIZE" in messages[1].msg


def test_an_unknown_backend_is_e004_naming_the_choices():
    with override_settings(DJANGO_STEPS={"CEL_BACKEND": "cel-rust"}):
        messages = check_settings()
    assert ids(messages) == ["django_steps.E004"]
    assert messages[0].msg == (
        "DJANGO_STEPS['CEL_BACKEND'] is unusable: "
        "Unknown CEL backend 'cel-rust'; choose one of ['cel-expr', 'celpy']."
    )


@pytest.mark.parametrize("value", [0, -1, "4", True, None])
def test_comprehension_limit_must_be_a_positive_integer(value):
    with override_settings(DJANGO_STEPS={"CONDITION_MAX_COMPREHENSIONS": value}):
        messages = check_settings()
    assert [message.id for message in messages] == ["django_steps.E003"]
    assert "CONDITION_MAX_COMPREHENSIONS" in messages[0].msg


def test_depth_limit_beyond_what_cel_python_evaluates_is_a_warning():
    with override_settings(DJANGO_STEPS={"CONDITION_MAX_DEPTH": 33}):
        assert check_settings() == []
    with override_settings(DJANGO_STEPS={"CONDITION_MAX_DEPTH": 50}):
        [message] = check_settings()
    assert message.id == "django_steps.W001"
    assert "is 50, but conditions nested more than about 33 levels are still refused" in (
        message.msg
    )
    assert not message.is_serious()
    assert message.hint == "Use a value of at most 33."


def test_the_checks_are_registered_with_django():
    with override_settings(DJANGO_STEPS={"CONDITION_MAX_DEPTH": 0, "CEL_BACKEND": "x"}):
        messages = checks.run_checks(tags=["django_steps"])
        with pytest.raises(SystemCheckError, match=r"django_steps\.E003") as raised:
            call_command("check")
    assert ids(messages) == ["django_steps.E003", "django_steps.E004"]
    assert "django_steps.E004" in str(raised.value)


def test_manage_py_check_passes_with_a_warning_only():
    with override_settings(DJANGO_STEPS={"CONDITION_MAX_DEPTH": 50}):
        call_command("check")  # warnings do not fail the command
        with pytest.raises(SystemCheckError, match=r"django_steps\.W001"):
            call_command("check", fail_level="WARNING")


# --- settings read when used -------------------------------------------------------------


def test_settings_follow_override_settings_and_come_back():
    assert steps_settings.CONDITION_MAX_LENGTH == 1000
    with override_settings(DJANGO_STEPS={"CONDITION_MAX_LENGTH": 12}):
        assert steps_settings.CONDITION_MAX_LENGTH == 12
        assert steps_settings.CONTEXT_MAX_DEPTH == 10
        with override_settings(DJANGO_STEPS={"CONTEXT_MAX_DEPTH": 3}):
            assert steps_settings.CONDITION_MAX_LENGTH == 1000
            assert steps_settings.CONTEXT_MAX_DEPTH == 3
        assert steps_settings.CONDITION_MAX_LENGTH == 12
    assert steps_settings.CONDITION_MAX_LENGTH == 1000


@override_settings(DJANGO_STEPS={"CONDITION_MAX_DEPTH": 7, "CONTEXT_MAX_BYTES": 100})
def test_current_limits_are_those_of_the_settings_now():
    assert current_limits() == CelLimits(
        max_length=DEFAULTS["CONDITION_MAX_LENGTH"],
        max_depth=7,
        max_comprehensions=DEFAULTS["CONDITION_MAX_COMPREHENSIONS"],
        context_max_bytes=100,
        context_max_depth=DEFAULTS["CONTEXT_MAX_DEPTH"],
    )


def test_an_unknown_setting_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="Unknown django-steps setting: 'CACHE_SIZE'"):
        steps_settings.CACHE_SIZE  # noqa: B018


def test_a_setting_that_is_not_a_dict_is_a_configuration_error_when_read():
    with (
        override_settings(DJANGO_STEPS=["CONDITION_MAX_LENGTH"]),
        pytest.raises(ConfigurationError, match="must be a dict"),
    ):
        steps_settings.CONDITION_MAX_LENGTH  # noqa: B018
    assert steps_settings.CONDITION_MAX_LENGTH == 1000
