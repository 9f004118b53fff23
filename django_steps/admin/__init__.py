"""Django admin for django-steps: define workflows, operate instances, see diagrams.

Importing this package (Django's admin autodiscovery does) registers the model
admins of :mod:`.definitions` and :mod:`.instances` on the default admin site.
"""

from __future__ import annotations

from .definitions import (
    WorkflowAdmin,
    WorkflowStepAdmin,
    WorkflowStepStatusAdmin,
    WorkflowTransitionAdmin,
)
from .instances import WorkflowInstanceAdmin

__all__ = [
    "WorkflowAdmin",
    "WorkflowInstanceAdmin",
    "WorkflowStepAdmin",
    "WorkflowStepStatusAdmin",
    "WorkflowTransitionAdmin",
]
