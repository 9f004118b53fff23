"""Start worker processes against the test database, release them together, collect logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 120.0
RUN_TIMEOUT = 600.0


def worker_environment() -> dict[str, str]:
    """The environment that points a worker's Django at this test run's database.

    pytest-django created (and this process uses) a ``test_...`` database; workers
    read its name and connection parameters from the libpq variables that
    ``tests.settings`` reads.
    """
    database = connection.settings_dict
    environment = dict(os.environ)
    environment.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        DJANGO_STEPS_TEST_DB="postgres",
        PGDATABASE=str(database["NAME"]),
        PGHOST=str(database["HOST"] or ""),
        PGPORT=str(database["PORT"] or ""),
        PGUSER=str(database["USER"] or ""),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    if database["PASSWORD"]:
        environment["PGPASSWORD"] = str(database["PASSWORD"])
    return environment


@dataclass
class WorkerRun:
    """What the workers logged, and how long they ran once released."""

    records: list[dict[str, Any]]
    seconds: float


class WorkerProcess:
    """One ``python -m tests.reliability.worker`` process and its files."""

    def __init__(self, spec: dict[str, Any], directory: Path, environment: dict[str, str]):
        self.spec = spec
        self.number = spec["worker"]
        spec_path = directory / f"worker-{self.number}.json"
        spec_path.write_text(json.dumps(spec))
        self.output_path = directory / f"worker-{self.number}.out"
        with open(self.output_path, "wb") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.reliability.worker", str(spec_path)],
                cwd=ROOT,
                env=environment,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def output(self) -> str:
        return self.output_path.read_text(errors="replace")[-4000:]

    def records(self) -> list[dict[str, Any]]:
        path = Path(self.spec["log"])
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


def start_workers(specs: list[dict[str, Any]], directory: Path) -> list[WorkerProcess]:
    """Start one process per spec; each waits at the barrier in ``directory``."""
    barrier = directory / "barrier"
    barrier.mkdir(parents=True, exist_ok=True)
    environment = worker_environment()
    workers = []
    for spec in specs:
        spec = {**spec, "barrier": str(barrier), "log": str(directory / f"log-{spec['worker']}")}
        workers.append(WorkerProcess(spec, directory, environment))
    return workers


def wait_until_ready(workers: list[WorkerProcess]) -> None:
    """Wait until every worker has set Django up and reached the barrier."""
    barrier = Path(workers[0].spec["barrier"])
    deadline = time.monotonic() + READY_TIMEOUT
    for worker in workers:
        while not (barrier / f"ready-{worker.number}").exists():
            if worker.process.poll() is not None:
                raise AssertionError(f"worker {worker.number} died early:\n{worker.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"worker {worker.number} not ready:\n{worker.output()}")
            time.sleep(0.02)


def run_workers(specs: list[dict[str, Any]], directory: Path) -> WorkerRun:
    """Run the workers to completion, all released at once; fail on any crash."""
    workers = start_workers(specs, directory)
    try:
        wait_until_ready(workers)
        released = time.monotonic()
        (Path(workers[0].spec["barrier"]) / "go").touch()
        deadline = released + RUN_TIMEOUT
        for worker in workers:
            worker.process.wait(timeout=max(1.0, deadline - time.monotonic()))
        seconds = time.monotonic() - released
    finally:
        for worker in workers:
            worker.stop()
    for worker in workers:
        assert worker.process.returncode == 0, (
            f"worker {worker.number} exited with {worker.process.returncode}:\n{worker.output()}"
        )
    records = [record for worker in workers for record in worker.records()]
    unexpected = [record for record in records if "unexpected" in record]
    assert not unexpected, "calls raised unexpected errors:\n" + "\n".join(
        f"{r['note']} {r.get('operation')}: {r['unexpected']}" for r in unexpected[:5]
    )
    expected = sum(
        spec["operations"] if "operations" in spec else len(spec["objects"]) for spec in specs
    )
    assert len(records) == expected, f"{len(records)} calls logged, {expected} made"
    return WorkerRun(records=records, seconds=seconds)
