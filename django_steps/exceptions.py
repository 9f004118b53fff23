"""Exceptions raised by django-steps.

Every exception derives from :class:`StepsError`. Each one also inherits the
standard exception that matches its meaning (``ValueError``, ``LookupError``,
``ImproperlyConfigured``...), so callers can catch either, and carries its context
(workflow, step, status, expression...) as attributes. This module imports nothing
that needs configured Django settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied

__all__ = [
    "ConditionError",
    "ConditionEvaluationError",
    "ConditionSyntaxError",
    "ConfigurationError",
    "ContextError",
    "DefinitionError",
    "DefinitionInUse",
    "DiagramError",
    "InstanceError",
    "InstanceFinished",
    "InstanceNotFound",
    "InvalidObject",
    "InvalidStatus",
    "NoTransitionAvailable",
    "OperationNotAllowed",
    "StepsError",
    "TransitionConditionError",
    "WorkflowNotFound",
    "WrongModel",
]


class StepsError(Exception):
    """Base class of every django-steps error."""


class ConfigurationError(StepsError, ImproperlyConfigured):
    """A ``DJANGO_STEPS`` setting is missing, unknown or invalid."""


# --- definitions -----------------------------------------------------------------


class DefinitionError(StepsError, ValueError):
    """A workflow definition cannot be used.

    ``problems`` lists every problem found (see :mod:`django_steps.validation`).
    """

    def __init__(self, message: str, *, workflow: str | None = None, problems: Sequence[Any] = ()):
        super().__init__(message)
        self.workflow = workflow
        self.problems = list(problems)


class DefinitionInUse(DefinitionError):
    """A change to a stored definition would delete a step or status instances are at.

    ``step`` and ``status`` name the row; ``instances`` is how many instances use it.
    """

    def __init__(
        self,
        message: str,
        *,
        workflow: str | None = None,
        step: str = "",
        status: str = "",
        instances: int = 0,
    ):
        super().__init__(message, workflow=workflow)
        self.step = step
        self.status = status
        self.instances = instances


class WorkflowNotFound(StepsError, LookupError):
    """No workflow has the given name."""

    def __init__(self, workflow: str):
        super().__init__(f"No workflow named {workflow!r}.")
        self.workflow = workflow


# --- conditions ------------------------------------------------------------------


class ConditionError(StepsError, ValueError):
    """Base class for errors about a CEL condition.

    ``expression`` is the condition text; ``workflow`` and ``transition`` name where
    it is used when that is known.
    """

    def __init__(
        self,
        message: str,
        *,
        expression: str,
        workflow: str | None = None,
        transition: str | None = None,
    ):
        super().__init__(message)
        self.expression = expression
        self.workflow = workflow
        self.transition = transition


class ConditionSyntaxError(ConditionError):
    """A condition does not parse or breaks a limit; ``line`` and ``column`` are 1-based."""

    def __init__(
        self,
        message: str,
        *,
        expression: str,
        line: int | None = None,
        column: int | None = None,
        workflow: str | None = None,
        transition: str | None = None,
    ):
        super().__init__(message, expression=expression, workflow=workflow, transition=transition)
        self.line = line
        self.column = column


class ConditionEvaluationError(ConditionError):
    """A condition could not be evaluated against the context (fail closed)."""


class ContextError(StepsError, TypeError):
    """``context_data`` holds a value that conditions cannot use, or is too large."""

    def __init__(self, message: str, *, path: str = ""):
        super().__init__(message)
        self.path = path


# --- instances -------------------------------------------------------------------


class InstanceError(StepsError):
    """Base class for refused operations on a workflow instance."""

    def __init__(self, message: str, *, instance: Any = None):
        super().__init__(message)
        self.instance = instance


class WrongModel(StepsError, ValueError):
    """The workflow is for another model (``Workflow.content_type``) than the object's.

    ``workflow`` names the workflow, ``model`` the object's model label.
    """

    def __init__(self, message: str, *, workflow: str = "", model: str = ""):
        super().__init__(message)
        self.workflow = workflow
        self.model = model


class InvalidObject(InstanceError, TypeError):
    """What a workflow instance was to attach to is not a model instance.

    ``value`` is what was given.
    """

    def __init__(self, message: str, *, value: Any = None):
        super().__init__(message)
        self.value = value


class InstanceFinished(InstanceError, ValueError):
    """The instance is completed or cancelled; nothing more can change it."""


class InvalidStatus(InstanceError, LookupError):
    """The status is not one of the current step's statuses."""

    def __init__(self, message: str, *, instance: Any = None, step: str = "", status: str = ""):
        super().__init__(message, instance=instance)
        self.step = step
        self.status = status


class OperationNotAllowed(InstanceError, ValueError):
    """The operation (hold, resume, cancel, a status while on hold) is not allowed now."""

    def __init__(self, message: str, *, instance: Any = None, operation: str = ""):
        super().__init__(message, instance=instance)
        self.operation = operation


class PermissionDenied(InstanceError, DjangoPermissionDenied):
    """The actor may not set the status: its ``permission`` or ``actor_condition`` refuses.

    Also raised when the status has a rule and no actor was given, and when its
    ``actor_condition`` cannot be evaluated (fail closed). ``step`` and ``status`` name
    the status, ``rule`` the rule that refused (``"permission app.codename"`` or
    ``"actor_condition <text>"``) and ``reason`` why. Being a
    ``django.core.exceptions.PermissionDenied``, a view that lets it through answers 403.
    """

    def __init__(
        self,
        message: str,
        *,
        instance: Any = None,
        step: str = "",
        status: str = "",
        rule: str = "",
        reason: str = "",
    ):
        super().__init__(message, instance=instance)
        self.step = step
        self.status = status
        self.rule = rule
        self.reason = reason


class NoTransitionAvailable(InstanceError, ValueError):
    """A step was completed but no outgoing transition's condition passed.

    ``evaluations`` lists each condition tried with its result.
    """

    def __init__(
        self, message: str, *, instance: Any = None, step: str = "", evaluations: Sequence[Any] = ()
    ):
        super().__init__(message, instance=instance)
        self.step = step
        self.evaluations = list(evaluations)


class TransitionConditionError(InstanceError, ValueError):
    """A transition's condition could not be evaluated, so the update was refused."""

    def __init__(
        self,
        message: str,
        *,
        instance: Any = None,
        step: str = "",
        evaluations: Sequence[Any] = (),
        error: ConditionError | None = None,
    ):
        super().__init__(message, instance=instance)
        self.step = step
        self.evaluations = list(evaluations)
        self.error = error


class InstanceNotFound(InstanceError, LookupError):
    """The workflow instance no longer exists in the database."""


# --- diagrams --------------------------------------------------------------------


class DiagramError(StepsError, RuntimeError):
    """A diagram cannot be drawn: unknown format, or ``program`` (Graphviz) missing or failing."""

    def __init__(self, message: str, *, program: str = ""):
        super().__init__(message)
        self.program = program
