"""Issue 10, item 3: requests to one new address make one supplier company, also in a race.

Reported: 30 requests to one new address made 30 companies; the recipient saw 1
of 30, and later links ended in a 404. And the duplicates already made are
merged by migration 0007.
"""

from __future__ import annotations

import re
import threading
import uuid
from urllib.parse import urlsplit

from sqlalchemy import func, select

from fleetos.extensions import db
from fleetos.models import Company, ServiceRequest
from fleetos.outbox import deliver_due
from tests.mailserver import link_in
from tests.migrations.conftest import migrate, migrate_down, query
from tests.support.apps import database
from tests.support.web import Browser, row_ids

ADDRESS = "new.garage@example.org"


def send(browser: Browser, title: str, csrf: str | None = None):
    data = {"vehicle": "Unit 1", "title": title, "priority": "normal", "supplier_email": ADDRESS}
    return browser.client.post(
        "/requests", data={"csrf_token": csrf or browser.csrf("/requests/new"), **data}
    )


def suppliers_for(app, address: str) -> list[uuid.UUID]:
    with database(app):
        return list(
            db.session.scalars(
                select(ServiceRequest.supplier_company_id)
                .where(ServiceRequest.supplier_email == address)
                .distinct()
            )
        )


def recipient_sees(app, smtp, expected: int) -> None:
    """The recipient signs in with each mailed link: every one works, the dashboard has all."""
    with database(app):
        deliver_due()
    mails = smtp.to(ADDRESS)
    assert len(mails) == expected
    recipient = Browser(app.test_client(), smtp)
    first = recipient.use_link(urlsplit(link_in(mails[0])).path)
    assert first.status_code == 303
    page = recipient.client.get("/dashboard?status=new").text
    assert len(row_ids(page)) == min(expected, 25)  # the first page of the list
    assert re.search(r'data-status="new">\s*New <span class="count">(\d+)</span>', page).group(
        1
    ) == str(expected)
    for mail in mails[1:]:  # later links open their request, never a 404
        landed = recipient.client.get(urlsplit(link_in(mail)).path)
        assert landed.status_code == 303
        assert recipient.client.get(landed.headers["Location"]).status_code == 200


def test_thirty_requests_to_one_new_address_make_one_supplier(app, world, as_, smtp):
    dana = as_("dana")
    for n in range(30):
        assert send(dana, f"Job {n}").status_code == 303
    assert len(suppliers_for(app, ADDRESS)) == 1
    with database(app):
        assert (
            db.session.scalar(
                select(func.count()).select_from(Company).where(Company.name == ADDRESS)
            )
            == 1
        )
    recipient_sees(app, smtp, 30)


def test_ten_parallel_requests_to_one_new_address_make_one_supplier(app, world, as_, smtp):
    fleet = [as_("dana") for _ in range(10)]
    tokens = [b.csrf("/requests/new") for b in fleet]
    barrier = threading.Barrier(10)
    statuses: list[int] = []

    def post(n: int) -> None:
        barrier.wait()
        statuses.append(send(fleet[n], f"Parallel {n}", tokens[n]).status_code)

    threads = [threading.Thread(target=post, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert statuses == [303] * 10
    assert len(suppliers_for(app, ADDRESS)) == 1
    recipient_sees(app, smtp, 10)


# -- the duplicates already made: migration 0007 merges them ---------------------------------

FLEET = "11111111-1111-4111-8111-111111111111"
DUPLICATE = """
INSERT INTO companies (company_id, name, company_type, created_at)
VALUES ('{id}', 'dup@garage.example', 'supplier', '2026-11-2{n} 10:00');
INSERT INTO event_log (event_type, company_id, metadata, created_at)
VALUES ('company.created', '{id}',
        '{{"via": "request", "address": "dup@garage.example", "channel": "web"}}',
        '2026-11-2{n} 10:00');
INSERT INTO service_requests (request_id, vehicle, title, status, fleet_company_id,
                              supplier_company_id, supplier_email, created_at)
VALUES (gen_random_uuid(), 'Unit {n}', 'Job {n}', 'new', '{fleet}', '{id}',
        'dup@garage.example', '2026-11-2{n} 10:00');
"""


def test_0007_merges_the_suppliers_repeated_requests_made(make_database):
    url = make_database()
    migrate(url, "0006_reliable_delivery")
    ids = [f"dddddddd-0000-4000-8000-00000000000{n}" for n in range(1, 5)]
    setup = [
        f"INSERT INTO companies (company_id, name, company_type) VALUES ('{FLEET}', 'F', 'fleet')"
    ]
    setup += [DUPLICATE.format(id=i, n=n, fleet=FLEET) for n, i in enumerate(ids, start=1)]
    # The recipient signed in to the third one (the only one whose requests they saw).
    setup.append(
        "INSERT INTO contacts (company_id, contact_value, contact_type)"
        f" VALUES ('{ids[2]}', 'dup@garage.example', 'email')"
    )
    for statement in setup:
        query_all(url, statement)

    migrate(url, "0007_verified_domains")

    assert query(
        url,
        "SELECT company_id::text, emerged_from_address FROM companies"
        " WHERE company_type = 'supplier'",
    ) == [(ids[2], "dup@garage.example")]
    assert query(
        url, f"SELECT count(*) FROM service_requests WHERE supplier_company_id = '{ids[2]}'"
    ) == [(4,)]
    assert query(
        url,
        f"SELECT n FROM request_status_counts WHERE company_id = '{ids[2]}' AND side = 'supplier'",
    ) == [(4,)]
    merged = query(
        url,
        "SELECT metadata ->> 'merged_company_id' FROM event_log"
        " WHERE event_type = 'company.merged' ORDER BY 1",
    )
    assert [m for (m,) in merged] == [ids[0], ids[1], ids[3]]
    # The duplicates' own creation events now belong to the company that stayed.
    assert query(
        url,
        "SELECT count(*) FROM event_log WHERE event_type = 'company.created'"
        f" AND company_id = '{ids[2]}'",
    ) == [(4,)]

    migrate_down(url, "0006_reliable_delivery")  # the schema goes back; the repair stays
    assert query(url, "SELECT count(*) FROM companies WHERE company_type = 'supplier'") == [(1,)]


def query_all(url: str, sql: str) -> None:
    from tests.migrations.conftest import execute

    execute(url, sql)
