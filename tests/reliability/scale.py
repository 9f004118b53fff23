"""Sizes of the reliability runs: short in the default pass, long under ``make reliability``.

``DJANGO_STEPS_RELIABILITY=long`` selects the long form (more workers, operations,
objects and hypothesis examples); anything else, or nothing, the short form.
``DJANGO_STEPS_HYPOTHESIS_EXAMPLES`` sets the examples per property (30 short, 300
long) for a deeper hunt.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from hypothesis import HealthCheck, settings

LONG = os.environ.get("DJANGO_STEPS_RELIABILITY", "short") == "long"


@dataclass(frozen=True)
class Workload:
    """How many worker processes, operations per worker and objects one run uses."""

    workers: int
    operations: int
    objects: int


SHARED_SHORT = Workload(workers=4, operations=25, objects=1)
SHARED_LONG = Workload(workers=8, operations=50, objects=1)
SPREAD_SHORT = Workload(workers=4, operations=25, objects=6)
SPREAD_LONG = Workload(workers=8, operations=50, objects=40)
START_RACE_WORKERS = 8 if LONG else 4

EXAMPLES = int(os.environ.get("DJANGO_STEPS_HYPOTHESIS_EXAMPLES") or (300 if LONG else 30))

settings.register_profile(
    "django-steps-reliability",
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
#: The hypothesis settings of the reliability property and fuzz tests.
HYPOTHESIS = settings.get_profile("django-steps-reliability")
