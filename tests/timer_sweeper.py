"""A sweeper process of the concurrent timer test: waits at a barrier, sweeps, reports.

Run as ``python -m tests.timer_sweeper BARRIER_DIR NUMBER NOW_ISO`` with the test
database given by the environment (see ``tests.reliability.harness``); prints the
sweep's result as JSON.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from pathlib import Path

import django


def main() -> None:
    barrier, number, now = Path(sys.argv[1]), sys.argv[2], datetime.fromisoformat(sys.argv[3])
    django.setup()
    from django_steps.timers import sweep_due_timers

    (barrier / f"ready-{number}").touch()
    deadline = time.monotonic() + 120
    while not (barrier / "go").exists():
        if time.monotonic() > deadline:
            raise SystemExit("sweeper: no go signal within 120 s")
        time.sleep(0.005)
    result = sweep_due_timers(now=now)
    print(json.dumps({"moved": result.moved, "failed": result.failed}))


if __name__ == "__main__":
    main()
