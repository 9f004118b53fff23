"""The CEL specification's conformance cases (google/cel-spec), run through django-steps.

``testdata/`` holds the upstream ``tests/simple/testdata`` files used here, unchanged,
with the cel-spec licence (Apache-2.0). :mod:`.cases` reads them, :mod:`.runner` runs
each case through :func:`django_steps.cel.compile_condition` on a backend, and
:mod:`.report` prints the conformance table of docs/cel.md.
"""
