"""``make bench``, timers: the sweep's throughput and the cost of its query when nothing is due.

Usage (PostgreSQL only: the sweep's concurrency is ``SKIP LOCKED``)::

    scripts/with-postgres python -m bench.timers

Prints two Markdown tables: the instances per second that ``run_due_timers`` moves
when 10,000 instances are due, with 1 and 4 sweeper processes sharing the work; and
the median time of the sweep's query (the claim of the next due instance) when
nothing is due among 1,000,000 instances, with the plan PostgreSQL chose for it.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
from typing import Any

from bench.run import FINAL_STATUSES, configure, machine_description

DUE = 10_000
POPULATION = 1_000_000
WORKFLOW = {
    "name": "timed",
    "steps": [
        {
            "name": "Waiting",
            "order": 1,
            "initial": True,
            "due_after": 3600,
            "timeout_status": "Late",
            "statuses": [
                {"name": "New", "default": True},
                {"name": "Late"},
                {"name": "Done", "completion": True},
            ],
        },
        {"name": "Closed", "order": 2, "final": True, "statuses": FINAL_STATUSES},
    ],
    "transitions": [{"from": "Waiting", "to": "Closed"}],
}


def setup_workflow() -> Any:
    from django_steps.machines.definition import WorkflowDefinition
    from django_steps.models import Workflow
    from django_steps.transfer import import_definitions

    import_definitions([WorkflowDefinition.from_dict(WORKFLOW)])
    return Workflow.objects.get(name="timed")


def insert_instances(workflow: Any, count: int, *, due: str) -> None:
    """``count`` running instances at the initial step, in one server-side statement.

    ``due`` is ``"past"`` (all due a minute ago) or ``"mixed"`` (a quarter finished, a
    tenth due in an hour, the rest without a due time: nothing due).
    """
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection

    from django_steps.models import WorkflowInstance

    step = workflow.steps.get(is_initial_step=True)
    status = step.possible_statuses.get(is_default_status=True)
    content_type = ContentType.objects.get_for_model(WorkflowInstance)
    if due == "past":
        lifecycle, due_at = "'running'", "now() - interval '1 minute'"
    else:
        lifecycle = "CASE WHEN mod(g, 4) = 0 THEN 'completed' ELSE 'running' END"
        due_at = "CASE WHEN mod(g, 10) = 1 THEN now() + interval '1 hour' END"
    table = WorkflowInstance._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (id, workflow_id, current_step_id, current_step_status_id, "
            "started_at, content_type_id, object_id, lifecycle, due_at, updated_at) "
            f"SELECT gen_random_uuid(), %s, %s, %s, now(), %s, g::text, {lifecycle}, {due_at}, "
            "now() FROM generate_series(1, %s) AS g",
            [workflow.pk, step.pk, status.pk, content_type.pk, count],
        )
        cursor.execute(f"ANALYZE {table}")


def clear() -> None:
    """Empty the instance and history tables (``TRUNCATE``: a million rows in no time)."""
    from django.db import connection

    from django_steps.models import WorkflowHistory, WorkflowInstance

    tables = ", ".join(model._meta.db_table for model in (WorkflowHistory, WorkflowInstance))
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {tables}")


def _sweeper(barrier: Any, results: Any) -> None:
    from django.db import connections

    connections.close_all()
    from django_steps.timers import run_due_timers

    barrier.wait()
    results.put(run_due_timers())
    connections.close_all()


def sweep_rate(workflow: Any, processes: int) -> tuple[float, int]:
    """Instances per second moved by ``processes`` sweepers from ``DUE`` due instances."""
    from django.db import connections

    from django_steps.models import WorkflowHistory

    clear()
    insert_instances(workflow, DUE, due="past")
    connections.close_all()
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(processes + 1)
    queue = context.Queue()
    workers = [context.Process(target=_sweeper, args=(barrier, queue)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    barrier.wait()
    began = time.perf_counter()
    moved = sum(queue.get(timeout=600) for _ in workers)
    seconds = time.perf_counter() - began
    for worker in workers:
        worker.join()
        if worker.exitcode:
            raise RuntimeError(f"a sweeper failed (exit code {worker.exitcode})")
    rows = WorkflowHistory.objects.filter(timed_out=True).count()
    if moved != DUE or rows != DUE:
        raise RuntimeError(f"{processes} sweepers moved {moved} ({rows} history rows), not {DUE}")
    return moved / seconds, moved


def idle_query(workflow: Any, rounds: int) -> tuple[float, float, str]:
    """With nothing due: the median time of the sweep's claim as the sweep runs it (the
    SQL compiled once, executed and fetched), PostgreSQL's own execution time of it
    (``EXPLAIN ANALYZE``, median), and the plan."""
    from django.db import connection, transaction
    from django.utils import timezone

    from django_steps.timers import _Claim, _claim_query

    clear()
    insert_instances(workflow, POPULATION, due="mixed")
    now = timezone.now()
    claim = _Claim("default", now)
    timings, server = [], []
    with transaction.atomic():
        query = _claim_query("default", now, set())
        plan = query.explain()
        sql, params = query[:1].query.get_compiler("default").as_sql()
        claim.next(set())  # compiles it
        with connection.cursor() as cursor:
            for _ in range(rounds):
                began = time.perf_counter()
                found = claim.next(set())
                timings.append(time.perf_counter() - began)
                if found is not None:
                    raise RuntimeError("an instance is due: the population is wrong")
                cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
                (analysis,) = cursor.fetchone()
                server.append(analysis[0]["Execution Time"] / 1e3)
    clear()
    return statistics.median(timings), statistics.median(server), plan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="timed runs of the idle query")
    parser.add_argument(
        "--part", choices=["all", "sweep", "idle"], default="all", help="what to measure"
    )
    args = parser.parse_args(argv)
    configure("postgres")
    workflow = setup_workflow()
    began = time.perf_counter()
    print(f"\n## timers, postgres: {machine_description('postgres')}\n")
    if args.part in ("all", "sweep"):
        print(f"The sweep moving {DUE:,} due instances (each in its own transaction):\n")
        print("| sweepers | instances/s | scaling vs 1 |")
        print("|---:|---:|---:|", flush=True)
        single = None
        for processes in (1, 4):
            rate, _ = sweep_rate(workflow, processes)
            single = single or rate
            print(f"| {processes} | {rate:,.0f} | {rate / single:.2f}x |", flush=True)
    if args.part in ("all", "idle"):
        idle, server, plan = idle_query(workflow, args.rounds)
        print(f"\nThe sweep's query with nothing due among {POPULATION:,} instances, median of")
        print(f"{args.rounds}: {idle * 1e3:.3f} ms as the sweep runs it (round trip included),")
        print(f"{server * 1e3:.3f} ms executing in PostgreSQL (EXPLAIN ANALYZE). Plan:\n")
        print("```text\n" + plan + "\n```")
    print(f"\n(benchmark took {time.perf_counter() - began:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
