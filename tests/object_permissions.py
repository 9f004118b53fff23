"""A tiny object-permission authentication backend for the tests, in the manner of
django-guardian or django-rules: ``has_perm(user, perm, obj)`` is granted per object.

Grant with :func:`grant`; :func:`clear` forgets every grant. Model-wide checks
(``obj=None``) are left to ``ModelBackend``.
"""

from __future__ import annotations

from typing import Any

_GRANTS: set[tuple[Any, str, str, str]] = set()


def grant(user: Any, permission: str, obj: Any) -> None:
    """Let ``user`` hold ``permission`` on ``obj`` only."""
    _GRANTS.add((user.pk, permission, obj._meta.label, str(obj.pk)))


def clear() -> None:
    _GRANTS.clear()


class ObjectPermissionBackend:
    """Answers object-level permission checks from the grants; authenticates nobody."""

    def authenticate(self, request: Any, **credentials: Any) -> None:
        return None

    def has_perm(self, user: Any, perm: str, obj: Any = None) -> bool:
        if obj is None or not getattr(user, "is_active", False):
            return False
        return (user.pk, perm, obj._meta.label, str(obj.pk)) in _GRANTS
