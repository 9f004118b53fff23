"""The timer sweep run by real processes on PostgreSQL: sweepers, the command, workers.

Each test starts its processes against the test database (committed data, so
``transaction=True``) and stops them itself; the Celery test also starts and stops
its own Redis server on a unix socket in a temporary directory.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.utils import timezone

from django_steps.models import WorkflowHistory, WorkflowInstance, WorkflowStep
from django_steps.services import start_workflow_instance
from django_steps.timers import _claim_query
from tests.reliability.harness import ROOT, worker_environment
from tests.testapp.models import Claim
from tests.timer_definitions import create_orders

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# Generous: the machine running the suite may be busy; the waits end as soon as done.
WAIT = 300.0


def due_instances(count: int) -> list[WorkflowInstance]:
    """``count`` instances of Orders, due a minute ago."""
    create_orders()
    instances = []
    for number in range(count):
        claim = Claim.objects.create(title=f"Order {number}", amount=100)
        instance = start_workflow_instance("Orders", claim)
        assert instance is not None
        instances.append(instance)
    WorkflowInstance.objects.update(due_at=timezone.now() - timedelta(minutes=1))
    return instances


def assert_moved_exactly_once(instances: list[WorkflowInstance]) -> None:
    rows = Counter(
        WorkflowHistory.objects.filter(timed_out=True).values_list("instance_id", flat=True)
    )
    assert {instance.pk for instance in instances} == set(rows), "some instances did not move"
    twice = {pk: count for pk, count in rows.items() if count != 1}
    assert not twice, f"instances moved more than once: {twice}"
    assert not WorkflowInstance.objects.overdue().exists()


def logs_of(directory: Path) -> str:
    """The tail of every log in ``directory``, for a failure's message."""
    return "\n".join(
        f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
        for path in sorted(directory.glob("*.log"))
    )


def wait_until(predicate, processes: list[subprocess.Popen], what: str, directory: Path) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        for process in processes:
            if process.poll() is not None:
                raise AssertionError(
                    f"a process exited early ({process.args}) waiting for {what}\n"
                    + logs_of(directory)
                )
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n" + logs_of(directory))
        time.sleep(0.1)


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM) -> int:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
    return process.returncode


def spawn(arguments: list[str], log: Path, environment: dict[str, str]) -> subprocess.Popen:
    with open(log, "wb") as output:
        return subprocess.Popen(
            arguments,
            cwd=ROOT,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


# --- concurrent sweepers ----------------------------------------------------------------


def test_four_concurrent_sweepers_move_each_due_instance_exactly_once(tmp_path):
    instances = due_instances(200)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    environment = worker_environment()
    now = timezone.now().isoformat()
    sweepers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.timer_sweeper", str(barrier), str(number), now],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        for number in range(4)
    ]
    try:
        deadline = time.monotonic() + WAIT
        while len(list(barrier.glob("ready-*"))) < 4:
            assert all(s.poll() is None for s in sweepers), "a sweeper died before the barrier"
            assert time.monotonic() < deadline, "the sweepers did not get ready"
            time.sleep(0.02)
        (barrier / "go").touch()
        outputs = [s.communicate(timeout=WAIT) for s in sweepers]
    finally:
        for sweeper in sweepers:
            stop(sweeper, signal.SIGKILL)
    for sweeper, (_out, err) in zip(sweepers, outputs, strict=True):
        assert sweeper.returncode == 0, err.decode()
    results = [json.loads(out) for out, _ in outputs]
    assert sum(r["moved"] for r in results) == 200, results
    assert all(r["failed"] == 0 for r in results), results
    assert_moved_exactly_once(instances)
    assert WorkflowHistory.objects.filter(timed_out=True).count() == 200


def test_the_sweep_query_is_an_index_scan_of_the_due_index():
    workflow = create_orders()
    step = WorkflowStep.objects.get(workflow=workflow, is_initial_step=True)
    status = step.possible_statuses.get(is_default_status=True)
    content_type = ContentType.objects.get_for_model(Claim)
    now = timezone.now()
    rows = [
        WorkflowInstance(
            workflow=workflow,
            content_type=content_type,
            object_id=str(number),
            current_step=step,
            current_step_status=status,
            started_at=now,
            lifecycle="running" if number % 4 else "completed",
            # A tenth have a due time, all of them in the future: nothing is due.
            due_at=now + timedelta(hours=1) if number % 10 == 1 else None,
        )
        for number in range(50_000)
    ]
    WorkflowInstance.objects.bulk_create(rows, batch_size=5000)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {WorkflowInstance._meta.db_table}")
    with transaction.atomic():
        plan = _claim_query("default", now, set()).explain()
    assert "django_steps_instance_due" in plan, plan
    assert "Seq Scan" not in plan, plan


# --- the management command in a loop ---------------------------------------------------


def test_the_command_loops_until_stopped(tmp_path):
    instances = due_instances(3)
    command = spawn(
        [sys.executable, "-m", "django", "steps_run_timers", "--loop", "0.2"],
        tmp_path / "command.log",
        worker_environment(),
    )
    try:
        wait_until(
            lambda: not WorkflowInstance.objects.overdue().exists(),
            [command],
            "the loop to move",
            tmp_path,
        )
    finally:
        returncode = stop(command)
    output = (tmp_path / "command.log").read_text()
    assert returncode == 0, output
    assert "3 due instance(s) moved." in output
    assert output.rstrip().endswith("Stopped.")
    assert_moved_exactly_once(instances)


# --- Django's task framework ------------------------------------------------------------


def test_the_task_moves_due_instances_in_a_database_worker(tmp_path):
    pytest.importorskip("django_tasks_db", reason="pip install django-tasks-db")
    from django_steps.tasks import run_due_timers

    instances = due_instances(5)
    result = run_due_timers.enqueue()
    worker = spawn(
        [sys.executable, "-m", "django", "db_worker", "--interval", "0.1", "--no-startup-delay"],
        tmp_path / "worker.log",
        worker_environment(),
    )
    try:

        def finished() -> bool:
            result.refresh()
            return result.is_finished

        wait_until(finished, [worker], "the worker to run the task", tmp_path)
    finally:
        stop(worker)
    output = (tmp_path / "worker.log").read_text()
    assert result.status.name == "SUCCESSFUL", output
    assert result.return_value == 5
    assert_moved_exactly_once(instances)


# --- Celery -----------------------------------------------------------------------------


@pytest.fixture
def redis_url(tmp_path):
    """A throwaway Redis server on a unix socket in ``tmp_path``, stopped afterwards."""
    server = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.access("/usr/bin/redis-server", os.X_OK) else None
    )
    if server is None:
        message = "redis-server is not installed (Debian package: redis-server)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    pytest.importorskip("celery", reason="pip install 'celery[redis]'")
    socket = tmp_path / "redis.sock"
    process = subprocess.Popen(
        [
            server,
            "--port",
            "0",
            "--unixsocket",
            str(socket),
            "--unixsocketperm",
            "700",
            "--dir",
            str(tmp_path),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=open(tmp_path / "redis.log", "wb"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not socket.exists():
            assert process.poll() is None, (tmp_path / "redis.log").read_text()
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
        yield f"redis+socket://{socket}"
    finally:
        stop(process)


def test_two_celery_workers_and_beat_move_each_due_instance_exactly_once(tmp_path, redis_url):
    instances = due_instances(200)
    environment = {**worker_environment(), "DJANGO_STEPS_TEST_REDIS_URL": redis_url}
    celery = [sys.executable, "-m", "celery", "-A", "tests.celery_app"]
    workers = [
        spawn(
            [*celery, "worker", "--pool", "solo", "-n", f"w{number}@%h", "--loglevel", "INFO"],
            tmp_path / f"worker-{number}.log",
            environment,
        )
        for number in (1, 2)
    ]
    processes = list(workers)
    try:
        wait_until(
            lambda: all(
                " ready." in (tmp_path / f"worker-{n}.log").read_text(errors="replace")
                for n in (1, 2)
            ),
            processes,
            "the workers to be ready",
            tmp_path,
        )
        beat = spawn(
            [*celery, "beat", "-s", str(tmp_path / "schedule"), "--loglevel", "INFO"],
            tmp_path / "beat.log",
            environment,
        )
        processes.append(beat)

        def both_ran_and_none_due() -> bool:
            logs = [(tmp_path / f"worker-{n}.log").read_text(errors="replace") for n in (1, 2)]
            ran = all("django_steps.run_due_timers" in log and "succeeded" in log for log in logs)
            return ran and not WorkflowInstance.objects.overdue().exists()

        wait_until(
            both_ran_and_none_due, processes, "both workers to run the beat's task", tmp_path
        )
    finally:
        codes = [stop(process) for process in reversed(processes)]
    logs = "\n".join(path.read_text(errors="replace") for path in sorted(tmp_path.glob("*.log")))
    assert codes == [0] * len(codes), logs_of(tmp_path)
    assert "Sending due task django_steps.run_due_timers" in logs
    assert_moved_exactly_once(instances)
