"""Internal: the engine's database side. Nothing here is public API.

- :mod:`.loading` reads a workflow's rows and turns them into a plain definition;
- :mod:`.cache` keeps each process's compiled workflows;
- :mod:`.statements` holds the SQL of the write path, compiled once per connection;
- :mod:`.receivers` bumps a workflow's version when its definition rows change;
- :mod:`.context` gives conditions the values of a stored instance (its object, the
  actor, the instance).

:mod:`django_steps.engine`, :mod:`django_steps.introspection` and the other public
modules are built on these; applications and the documentation use those instead.
Dependencies point one way: this package imports models, machines, CEL and settings,
and nothing public imports it but the modules just named.
"""
