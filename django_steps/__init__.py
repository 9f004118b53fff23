"""django-steps: database-defined workflows for Django."""

__version__ = "0.1.0.dev0"
