"""Isolation: a request exists only for its fleet and its supplier. Everyone else gets a 404
that is indistinguishable from a request that never existed, at every route."""

from __future__ import annotations

import uuid

import pytest

from tests.support.web import load_request, row_counts, without_csrf

ROUTES = [
    ("GET", "/requests/{id}", {}),
    ("POST", "/requests/{id}/transition", {"to": "acknowledged", "from": "new"}),
    ("POST", "/requests/{id}/transition", {"to": "declined", "from": "new", "reason": "x"}),
    ("POST", "/requests/{id}/assign", {"contact_id": "{self}"}),
    ("POST", "/requests/{id}/notes", {"body": "hello"}),
]
OUTSIDERS = ["nora", "quick"]  # another fleet, another supplier
INSIDERS = {"dana": "fleet", "olu": "fleet", "bob": "supplier", "wes": "supplier"}


def call(browser, world, method, route, data, request_id):
    url = route.format(id=request_id)
    if method == "GET":
        return browser.client.get(url)
    filled = {k: v.format(self=world.contacts.get("bob")) for k, v in data.items()}
    return browser.post(url, filled, page="/dashboard")


@pytest.mark.parametrize("outsider", OUTSIDERS)
@pytest.mark.parametrize(("method", "route", "data"), ROUTES)
def test_outsiders_get_the_same_404_as_for_nothing(app, world, as_, outsider, method, route, data):
    browser = as_(outsider)
    before = row_counts(app)
    theirs = call(browser, world, method, route, data, world.request_id)
    nothing = call(browser, world, method, route, data, uuid.uuid4())
    assert theirs.status_code == nothing.status_code == 404
    assert without_csrf(theirs.text) == without_csrf(nothing.text)
    assert "Brakes squeal" not in theirs.text and "Acme" not in theirs.text.split("<main")[1]
    assert row_counts(app) == before
    assert load_request(app, world.request_id).status == "new"


@pytest.mark.parametrize("insider", INSIDERS)
def test_both_companies_see_the_request(app, world, as_, insider):
    assert as_(insider).client.get(f"/requests/{world.request_id}").status_code == 200


def test_a_malformed_id_is_a_404_too(app, world, as_):
    assert as_("dana").client.get("/requests/not-a-uuid").status_code == 404
    assert as_("dana").client.get("/requests/1 OR 1=1").status_code == 404
