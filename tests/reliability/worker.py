"""A worker process of the reliability tests: drives django-steps and logs every call.

Run as ``python -m tests.reliability.worker SPEC.json`` with the test database given
by the environment (see :func:`tests.reliability.harness.worker_environment`). The
spec says what to do (``mode``):

``workload``
    ``operations`` random calls (status updates, step completions with context,
    holds, resumes, cancels, and starts when an object's instance is finished) on
    the given objects, half through the strict engine, half through the services.
``start``
    one ``start_workflow_instance`` call per object, all workers at once.
``edit``
    ``operations`` saves of one transition of the workflow, each bumping its version,
    so the other workers recompile it while they run.
``hang``
    a status update whose signal receiver announces itself and then sleeps inside
    the transaction, so the test can kill the process there.

Each call is appended to the ``log`` file as one JSON line: worker, sequence,
operation, arguments, the note that tags its history rows, what it returned (or the
error it raised), wall-clock start and end times and, for the workload, how many times
the process has compiled a workflow so far. Workers wait at a file barrier after
Django is set up, so their calls really overlap.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import django

OPERATIONS = ("status", "complete", "hold", "resume", "cancel")
WEIGHTS = (40, 30, 12, 14, 4)


def wait_at_barrier(spec: dict[str, Any]) -> None:
    """Say this worker is ready, then wait (bounded) until the test says go."""
    barrier = Path(spec["barrier"])
    (barrier / f"ready-{spec['worker']}").touch()
    deadline = time.monotonic() + 120
    while not (barrier / "go").exists():
        if time.monotonic() > deadline:
            raise SystemExit("worker: no go signal within 120 s")
        time.sleep(0.005)


def change_record(change: Any) -> list[str | None]:
    return [
        change.kind.value,
        change.from_step,
        change.from_status,
        change.to_step,
        change.to_status,
    ]


def call(
    operation: str, api: str, instance: Any, status: str | None, context: dict | None, note: str
) -> dict[str, Any]:
    """Make one call; describe what it returned or raised."""
    from django_steps import engine, services
    from django_steps.exceptions import StepsError

    module: Any = engine if api == "engine" else services
    functions = {
        "hold": module.set_workflow_on_hold,
        "resume": module.resume_workflow_instance,
        "cancel": module.cancel_workflow_instance,
    }
    try:
        if operation in ("status", "complete"):
            result = module.update_workflow_step_status(instance, status, context, note=note)
        else:
            result = functions[operation](instance, note=note)
    except StepsError as error:
        return {"result": None, "error": type(error).__name__}
    if api == "engine":
        return {"result": True, "changes": [change_record(c) for c in result.changes]}
    return {"result": bool(result)}


def run_workload(spec: dict[str, Any], out: Any) -> None:
    from django.contrib.contenttypes.models import ContentType

    from django_steps import services
    from django_steps._engine.cache import cached_workflow, workflow_cache
    from django_steps.models import Workflow
    from tests.reliability.definitions import STATUS_NAMES
    from tests.testapp.models import Claim

    rng = random.Random(spec["seed"])
    workflow = Workflow.objects.get(name=spec["workflow"])
    compiled = cached_workflow(workflow)  # warm the cache before the race starts
    ContentType.objects.get_for_model(Claim)
    claims = list(Claim.objects.filter(pk__in=spec["objects"]).order_by("pk"))
    known: dict[Any, Any] = {}
    wait_at_barrier(spec)
    for sequence in range(spec["operations"]):
        claim = rng.choice(claims)
        note = f"w{spec['worker']}#{sequence}"
        instance = known.get(claim.pk)
        if instance is None or rng.random() < 0.25:
            instance = services.get_workflow_instance_for_object(claim, spec["workflow"])
        record: dict[str, Any] = {"worker": spec["worker"], "seq": sequence, "note": note}
        record["object"] = claim.pk
        started = time.time()
        try:
            if instance is None or instance.is_finished:
                record.update(operation="start", api="services")
                created = services.start_workflow_instance(spec["workflow"], claim, note=note)
                record["result"] = str(created.pk) if created is not None else None
                known[claim.pk] = created
            else:
                operation = rng.choices(OPERATIONS, WEIGHTS)[0]
                api = rng.choice(("engine", "services"))
                status: str | None = None
                context: dict[str, Any] | None = None
                if operation == "status":
                    status = rng.choice(STATUS_NAMES)
                    if rng.random() < 0.5:
                        context = {"x": rng.randint(0, 100)}
                elif operation == "complete":
                    step_name = compiled.step_names.get(instance.current_step_id, "")
                    step = compiled.definition.step(step_name)
                    completion = [s.name for s in step.statuses if s.is_completion] if step else []
                    status = completion[0] if completion else rng.choice(STATUS_NAMES)
                    context = {"x": rng.randint(0, 100)} if rng.random() < 0.9 else {}
                record.update(
                    operation=operation,
                    api=api,
                    instance=str(instance.pk),
                    status=status,
                    context=context,
                )
                record.update(call(operation, api, instance, status, context, note))
                if record.get("error") == "InstanceFinished" or record.get("result") is False:
                    known.pop(claim.pk, None)
                else:
                    known[claim.pk] = instance
        except Exception:  # logged and asserted on by the test, never swallowed silently
            record["unexpected"] = traceback.format_exc()
            known.pop(claim.pk, None)
        record["t0"], record["t1"] = started, time.time()
        record["compilations"] = workflow_cache.misses
        out.write(json.dumps(record) + "\n")
        out.flush()


def run_start(spec: dict[str, Any], out: Any) -> None:
    from django_steps import services
    from tests.testapp.models import Claim

    claims = list(Claim.objects.filter(pk__in=spec["objects"]).order_by("pk"))
    wait_at_barrier(spec)
    for sequence, claim in enumerate(claims):
        note = f"w{spec['worker']}#{sequence}"
        started = time.time()
        record: dict[str, Any] = {"worker": spec["worker"], "seq": sequence, "note": note}
        record.update(operation="start", api="services", object=claim.pk)
        try:
            created = services.start_workflow_instance(spec["workflow"], claim, note=note)
            record["result"] = str(created.pk) if created is not None else None
        except Exception:
            record["unexpected"] = traceback.format_exc()
        record["t0"], record["t1"] = started, time.time()
        out.write(json.dumps(record) + "\n")
        out.flush()


def run_edit(spec: dict[str, Any], out: Any) -> None:
    """Edit the definition while the others run: each save bumps its version."""
    from django_steps.models import WorkflowTransition

    transition = WorkflowTransition.objects.get(
        workflow__name=spec["workflow"], name=spec["transition"]
    )
    wait_at_barrier(spec)
    for sequence in range(spec["operations"]):
        started = time.time()
        record: dict[str, Any] = {"worker": spec["worker"], "seq": sequence}
        record.update(note=f"w{spec['worker']}#{sequence}", operation="edit")
        try:
            transition.description = f"edited {sequence} times"
            transition.save()
        except Exception:
            record["unexpected"] = traceback.format_exc()
        record["t0"], record["t1"] = started, time.time()
        out.write(json.dumps(record) + "\n")
        out.flush()
        time.sleep(0.005)


def run_hang(spec: dict[str, Any], out: Any) -> None:
    from django_steps import engine, signals
    from django_steps.models import WorkflowInstance

    marker = Path(spec["barrier"]) / "inside-transaction"

    def hang(**kwargs: Any) -> None:
        marker.touch()
        time.sleep(600)  # killed here by the test, inside the open transaction

    for signal in (signals.workflow_status_changed, signals.workflow_step_changed):
        signal.connect(hang, dispatch_uid="tests.reliability.worker.hang")
    instance = WorkflowInstance.objects.get(pk=spec["instance"])
    engine.update_workflow_step_status(
        instance, spec["status"], spec.get("context"), note=f"w{spec['worker']}#0"
    )
    out.write(json.dumps({"worker": spec["worker"], "unexpected": "the change returned"}) + "\n")


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[1]).read_text())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    django.setup()
    modes = {"workload": run_workload, "start": run_start, "edit": run_edit, "hang": run_hang}
    with open(spec["log"], "a", encoding="utf-8") as out:
        modes[spec["mode"]](spec, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
