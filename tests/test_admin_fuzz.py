"""Bad input to the admin: random query strings and context data never give a server error.

Every changelist of django-steps' admin gets random values for each of its filter
parameters (and the admin's own ``q``, ``o``, ``p``), and the set-status form gets
random JSON, deeply nested JSON and random text, both for "Set status" and for
"Explain first". Each request must give a page or a redirect; Django's test client
re-raises any exception a view lets escape, which fails the test (issue 14,
finding 13: ``?current_step=abc``, ``?workflow__id__exact=²`` and nested JSON gave
500s).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.urls import reverse
from hypothesis import given, settings
from hypothesis import strategies as st

from django_steps import engine
from django_steps.models import WorkflowInstance
from tests.factories import claims_definition, create_workflow
from tests.reliability.scale import HYPOTHESIS
from tests.testapp.models import Claim

pytestmark = pytest.mark.django_db

#: Each changelist with the query parameters its filters read.
CHANGELISTS = {
    "workflow": [],
    "workflowstep": ["workflow__id__exact"],
    "workflowstepstatus": ["step__workflow__id__exact"],
    "workflowtransition": ["workflow__id__exact"],
    "workflowinstance": ["workflow__id__exact", "current_step", "lifecycle__exact"],
}
ADMIN_PARAMETERS = ["q", "o", "p", "e", "all", "_facets"]

# Query values: any text a URL can carry (no lone surrogates: they cannot be encoded),
# with the crafted cases of the finding among them.
values = st.one_of(
    st.sampled_from(["abc", "²", "٣", "-1", "0", "1", "9" * 30, "1e3", " 1", "1,2", "", "\x00"]),
    st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
)


@pytest.fixture
def instance() -> WorkflowInstance:
    create_workflow(claims_definition())
    instance = engine.start_workflow_instance("Claims", Claim.objects.create(title="Fuzz"))
    engine.update_workflow_step_status(instance, "Accepted")
    return instance


@pytest.mark.parametrize("model", sorted(CHANGELISTS))
@settings(HYPOTHESIS)
@given(data=st.data())
def test_random_query_strings_on_every_changelist_never_fail(admin_client, instance, model, data):
    keys = CHANGELISTS[model] + ADMIN_PARAMETERS
    query = data.draw(st.dictionaries(st.sampled_from(keys), values, max_size=4))
    response = admin_client.get(reverse(f"admin:django_steps_{model}_changelist"), query)
    assert response.status_code in (200, 302)


@pytest.mark.parametrize("model", sorted(CHANGELISTS))
@pytest.mark.parametrize(
    "query",
    [
        {"current_step": "abc"},
        {"workflow__id__exact": "²"},
        {"current_step": "²"},
        {"step__workflow__id__exact": "²"},
        {"q": "\x00"},
        {"current_step": "9" * 30},
    ],
)
def test_the_crafted_filter_values_never_fail(admin_client, instance, model, query):
    response = admin_client.get(reverse(f"admin:django_steps_{model}_changelist"), query)
    assert response.status_code in (200, 302)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)


def nested(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


context_texts = st.one_of(
    json_values.map(lambda value: json.dumps(value, allow_nan=True)),
    st.integers(min_value=1, max_value=200_000).map(nested),
    st.integers(min_value=1, max_value=200_000).map(lambda depth: "[" * depth + "]" * depth),
    st.sampled_from(['{"n": ' + "9" * 5000 + "}", '{"x": 1e400}', '{"s": "\\ud800"}']),
    st.text(max_size=60),
)


@settings(HYPOTHESIS)
@given(text=context_texts, submit=st.sampled_from(["_steps_explain", "_steps_set_status"]))
def test_random_context_data_in_the_set_status_form_never_fails(
    admin_client, instance, text, submit
):
    url = reverse("admin:django_steps_workflowinstance_change", args=[instance.pk])
    fields: dict[str, Any] = {
        submit: "1",
        "steps-status": "Approved",
        "steps-context_data": text,
        "steps-note": "",
    }
    response = admin_client.post(url, fields)
    assert response.status_code in (200, 302)


def test_deeply_nested_context_data_is_refused_on_the_form(admin_client, instance):
    url = reverse("admin:django_steps_workflowinstance_change", args=[instance.pk])
    fields = {
        "_steps_set_status": "1",
        "steps-status": "Approved",
        "steps-context_data": nested(100_000),
        "steps-note": "",
    }
    response = admin_client.post(url, fields)
    assert response.status_code == 200
    assert "nested too deeply" in " ".join(
        response.context["steps_status_form"].errors["context_data"]
    )
    instance.refresh_from_db()
    assert instance.current_step.name == "Review"


def test_a_nul_character_in_a_text_filter_is_an_incorrect_lookup(admin_client, instance):
    # PostgreSQL refuses to compare text with NUL: it was a server error there.
    url = reverse("admin:django_steps_workflowinstance_changelist")
    response = admin_client.get(url, {"lifecycle__exact": "\x00"})
    assert response.status_code == 302
    assert response["Location"].endswith("?e=1")
