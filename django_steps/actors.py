"""Who acts when nobody does: the :data:`SYSTEM` actor of background code (a leaf module).

Pass ``actor=SYSTEM`` to a service when code acts for the system (a scheduled job, a
timer sweep, a data migration): every status rule (``permission``,
``actor_condition``) lets it through, and its history rows are recorded with
``by_system=True`` and no user. It imports nothing, so every layer can use it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SYSTEM", "SystemActor", "is_system"]


class SystemActor:
    """The type of :data:`SYSTEM`: an actor that holds every permission and is no user.

    It looks enough like a user for code that reads one (``pk`` and ``id`` are ``None``,
    ``is_authenticated`` is true, ``has_perm`` always answers ``True``); there is one
    instance, and it is equal only to itself.
    """

    __slots__ = ()
    pk = None
    id = None
    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    username = "SYSTEM"

    def __repr__(self) -> str:
        return "SYSTEM"

    def __str__(self) -> str:
        return "SYSTEM"

    def __reduce__(self) -> str:
        return "SYSTEM"  # unpickles to the module's one instance

    def get_username(self) -> str:
        return self.username

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        """Always ``True``: the system may do anything a rule guards."""
        return True


#: The actor of code acting for the system: passes every status rule.
SYSTEM = SystemActor()


def is_system(actor: Any) -> bool:
    """Whether ``actor`` is :data:`SYSTEM`."""
    return actor is SYSTEM
