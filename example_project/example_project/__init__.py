"""Example Django project that uses django-steps."""
