"""Issue 10, item 7: arbitrary text in any form field or query parameter of any route is
never a 500 (property-based, with hypothesis).

The routes come from the app's URL map, so a route added later is fuzzed too.
The parameter names are every field of every form (the WTForms classes and
every ``name="..."`` in the templates) and every query parameter the pages link
with. Each example picks a visitor (signed out, a fleet contact, a supplier
contact), a handful of those names with arbitrary text (control characters,
NUL, huge strings, odd dates and digits among them), and sends them to the
route (as the query string, and as the form body of a POST with a valid CSRF
token). The budget is fixed and the run derandomised, so CI sees the same
examples each time.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.routing import Rule

from fleetos import REPO_ROOT, create_app
from fleetos.forms import Form
from tests.support.web import Browser, signed_in

EXAMPLES_PER_ROUTE = 20


def _url_map_rules() -> list[Rule]:
    app = create_app(
        {
            "SECRET_KEY": "url-map-only",
            "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://nobody@127.0.0.1:1/none",
        }
    )
    return sorted(app.url_map.iter_rules(), key=lambda rule: (rule.rule, rule.endpoint))


RULES = _url_map_rules()


def _form_field_names() -> set[str]:
    names: set[str] = set()
    pending = list(Form.__subclasses__())
    while pending:
        form = pending.pop()
        pending += form.__subclasses__()
        names |= {
            getattr(value, "kwargs", {}).get("name") or key
            for key, value in vars(form).items()
            if hasattr(value, "field_class")
        }
        names |= set(getattr(form, "renamed", {}).values())  # old names, still accepted
    for template in (REPO_ROOT / "templates").rglob("*.html"):
        names |= set(re.findall(r'\bname="([A-Za-z_][A-Za-z0-9_]*)"', Path(template).read_text()))
    return names


FIELD_NAMES = _form_field_names()

INTERESTING = st.sampled_from(
    [
        "\x00",
        "a\x00b",
        "\r\nBcc: x@example.org",
        "0001-01-01T00:00:00",
        "9999-12-31T23:59:59-14:00",
        "2026-13-45T25:61:00",
        "0001-01-01T00:00:00_" + str(uuid.UUID(int=0)),
        "²³",
        "١٢٣",
        "1" * 5000,
        "-1",
        "1e309",
        "%_\\",
        "'; DROP TABLE companies; --",
        "josé@nowhere.example",
        "d\u0430na@acme-fleet.com",
        "a+1@acme-fleet.com",
        "@",
        "x" * 100_000,
        "\u202egnp.exe",
        "//evil.example",
        "javascript:alert(1)",
        "acknowledged",
        "declined",
        "on",
    ]
)
TEXT = st.one_of(
    st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=60),
    INTERESTING,
)


def _linked_query_names(html: str) -> set[str]:
    names = set()
    for url in re.findall(r'(?:href|hx-get|hx-post|action)="([^"]*\?[^"]*)"', html):
        names |= {name for name, _ in parse_qsl(urlsplit(url.replace("&amp;", "&")).query)}
    return names


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: f"{rule.endpoint}:{rule.rule}")
def test_arbitrary_input_is_never_a_500(app, world, smtp, rule):
    people = {"visitor": None, "fleet": world.contacts["dana"], "supplier": world.contacts["bob"]}
    names = set(FIELD_NAMES)
    for contact_id in (world.contacts["dana"], world.contacts["bob"]):
        client = signed_in(app, smtp, contact_id).client
        for page in ("/dashboard", "/dashboard/company", f"/requests/{world.request_id}"):
            names |= _linked_query_names(client.get(page).text)
    names.discard("csrf_token")
    methods = sorted(rule.methods & {"GET", "POST"})

    @settings(
        max_examples=EXAMPLES_PER_ROUTE,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        who=st.sampled_from(sorted(people)),
        fields=st.dictionaries(st.sampled_from(sorted(names)), TEXT, max_size=6),
        token=TEXT,
        request_id=st.sampled_from([world.request_id, uuid.UUID(int=1)]),
    )
    def check(who: str, fields: dict[str, str], token: str, request_id: uuid.UUID) -> None:
        contact_id = people[who]
        browser = (
            signed_in(app, smtp, contact_id) if contact_id else Browser(app.test_client(), smtp)
        )
        # Text where the route takes text; an id (of a request, or of nothing) elsewhere.
        text_arguments = {"token": token or "x", "filename": token or "x", "key": token or "x"}
        path = rule.build({name: text_arguments.get(name, request_id) for name in rule.arguments})[
            1
        ]
        for method in methods:
            if method == "GET":
                response = browser.client.get(path, query_string=fields)
            else:
                data = {**fields, "csrf_token": browser.csrf()}
                response = browser.client.post(path, data=data, query_string=fields)
            with response:
                assert response.status_code < 500, (method, path, fields, response.text[:2000])

    check()


def test_every_route_is_fuzzed():
    endpoints = {rule.endpoint for rule in RULES}
    assert {"auth.login", "requests.create", "dashboard.updates", "auth.fresh_link"} <= endpoints
    assert {"title", "odometer", "email", "body", "reason", "from", "to", "q"} <= FIELD_NAMES
