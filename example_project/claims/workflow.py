"""The claims workflow's definition file, and loading it through the import format."""

from __future__ import annotations

from pathlib import Path

from django_steps.models import Workflow
from django_steps.transfer import import_file

from .models import WORKFLOW_NAME

WORKFLOW_FILE = Path(__file__).resolve().parent / "workflows" / "claims.yaml"


def load_claims_workflow() -> Workflow:
    """The claims workflow, imported from :data:`WORKFLOW_FILE` if it is not in the database.

    An existing workflow is left alone, so edits made in the admin survive.
    """
    workflow = Workflow.objects.filter(name=WORKFLOW_NAME).first()
    if workflow is None:
        import_file(WORKFLOW_FILE)
        workflow = Workflow.objects.get(name=WORKFLOW_NAME)
    return workflow
