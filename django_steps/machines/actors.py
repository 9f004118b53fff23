"""The system actor: who is recorded when background code, not a person, changes an instance.

A leaf module: it imports nothing, so every layer (the runner, the engine, the
services and the sweep of :mod:`django_steps.timers`) can name the same object.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SYSTEM", "SystemActor"]


class SystemActor:
    """The type of :data:`SYSTEM`; there is only one instance.

    It is not a user: it has no primary key (``pk`` is ``None``), so the history row
    of a change made by it has no ``actor`` and is marked ``by_system``. Copying or
    pickling it (a task queue's arguments) gives back the same object, so
    ``actor is SYSTEM`` always works.
    """

    _instance: SystemActor | None = None
    pk = None

    def __new__(cls) -> SystemActor:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "SYSTEM"

    def __str__(self) -> str:
        return "system"

    def __reduce__(self) -> str:
        return "SYSTEM"

    def __copy__(self) -> SystemActor:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> SystemActor:
        return self


#: The actor of changes made by the system itself (the timer sweep, background jobs):
#: ``update_workflow_step_status(instance, "Escalated", actor=SYSTEM)``.
SYSTEM = SystemActor()
