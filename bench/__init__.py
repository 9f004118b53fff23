"""Benchmarks of django-steps against django-fsm-2 (``make bench``; not part of the tests)."""
