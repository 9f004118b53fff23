"""The process's cache of compiled workflows: a bounded LRU with hit and miss counts.

``MACHINE_CACHE_SIZE`` bounds how many compiled workflows a process keeps; using one
more evicts the least recently used. Each test uses its own
:class:`~django_steps._engine.cache.WorkflowCache`, so the suite's shared cache and
its counters are left alone.
"""

from __future__ import annotations

import pytest
from django.test import override_settings

from django_steps._engine.cache import WorkflowCache
from django_steps.models import Workflow
from tests.factories import claims_definition, create_workflow

pytestmark = pytest.mark.django_db


def stored(name: str) -> Workflow:
    return create_workflow({**claims_definition(), "name": name})


def cached_names(cache: WorkflowCache) -> list[str]:
    """The workflows the cache holds, least recently used first (read without using them)."""
    names = dict(Workflow.objects.values_list("pk", "name"))
    return [names[pk] for _alias, pk in cache._entries]


@override_settings(DJANGO_STEPS={"MACHINE_CACHE_SIZE": 2})
def test_compiling_more_workflows_than_the_size_evicts_the_least_recently_used():
    cache = WorkflowCache()
    a, b, c = stored("A"), stored("B"), stored("C")

    first_a = cache.get(a)
    cache.get(b)
    assert cache.get(a) is first_a  # a hit: A is now the most recently used
    assert (cache.hits, cache.misses) == (1, 2)

    cache.get(c)  # a third workflow: B, the least recently used, goes
    assert (cache.hits, cache.misses) == (1, 3)
    assert cached_names(cache) == ["A", "C"]

    assert cache.get(a) is first_a  # still cached
    cache.get(b)  # compiled again, which evicts C
    assert (cache.hits, cache.misses) == (2, 4)
    assert cached_names(cache) == ["A", "B"]


@override_settings(DJANGO_STEPS={"MACHINE_CACHE_SIZE": 2})
def test_a_hit_through_current_counts_as_a_use():
    cache = WorkflowCache()
    a, b, c = stored("A"), stored("B"), stored("C")
    cache.get(a)
    cache.get(b)
    assert cache.current(a.pk, a.revision, "default") is not None  # A used again
    assert cache.hits == 1
    cache.get(c)
    assert cached_names(cache) == ["A", "C"]


def test_a_smaller_size_applies_on_the_next_compile():
    cache = WorkflowCache()
    workflows = [stored(name) for name in "ABCD"]
    for workflow in workflows[:3]:
        cache.get(workflow)
    assert cached_names(cache) == ["A", "B", "C"]
    with override_settings(DJANGO_STEPS={"MACHINE_CACHE_SIZE": 1}):
        cache.get(workflows[3])
        assert cached_names(cache) == ["D"]
    assert (cache.hits, cache.misses) == (0, 4)


def test_a_new_revision_is_a_miss_and_replaces_the_old_entry():
    cache = WorkflowCache()
    workflow = stored("A")
    old = cache.get(workflow)
    workflow.description = "changed"
    workflow.save()  # writes a new revision
    new = cache.get(workflow)
    assert new is not old
    assert new.revision != old.revision
    assert (cache.hits, cache.misses) == (0, 2)
    assert cache.get(workflow) is new
    assert cache.hits == 1


def test_changing_a_limit_recompiles_every_workflow():
    cache = WorkflowCache()
    a, b = stored("A"), stored("B")
    cache.get(a)
    cache.get(b)
    with override_settings(DJANGO_STEPS={"CONDITION_MAX_LENGTH": 500}):
        assert cache.current(a.pk, a.revision, "default") is None
        assert cache.current(b.pk, b.revision, "default") is None
        cache.get(a)
        assert cached_names(cache) == ["A"]  # compiled under the old limits: dropped
    assert (cache.hits, cache.misses) == (0, 3)
