"""Issue 10, item 6: no form tells an outsider whether an address or company uses FleetOS.

The three probes as reported: the invite form ("... already belongs to another
company on FleetOS"), the new-request form ("That address belongs to a company
that is not a supplier"), and /auth/login, slower for unknown addresses (more
queries). Each is answered the same, with the same SQL statements (counted and
compared as text, never timed), whatever the address; the delivery worker
decides what the address is sent.
"""

from __future__ import annotations

import re

from fleetos.outbox import deliver_due
from tests.mailserver import text_body
from tests.support.apps import database
from tests.support.dns import sql_statements
from tests.support.web import Browser, outbox_to, without_csrf

UUIDS = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def answer(response, address: str) -> tuple[int, str, str]:
    """What the asker sees, with the address (and ids) taken out."""
    location = UUIDS.sub("ID", response.headers.get("Location", ""))
    return (
        response.status_code,
        location,
        # A page with a form carries a CSRF token, signed with the second it was made in.
        without_csrf(UUIDS.sub("ID", response.text.replace(address, "ADDRESS"))),
    )


def probe(app, browser: Browser, url: str, page: str, fields: dict, address: str):
    """POST the form for ``address``; return what came back and the SQL it ran."""
    csrf = browser.csrf(page)
    with sql_statements(app) as statements:
        response = browser.client.post(url, data={"csrf_token": csrf, **fields})
    followed = (
        browser.client.get(response.headers["Location"]) if response.status_code == 303 else None
    )
    shown = answer(response, address) + (
        (answer(followed, address)[2],) if followed is not None else ()
    )
    return shown, statements


TIMES = re.compile(r"<time datetime=\"[^\"]+\">[^<]*</time>")
# The CSRF token is signed with the second it was made: two pages a second
# apart differ there, whatever address was typed.
CSRF_TOKENS = re.compile(r'("X-CSRFToken": "|name="csrf_token" value=")[^"]+')


def _without_times(page: str) -> str:
    return UUIDS.sub("ID", CSRF_TOKENS.sub(r"\1TOKEN", TIMES.sub("TIME", page)))


def mail_to(app, smtp, address: str) -> str:
    with database(app):
        deliver_due()
    [message] = smtp.to(address)
    return text_body(message)


def test_the_invite_form_answers_the_same_for_another_companys_address(app, world, as_, smtp):
    dana = as_("dana")
    known = probe(
        app,
        dana,
        "/auth/invite",
        "/auth/invite",
        {"email": "nora@northwind.example"},
        "nora@northwind.example",
    )
    unknown = probe(
        app,
        dana,
        "/auth/invite",
        "/auth/invite",
        {"email": "newbie@example.org"},
        "newbie@example.org",
    )
    assert known[0] == unknown[0]
    assert "already belongs" not in known[0][3]
    assert known[1] == unknown[1], "the request path runs different SQL for a known address"

    # The worker decides: the stranger gets the invitation, Nora a note only she reads.
    assert "/auth/link/" in mail_to(app, smtp, "newbie@example.org")
    note = mail_to(app, smtp, "nora@northwind.example")
    assert "/auth/link/" not in note and "already belongs to Northwind Haulage" in note


def test_the_request_form_answers_the_same_for_a_non_supplier_address(app, world, as_, smtp):
    dana = as_("dana")
    fields = {"vehicle": "Unit 7", "title": "Brake check", "priority": "normal"}
    seen = {}
    for address in ["nora@northwind.example", "nobody@new-garage.example", "bob@bobsrepair.com"]:
        seen[address] = probe(
            app, dana, "/requests", "/requests/new", {**fields, "supplier_email": address}, address
        )
    nora, stranger, bob = (shown for shown, _ in seen.values())
    # The reported probe: a fleet's address answers exactly as an unknown one.
    assert nora[:3] == stranger[:3] and _without_times(nora[3]) == _without_times(stranger[3])
    assert (nora[0], nora[1]) == (303, "/requests/ID") and nora[:3] == bob[:3]
    assert "Request sent to ADDRESS." in nora[3] and "not a supplier" not in nora[3]
    assert "Request sent to ADDRESS." in bob[3]
    statements = [s for _, s in seen.values()]
    assert statements[0] == statements[1] == statements[2], "different SQL for known addresses"

    # Nora (a fleet's contact) is told who wrote, so she can answer them; no link to a request
    # her company cannot hold. The stranger gets the request and its link.
    note = mail_to(app, smtp, "nora@northwind.example")
    assert "dana@acme-fleet.com" in note and "Brake check" in note and "/auth/link/" not in note
    assert "/auth/link/" in mail_to(app, smtp, "nobody@new-garage.example")
    assert [m.kind for m in outbox_to(app, "nora@northwind.example")] == ["request_elsewhere"]


def test_sign_in_runs_the_same_sql_for_every_address(app, world, smtp):
    browser = Browser(app.test_client(), smtp)
    addresses = {
        "contact": "dana@acme-fleet.com",
        "verified domain": "newbie@acme-fleet.com",
        "stranger": "stranger@elsewhere.example",
    }
    seen = {
        kind: probe(app, browser, "/auth/login", "/auth/login", {"email": a}, a)
        for kind, a in addresses.items()
    }
    assert len({shown for shown, _ in seen.values()}) == 1
    statements = [s for _, s in seen.values()]
    assert statements[0] == statements[1] == statements[2]
    assert len(statements[0]) <= 2, statements[0]  # one INSERT of the message (and its transaction)

    # The worker decides what each address is sent.
    assert "/auth/link/" in mail_to(app, smtp, "dana@acme-fleet.com")
    assert "/auth/link/" in mail_to(app, smtp, "newbie@acme-fleet.com")
    assert "/auth/signup" in mail_to(app, smtp, "stranger@elsewhere.example")


def test_sign_up_runs_the_same_sql_for_a_known_address(app, world, smtp):
    browser = Browser(app.test_client(), smtp)
    seen = [
        probe(
            app,
            browser,
            "/auth/signup",
            "/auth/signup",
            {"company_name": "New Co", "company_type": "fleet", "email": address},
            address,
        )
        for address in ("dana@acme-fleet.com", "founder@new-co.example")
    ]
    assert seen[0] == seen[1]
    assert "sign-in link" in mail_to(
        app, smtp, "dana@acme-fleet.com"
    ).lower() or "/auth/link/" in mail_to(app, smtp, "dana@acme-fleet.com")
