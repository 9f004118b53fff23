"""``make bench``: time django-steps' services against django-fsm-2 on one database.

Usage::

    python -m bench.run --db sqlite
    scripts/with-postgres python -m bench.run --db postgres --throughput

Prints a Markdown table: the median time and the SQL statements of each operation,
the same for django-fsm-2's equivalent locked transition (``select_for_update``,
transition, ``save`` inside ``transaction.atomic()``) and the ratio of the two. The
tables hold 100,000 workflow instances (and orders) while everything is measured.
With ``--throughput`` (PostgreSQL), 1, 2 and 4 processes, each with its own
connection, update distinct instances and the transitions per second are reported.
"""

from __future__ import annotations

import argparse
import functools
import gc
import multiprocessing
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

STATUSES = [
    {"name": "New", "default": True},
    {"name": "Working"},
    {"name": "Done", "completion": True},
    {"name": "Held", "on_hold": True},
    {"name": "Cancelled", "cancellation": True},
]
FINAL_STATUSES = [{"name": "Closed", "default": True, "completion": True}]
CONTEXT = {"order": {"amount": 250.0, "priority": "normal", "tags": ["web", "eu"]}}
POPULATION = 100_000


@dataclass
class Row:
    """One line of the results table."""

    operation: str
    seconds: float
    statements: int | None
    peer_seconds: float | None = None
    peer_statements: int | None = None

    @property
    def ratio(self) -> float | None:
        return self.seconds / self.peer_seconds if self.peer_seconds else None


# --- setup -----------------------------------------------------------------------------


def configure(database: str) -> None:
    os.environ["DJANGO_STEPS_BENCH_DB"] = database
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", run_syncdb=True, verbosity=0)


def guarded_workflow(name: str, conditions: int) -> dict[str, Any]:
    """Draft -> Review, where completing Draft tries ``conditions`` conditions.

    The first ``conditions - 1`` are false (they lead to Escalated); the last is true.
    Completing Review returns to Draft without a condition (before the final step Closed),
    so an instance can cycle.
    """
    false = [
        {
            "from": "Draft",
            "to": "Escalated",
            "condition": f"order.amount > {1_000_000 + index}.0 && 'vip' in order.tags",
            "priority": 100 - index,
        }
        for index in range(conditions - 1)
    ]
    true = {
        "from": "Draft",
        "to": "Review",
        "condition": "order.amount > 100.0 && order.priority == 'normal'",
        "priority": 0,
    }
    return {
        "name": name,
        "steps": [
            {"name": "Draft", "order": 1, "initial": True, "statuses": STATUSES},
            {"name": "Review", "order": 2, "statuses": STATUSES},
            {"name": "Escalated", "order": 3, "statuses": STATUSES},
            {"name": "Closed", "order": 4, "final": True, "statuses": FINAL_STATUSES},
        ],
        "transitions": [
            *false,
            true,
            {"from": "Review", "to": "Draft", "priority": 1},
            {"from": "Review", "to": "Closed", "priority": 0},
            {"from": "Escalated", "to": "Closed"},
        ],
    }


def chain_workflow(name: str, steps: int) -> dict[str, Any]:
    """``steps`` steps in a line, each transition guarded, the last step final."""
    return {
        "name": name,
        "steps": [
            {
                "name": f"Step {index}",
                "order": index,
                "initial": index == 1,
                "final": index == steps,
                "statuses": STATUSES if index < steps else FINAL_STATUSES,
            }
            for index in range(1, steps + 1)
        ],
        "transitions": [
            {
                "from": f"Step {index}",
                "to": f"Step {index + 1}",
                "condition": f"order.amount > {index}.0 && order.priority != 'step {index}'",
            }
            for index in range(1, steps)
        ],
    }


def populate(workflow: Any, count: int) -> None:
    """``count`` orders, each with a running instance of ``workflow`` (bulk inserts)."""
    from django.contrib.contenttypes.models import ContentType
    from django.utils import timezone

    from bench.fsmapp.models import Order
    from django_steps.models import WorkflowInstance

    orders = Order.objects.bulk_create([Order(amount=index % 1000) for index in range(count)])
    if orders[0].pk is None:  # backends that cannot return keys from bulk inserts
        orders = list(Order.objects.order_by("-pk")[:count])
    step = workflow.steps.get(is_initial_step=True)
    status = step.possible_statuses.get(is_default_status=True)
    content_type = ContentType.objects.get_for_model(Order)
    now = timezone.now()
    WorkflowInstance.objects.bulk_create(
        [
            WorkflowInstance(
                workflow=workflow,
                content_type=content_type,
                object_id=str(order.pk),
                current_step=step,
                current_step_status=status,
                started_at=now,
            )
            for order in orders
        ],
        batch_size=5000,
    )


def new_orders(count: int) -> list[Any]:
    from bench.fsmapp.models import Order

    return list(Order.objects.bulk_create([Order(amount=250) for _ in range(count)]))


# --- measuring ---------------------------------------------------------------------------


def statements(action: Callable[[], Any]) -> int:
    """SQL statements ``action`` sends, as Django logs them (BEGIN on SQLite included)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        action()
    return len(captured.captured_queries)


@dataclass
class Measured:
    """Median time and statements of an operation, and of its peer's when given."""

    seconds: float
    statements: int
    peer_seconds: float | None = None
    peer_statements: int | None = None

    def row(self, operation: str) -> Row:
        return Row(
            operation, self.seconds, self.statements, self.peer_seconds, self.peer_statements
        )


def measure(
    action: Callable[[], Any],
    rounds: int,
    reset: Callable[[], Any] | None = None,
    peer: Callable[[], Any] | None = None,
) -> Measured:
    """Time ``rounds`` runs of ``action`` (``reset`` runs untimed after each one).

    One warm-up run, then one whose statements are counted. With ``peer``, the peer's
    operation is timed in alternation with ours, round by round, so a busy machine
    slows both sides alike and the ratio stays meaningful.
    """
    action()
    if reset is not None:
        reset()
    count = statements(action)
    if reset is not None:
        reset()
    peer_count = None
    if peer is not None:
        peer()
        peer_count = statements(peer)
    ours: list[int] = []
    theirs: list[int] = []
    gc.collect()
    for _ in range(rounds):
        started = time.perf_counter_ns()
        action()
        ours.append(time.perf_counter_ns() - started)
        if reset is not None:
            reset()
        if peer is not None:
            started = time.perf_counter_ns()
            peer()
            theirs.append(time.perf_counter_ns() - started)
    return Measured(
        statistics.median(ours) / 1e9,
        count,
        statistics.median(theirs) / 1e9 if theirs else None,
        peer_count,
    )


@contextmanager
def cel_backend(name: str) -> Iterator[None]:
    from django.test import override_settings

    with override_settings(DJANGO_STEPS={"CEL_BACKEND": name}):
        yield


def fsm_transition(pk: Any, method: str) -> None:
    """django-fsm-2's locked state change: lock, transition, save, in one transaction."""
    from django.db import transaction

    from bench.fsmapp.models import Order

    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=pk)
        getattr(order, method)()
        order.save()


class FsmToggle:
    """django-fsm-2's locked transition on one order, approving and reopening in turn."""

    def __init__(self, pk: Any):
        self.pk = pk
        self.method = "approve"

    def __call__(self) -> None:
        fsm_transition(self.pk, self.method)
        self.method = "reopen" if self.method == "approve" else "approve"


class OrmFloor:
    """What a guarded change costs in the ORM alone: its statements, no workflow logic.

    Locks the instance joined with its workflow, saves its state fields and inserts two
    history rows, as the engine does, so the difference to the service is the engine's
    own work (machine, conditions, outcome) and the ratio to django-fsm-2 of this row
    is the floor for any design that keeps these statements.
    """

    def __init__(self, instance: Any):
        self.pk = instance.pk
        self.step = instance.current_step
        self.status = instance.current_step_status

    def __call__(self) -> None:
        from django.db import transaction
        from django.utils import timezone

        from django_steps._engine.statements import STATE_FIELDS
        from django_steps.models import WorkflowHistory, WorkflowInstance

        with transaction.atomic():
            locked = (
                WorkflowInstance.objects.select_for_update(of=("self",))
                .select_related("workflow")
                .get(pk=self.pk)
            )
            locked.current_step = self.step
            locked.current_step_status = self.status
            locked.save(update_fields=STATE_FIELDS)
            now = timezone.now()
            WorkflowHistory.objects.bulk_create(
                [
                    WorkflowHistory(
                        instance=locked,
                        event=event,
                        timestamp=now,
                        from_step=self.step,
                        from_step_name=self.step.name,
                        from_status=self.status,
                        from_status_name=self.status.name,
                        to_step=self.step,
                        to_step_name=self.step.name,
                        to_status=self.status,
                        to_status_name=self.status.name,
                        context_data=CONTEXT,
                        conditions=[],
                    )
                    for event in ("status_changed", "step_changed")
                ]
            )


class StatementsFloor:
    """Our write path's own statements (:mod:`django_steps._engine.statements`), no workflow logic.

    The same lock, update and history insert the engine runs, with the same parameters,
    but no machine, conditions or outcome: the floor of the engine's design.
    """

    def __init__(self, instance: Any):
        from django_steps._engine.cache import cached_workflow
        from django_steps.machines.lifecycle import ChangeKind
        from django_steps.machines.runner import Change, Outcome

        self.pk = instance.pk
        self.compiled = cached_workflow(instance.workflow)
        step, status = instance.current_step.name, instance.current_step_status.name
        self.outcome = Outcome(
            [
                Change(ChangeKind.STATUS_CHANGED, step, status, step, status),
                Change(ChangeKind.STEP_CHANGED, step, status, step, status),
            ]
        )

    def __call__(self) -> None:
        from django.db import transaction
        from django.utils import timezone

        from django_steps._engine.statements import statements_for
        from django_steps.engine import _Recording

        with transaction.atomic():
            connection, statements = statements_for("default")
            with connection.cursor() as cursor:
                found = statements.lock.fetch(cursor, self.pk)
                assert found is not None
                locked = found[0]
                now = locked.updated_at = timezone.now()
                recording = _Recording(self.compiled, self.outcome, CONTEXT, None, "")
                statements.write(cursor, locked, recording.history_rows(locked, now))


class Cycler:
    """Runs an action on each of several objects in turn (so no row is hit twice running)."""

    def __init__(self, items: list[Any]):
        self.items = items
        self.position = 0

    def next(self) -> Any:
        item = self.items[self.position % len(self.items)]
        self.position += 1
        return item


# --- the operations ----------------------------------------------------------------------


def run_latency(rounds: int, backends: list[str]) -> list[Row]:
    from django.db import connection

    from bench.fsmapp.models import Order
    from django_steps import services
    from django_steps._engine.cache import cached_workflow, workflow_cache
    from django_steps.cel import compile_condition
    from django_steps.models import Workflow
    from tests.factories import create_workflow

    rows: list[Row] = []
    guarded = {n: create_workflow(guarded_workflow(f"guarded-{n}", n)) for n in (2, 10)}
    started = time.perf_counter()
    populate(guarded[2], POPULATION)
    if connection.vendor == "postgresql":
        # What autovacuum does shortly after a bulk load; SQLite is left as most apps
        # leave it, without ANALYZE statistics.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    print(
        f"# populated {POPULATION:,} orders and instances in {time.perf_counter() - started:.1f} s",
        file=sys.stderr,
    )

    fsm = FsmToggle(new_orders(1)[0].pk)

    # start_workflow_instance, then cancel those instances.
    fresh = iter(new_orders(rounds + 2))
    created: list[Any] = []

    def start() -> None:
        instance = services.start_workflow_instance("guarded-2", next(fresh))
        assert instance is not None
        created.append(instance)

    rows.append(measure(start, rounds).row("start_workflow_instance"))
    to_cancel = iter(created)

    def cancel() -> None:
        assert services.cancel_workflow_instance(next(to_cancel))

    rows.append(measure(cancel, rounds, peer=fsm).row("cancel_workflow_instance"))

    instances = [services.start_workflow_instance("guarded-2", o) for o in new_orders(20)]
    cycle = Cycler(instances)

    def plain() -> None:
        instance = cycle.next()
        new = "Working" if instance.current_step_status.name == "New" else "New"
        assert services.update_workflow_step_status(instance, new)

    rows.append(measure(plain, rounds, peer=fsm).row("update status (plain)"))

    held = instances[0]

    def hold() -> None:
        assert services.set_workflow_on_hold(held)

    def resume() -> None:
        assert services.resume_workflow_instance(held)

    rows.append(measure(hold, rounds, reset=resume, peer=fsm).row("set_workflow_on_hold"))
    hold()
    rows.append(measure(resume, rounds, reset=hold, peer=fsm).row("resume_workflow_instance"))
    resume()

    floor = OrmFloor(instances[1])
    label = "reference: the same statements through the ORM, no workflow logic"
    rows.append(measure(floor, rounds, peer=fsm).row(label))
    label = "reference: our prepared statements alone, no workflow logic"
    rows.append(measure(StatementsFloor(instances[1]), rounds, peer=fsm).row(label))

    for backend in backends:
        with cel_backend(backend):
            for tried, workflow in guarded.items():
                targets = [
                    services.start_workflow_instance(workflow.name, o) for o in new_orders(20)
                ]
                forward, back = Cycler(targets), Cycler(targets)

                def complete(cycler: Cycler = forward) -> None:
                    assert services.update_workflow_step_status(cycler.next(), "Done", CONTEXT)

                def reset(cycler: Cycler = back) -> None:
                    assert services.update_workflow_step_status(cycler.next(), "Done")

                label = f"completion, CEL-guarded, {tried} conditions tried [{backend}]"
                rows.append(measure(complete, rounds, reset=reset, peer=fsm).row(label))

    lookups = Cycler(random.Random(8).sample(list(Order.objects.values_list("pk", flat=True)), 500))
    label = f"get_workflow_instance_for_object ({POPULATION:,} rows)"
    rows.append(
        measure(
            lambda: services.get_workflow_instance_for_object(Order(pk=lookups.next())), rounds
        ).row(label)
    )
    label = f"get_workflow_instance_for_object with a workflow name ({POPULATION:,} rows)"
    rows.append(
        measure(
            lambda: services.get_workflow_instance_for_object(
                Order(pk=lookups.next()), "guarded-2"
            ),
            rounds,
        ).row(label)
    )

    rows.append(measure_awaiting(guarded[2], rounds))

    for backend in backends:
        with cel_backend(backend):
            for size, compile_rounds in ((10, max(5, rounds // 10)), (100, 5)):
                workflow = create_workflow(chain_workflow(f"chain-{size}-{backend}", size))
                workflow = Workflow.objects.get(pk=workflow.pk)

                def clear() -> None:
                    workflow_cache.clear()
                    compile_condition.cache_clear()

                clear()
                label = f"compile {size} steps, cache miss [{backend}]"
                rows.append(
                    measure(
                        lambda workflow=workflow: cached_workflow(workflow),
                        compile_rounds,
                        reset=clear,
                    ).row(label)
                )
            cached_workflow(workflow)
            count = statements(lambda workflow=workflow: cached_workflow(workflow))
            loops = 20_000
            started_ns = time.perf_counter_ns()
            for _ in range(loops):
                cached_workflow(workflow)
            seconds = (time.perf_counter_ns() - started_ns) / loops / 1e9
            rows.append(Row(f"compiled workflow, cache hit [{backend}]", seconds, count))
    rows.extend(worst_condition_rows(backends))
    return rows


#: The costliest accepted condition found (docs/cel.md, "Bounds"): 160 comparisons
#: per element of a list as long as the cost bound accepts (415 elements).
WORST_CONDITION = "l.all(x, " + "&&".join(["x>-1"] * 160) + ")"
WORST_CONTEXT = {"l": list(range(415))}


def worst_condition_rows(backends: list[str]) -> list[Row]:
    """One evaluation of :data:`WORST_CONDITION`, the worst case of the evaluation bound."""
    from django_steps.cel import compile_condition, convert_context

    rows = []
    for backend in backends:
        condition = compile_condition(WORST_CONDITION, backend=backend)
        activation = convert_context(WORST_CONTEXT, backend=backend)
        measured = measure(lambda c=condition, a=activation: c.evaluate(a), 5)
        label = f"CEL worst accepted condition, 160 comparisons x 415 elements [{backend}]"
        rows.append(measured.row(label))
    return rows


#: The costliest hostile conditions the tests refuse, with the limits (CelLimits
#: arguments) the tests use. The tests bound refusing them by the work done
#: (tests/cel_work.py); these rows give the time that takes.
HOSTILE_CONDITIONS: list[tuple[str, str, dict[str, int]]] = [
    # Parsed, then refused by the parse-tree depth (test_cel_safety.py, test_fuzz_inputs.py).
    ("1,000 chained members", "a" + ".b" * 1000 + " == 1", {"max_length": 10_000_000}),
    (
        "5,000 nested parentheses, generous limits",
        "(" * 5000 + "x" + ")" * 5000,
        {"max_length": 10**6, "max_depth": 10**5},
    ),
    # Refused before parsing, under the default limits.
    ("5,000 nested parentheses", "(" * 5000 + "1" + ")" * 5000 + " == 1", {}),
    ("a 1 MB condition", '"' + "a" * 1_000_000 + '" == x', {}),
]

#: The costliest input test_fuzz_inputs.py handles under its time bound (BOUND).
COSTLIEST_FUZZ_INPUT = "[" + ",".join(["1"] * 490) + "].all(v, v == 1)"


def run_hostile_conditions(rounds: int, backends: list[str]) -> list[Row]:
    """Time refusing :data:`HOSTILE_CONDITIONS`, and handling :data:`COSTLIEST_FUZZ_INPUT`.

    Each run starts from an empty condition cache, as a new text does (no SQL).
    """
    from django_steps.cel import CelLimits, compile_condition, convert_context
    from django_steps.exceptions import ConditionSyntaxError

    def refuse(text: str, backend: str, limits: CelLimits) -> None:
        compile_condition.cache_clear()
        try:
            compile_condition(text, backend=backend, limits=limits)
        except ConditionSyntaxError:
            return
        raise AssertionError(f"not refused: {text[:40]}...")

    def handle(text: str, backend: str) -> None:
        compile_condition.cache_clear()
        compiled = compile_condition(text, backend=backend)
        assert compiled.evaluate(convert_context({}, backend=backend)) is True

    rows: list[Row] = []
    few = max(5, rounds // 60)  # up to a second each
    for backend in backends:
        for label, text, limits in HOSTILE_CONDITIONS:
            action = functools.partial(refuse, text, backend, CelLimits(**limits))
            rows.append(measure(action, few).row(f"refuse {label} [{backend}]"))
        action = functools.partial(handle, COSTLIEST_FUZZ_INPUT, backend)
        label = f"compile and evaluate a 490-element list literal [{backend}]"
        rows.append(measure(action, few).row(label))
    return rows


def measure_awaiting(workflow: Any, rounds: int) -> Row:
    """``awaiting(user)`` among the 100,000 instances: 100 assigned to the user and 100
    unassigned at a step of the user's group; the first page of 50 is fetched."""
    from django.contrib.auth.models import Group, User
    from django.db import connection

    from django_steps.models import WorkflowInstance

    user = User.objects.create_user("bench-inbox")
    team = Group.objects.create(name="bench-team")
    user.groups.add(team)
    escalated = workflow.steps.get(name="Escalated")
    escalated.assignee_group = team
    escalated.save()
    ids = list(
        WorkflowInstance.objects.filter(workflow=workflow, lifecycle="running")
        .order_by("pk")
        .values_list("pk", flat=True)[:200]
    )
    WorkflowInstance.objects.filter(pk__in=ids[:100]).update(assignee=user)
    WorkflowInstance.objects.filter(pk__in=ids[100:]).update(
        current_step=escalated,
        current_step_status=escalated.possible_statuses.get(is_default_status=True),
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")

    assert WorkflowInstance.objects.awaiting(user).count() == 200

    def inbox() -> None:
        # The first page, as an inbox shows it (newest first).
        found = list(WorkflowInstance.objects.awaiting(user)[:50])
        assert len(found) == 50, len(found)

    return measure(inbox, rounds).row(
        f"awaiting(user), first 50 of 200 among {POPULATION:,} instances"
    )


# --- throughput --------------------------------------------------------------------------


def _worker(
    kind: str, backend: str, pks: list[Any], barrier: Any, seconds: float, results: Any
) -> None:
    from django.db import connections

    connections.close_all()
    from django_steps import services
    from django_steps.models import WorkflowInstance

    with cel_backend(backend):
        if kind == "steps":
            instances = list(
                WorkflowInstance.objects.filter(pk__in=pks).select_related("current_step")
            )

            def step(index: int) -> None:
                instance = instances[index % len(instances)]
                forward = instance.current_step.name == "Draft"
                context = CONTEXT if forward else None
                assert services.update_workflow_step_status(instance, "Done", context)
        else:
            methods = dict.fromkeys(pks, "approve")

            def step(index: int) -> None:
                pk = pks[index % len(pks)]
                fsm_transition(pk, methods[pk])
                methods[pk] = "reopen" if methods[pk] == "approve" else "approve"

        for index in range(len(pks)):  # warm the connection and the caches
            step(index)
        barrier.wait()
        done = 0
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            step(done)
            done += 1
        results.put(done)
    connections.close_all()


def run_throughput(backends: list[str], seconds: float) -> list[tuple[str, int, float]]:
    """Transitions per second with 1, 2 and 4 processes on distinct rows."""
    from django.db import connections

    from django_steps import services

    context = multiprocessing.get_context("fork")
    results: list[tuple[str, int, float]] = []
    kinds = [("django-fsm-2", "fsm", "celpy")] + [
        (f"django-steps, 2 conditions [{backend}]", "steps", backend) for backend in backends
    ]
    # Libraries alternate at each process count, so a change in the machine's load
    # affects them alike.
    for processes in (1, 2, 4):
        for label, kind, backend in kinds:
            orders = new_orders(processes * 10)
            if kind == "steps":
                pks = [services.start_workflow_instance("guarded-2", o).pk for o in orders]
            else:
                pks = [o.pk for o in orders]
            connections.close_all()
            barrier = context.Barrier(processes)
            queue = context.Queue()
            workers = [
                context.Process(
                    target=_worker,
                    args=(kind, backend, pks[n::processes], barrier, seconds, queue),
                )
                for n in range(processes)
            ]
            for worker in workers:
                worker.start()
            done = sum(queue.get(timeout=120) for _ in workers)
            for worker in workers:
                worker.join()
                if worker.exitcode:
                    raise RuntimeError(f"a {label} worker failed (exit code {worker.exitcode})")
            results.append((label, processes, done / seconds))
    return results


# --- report ------------------------------------------------------------------------------


def machine_description(database: str) -> str:
    import django
    from django.db import connection

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    if database == "postgres":
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            version = f"PostgreSQL {cursor.fetchone()[0]}"
    else:
        import sqlite3

        version = f"SQLite {sqlite3.sqlite_version} (in memory)"
    return (
        f"{version}; Python {platform.python_version()}, Django {django.get_version()}; "
        f"{os.cpu_count()} CPU cores ({cpu}), {platform.system()}"
    )


def format_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    return f"{seconds * 1e3:.3f} ms"


def table(rows: list[Row]) -> str:
    lines = [
        "| operation | django-steps | SQL | django-fsm-2 locked transition | SQL | ratio |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        peer = format_time(row.peer_seconds) if row.peer_seconds else ""
        ratio = f"{row.ratio:.2f}x" if row.ratio else ""
        lines.append(
            f"| {row.operation} | {format_time(row.seconds)} | {row.statements} | {peer} | "
            f"{row.peer_statements if row.peer_statements is not None else ''} | {ratio} |"
        )
    return "\n".join(lines)


def throughput_table(results: list[tuple[str, int, float]]) -> str:
    lines = [
        "| library | processes | transitions/s | scaling vs 1 process |",
        "|---|---:|---:|---:|",
    ]
    single = {label: rate for label, processes, rate in results if processes == 1}
    for label, processes, rate in sorted(results, key=lambda result: result[0]):
        lines.append(f"| {label} | {processes} | {rate:,.0f} | {rate / single[label]:.2f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rounds", type=int, default=300, help="timed runs per operation")
    parser.add_argument("--backends", default="celpy,cel-expr", help="CEL backends to compare")
    parser.add_argument("--throughput", action="store_true", help="1/2/4 processes (PostgreSQL)")
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each load run")
    args = parser.parse_args(argv)
    backends = [name for name in args.backends.split(",") if name]
    configure(args.db)

    began = time.perf_counter()
    rows = run_latency(args.rounds, backends)
    if args.db == "sqlite":  # no SQL: the same on both databases, so timed once
        rows += run_hostile_conditions(args.rounds, backends)
    print(f"\n## {args.db}: {machine_description(args.db)}\n")
    print(f"Median of {args.rounds} runs; SQL = statements per operation.\n")
    print(table(rows))
    if args.throughput:
        if args.db != "postgres":
            parser.error("--throughput needs --db postgres")
        print(f"\nThroughput, guarded transitions on distinct rows, {args.seconds:.0f} s each:\n")
        print(throughput_table(run_throughput(backends, args.seconds)))
    print(f"\n(benchmark took {time.perf_counter() - began:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
