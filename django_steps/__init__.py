"""django-steps: database-defined workflows for Django.

Public modules (each declares its API in ``__all__``; the documentation's Reference
section describes them):

- :mod:`django_steps.services`: the documented functions (start, update status, hold,
  resume, cancel, look up), returning ``True``/``False``, with async ``a*`` twins;
- :mod:`django_steps.engine`: the same operations, raising a typed error when refused;
- :mod:`django_steps.models`: workflow definitions, instances and history;
- :mod:`django_steps.exceptions`: :class:`~django_steps.exceptions.StepsError` and its
  subclasses;
- :mod:`django_steps.actors`: the :data:`~django_steps.actors.SYSTEM` actor of code
  acting for the system;
- :mod:`django_steps.signals`: the signals sent after each change;
- :mod:`django_steps.conf`: the ``DJANGO_STEPS`` settings; :mod:`django_steps.checks`:
  their system checks;
- :mod:`django_steps.validation`, :mod:`django_steps.introspection`,
  :mod:`django_steps.diagrams`, :mod:`django_steps.transfer`: validate, describe,
  explain, draw, export and import stored workflows;
- :mod:`django_steps.timers`: the timer sweep that gives due instances their step's
  timeout status; :mod:`django_steps.tasks` (Django's task framework) and
  :mod:`django_steps.contrib` (:mod:`django_steps.contrib.celery`, Celery beat) run it
  as a task;
- :mod:`django_steps.testing`: test workflow definitions with no database;
- :mod:`django_steps.forms` and :mod:`django_steps.admin`: the admin;
- :mod:`django_steps.machines`: the database-free core (definitions, runner,
  condition context, deadlines, the system actor, validation, explain, describe,
  diagrams, serialization);
- :mod:`django_steps.cel`: CEL conditions (the package, :mod:`django_steps.cel.variables`
  and the backend registry :mod:`django_steps.cel.backends`);
- the management commands ``steps_check``, ``steps_diagram``, ``steps_export``,
  ``steps_import`` and ``steps_run_timers``.

Internal (no compatibility promise; each says so in its docstring): the
:mod:`django_steps._engine` package (compiled-workflow cache, loading rows, the write
path's statements, receivers, the condition context of stored instances), the
:mod:`django_steps.contrib` package itself (its modules are public), the CEL modules
other than those above (limits, context conversion, safety, conditions and each
backend's module), :mod:`django_steps.machines.compiler` and
:mod:`django_steps.machines.flat_engine`.
"""

__version__ = "0.1.0.dev0"
