"""`flask db downgrade 0001_fleetos_v1`: v1 back exactly, and nothing of v2 lost without a word.

Issue 11, item 8: the downgrade deleted v2 data silently, a round trip made
the new-supplier companies twice, and a used sign-in link worked again.
"""

from __future__ import annotations

from collections import Counter

from tests.migrations.conftest import (
    V1_TABLES,
    dump,
    execute,
    flask_cli,
    migrate,
    migrate_down,
    query,
    rows,
    site_on,
)

# What a downgrade keeps besides the v1 tables, for the next upgrade's sake.
KEPT_FOR_THE_NEXT_UPGRADE = ("contacts", "used_link_tokens")
DISCARD = ("-x", "discard-v2-data=yes")
MIGRATION_EVENTS = (
    "event_type = 'company.created' AND metadata ->> 'source' = '0002_emergent_contacts'"
)


def v1_schema(url: str) -> str:
    return dump(url, "--schema-only", *(f"--exclude-table={t}" for t in KEPT_FOR_THE_NEXT_UPGRADE))


def tables(url: str) -> set[str]:
    return {r[0] for r in query(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def test_round_trip_restores_v1_exactly_and_upgrades_again(v1_database):
    migrate(v1_database, "0001_fleetos_v1")
    schema_before = v1_schema(v1_database)
    rows_before = rows(v1_database, *V1_TABLES)
    tables_before = tables(v1_database)

    migrate(v1_database)
    migrate_down(v1_database, "0001_fleetos_v1")  # nothing of v2 to lose: no option needed

    assert v1_schema(v1_database) == schema_before
    assert rows(v1_database, *V1_TABLES) == rows_before  # statuses back, created company gone
    assert tables(v1_database) - tables_before == set(KEPT_FOR_THE_NEXT_UPGRADE)

    migrate(v1_database)
    statuses = dict(query(v1_database, "SELECT title, status FROM service_requests"))
    assert statuses["Two new tyres"] == "in_progress" and statuses["Puncture"] == "declined"
    assert query(v1_database, "SELECT count(*) FROM contacts") == [(5,)]
    assert query(v1_database, "SELECT count(*) FROM companies") == [(5,)]
    assert flask_cli(v1_database, "fleetos", "verify").returncode == 0


def test_downgrade_maps_statuses_changed_after_the_upgrade(v1_database):
    migrate(v1_database)
    execute(
        v1_database,
        "UPDATE service_requests SET status = 'acknowledged' WHERE title = 'Battery dead'",
    )
    migrate_down(v1_database, "0001_fleetos_v1")
    assert query(
        v1_database, "SELECT status FROM service_requests WHERE title = 'Battery dead'"
    ) == [("open",)]


def test_a_downgrade_that_would_discard_v2_data_refuses_and_says_what(v1_database):
    migrate(v1_database)
    with site_on(v1_database) as site:
        site.sign_in("dana.dispatch@acme-fleet.com")
        sent = site.send_request(
            supplier_email="bob@bobsrepair.com", title="Brakes again", odometer="182400"
        )
        assert sent.status_code == 303
    events = query(v1_database, f"SELECT count(*) FROM event_log WHERE NOT ({MIGRATION_EVENTS})")
    mail = query(
        v1_database,
        "SELECT count(*), count(*) FILTER (WHERE status = 'pending') FROM outbox_messages",
    )
    (events,), (messages, unsent) = events[0], mail[0]
    assert events >= 2 and messages >= 2  # a sign-in and a request, at least
    before = dump(v1_database)

    refused = flask_cli(v1_database, "db", "downgrade", "0001_fleetos_v1")

    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr + refused.stdout
    for line in (
        "Error: FleetOS refused the downgrade: it would discard v2 data",
        f"event_log: {events} events recorded since the upgrade",
        f"outbox_messages: {messages} messages ({unsent} not yet sent)",
        "service_requests: 1 requests would lose their odometer or location",
        "service_requests: 1 requests would lose their fleet, sender, assignee or supplier",
        "Nothing was changed",
        "flask db downgrade -x discard-v2-data=yes 0001_fleetos_v1",
    ):
        assert line in refused.stderr, refused.stderr
    assert dump(v1_database) == before

    discarded = flask_cli(v1_database, "db", "downgrade", *DISCARD, "0001_fleetos_v1")
    assert discarded.returncode == 0, discarded.stderr
    assert query(v1_database, "SELECT version_num FROM alembic_version") == [("0001_fleetos_v1",)]
    assert query(
        v1_database, "SELECT count(*) FROM service_requests WHERE title = 'Brakes again'"
    ) == [(1,)]  # the request stays, without what v1 cannot hold


def test_a_used_sign_in_link_stays_used_across_a_round_trip(v1_database):
    migrate(v1_database)
    with site_on(v1_database) as site:
        link = site.sign_in("dana.dispatch@acme-fleet.com")

    assert flask_cli(v1_database, "db", "downgrade", *DISCARD, "0001_fleetos_v1").returncode == 0
    migrate(v1_database)

    with site_on(v1_database) as someone_else:  # a fresh browser with the old mail
        again = someone_else.use_link(link)
        assert again.status_code == 410
        assert someone_else.client.get("/dashboard").status_code != 200


def test_a_round_trip_creates_no_duplicate_companies(v1_database):
    migrate(v1_database)
    with site_on(v1_database) as fleet:
        fleet.sign_in("dana.dispatch@acme-fleet.com")
        # v2 makes a supplier company for an address no company has...
        assert fleet.send_request(supplier_email="brand.new.garage@gmail.com").status_code == 303
    with site_on(v1_database) as joe:
        # ...and a contact emerges in a company the upgrade made for an address.
        joe.sign_in("mobile.mechanic.joe@gmail.com")
    names_before = Counter(name for (name,) in query(v1_database, "SELECT name FROM companies"))
    joe_company = query(
        v1_database, "SELECT company_id FROM contacts WHERE contact_value LIKE 'mobile.mechanic%'"
    )

    assert flask_cli(v1_database, "db", "downgrade", *DISCARD, "0001_fleetos_v1").returncode == 0
    migrate(v1_database)

    names_after = Counter(name for (name,) in query(v1_database, "SELECT name FROM companies"))
    assert names_after == names_before
    assert max(names_after.values()) == 1
    assert (
        query(
            v1_database,
            "SELECT DISTINCT r.supplier_company_id FROM service_requests r"
            " WHERE lower(btrim(r.supplier_email)) = 'mobile.mechanic.joe@gmail.com'",
        )
        == joe_company
    )  # the company its contact belongs to, not a new one
    garage = query(
        v1_database,
        "SELECT c.name FROM service_requests r JOIN companies c"
        " ON c.company_id = r.supplier_company_id WHERE r.title = 'Service'",
    )
    assert garage == [("brand.new.garage@gmail.com",)]
