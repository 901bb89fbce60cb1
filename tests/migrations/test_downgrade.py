"""`flask db downgrade 0001_fleetos_v1`: v1 back exactly, and nothing of v2 lost without a word.

Issue 11, item 8: the downgrade deleted v2 data silently, a round trip made
the new-supplier companies twice, and a used sign-in link worked again.
"""

from __future__ import annotations

from collections import Counter

import pytest

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


def test_the_command_a_relative_downgrade_is_told_to_run_works_as_given(v1_database):
    """`flask db downgrade -- -4` refused: the command it suggests must keep the `--`, or
    click takes -4 for an option."""
    migrate(v1_database)
    execute(
        v1_database,
        "INSERT INTO invitations (company_id, address)"
        " SELECT company_id, 'new.hire@acme-fleet.com' FROM companies LIMIT 1",
    )
    refused = flask_cli(v1_database, "db", "downgrade", "--", "-4")
    assert refused.returncode == 1
    suggested = "flask db downgrade -x discard-v2-data=yes -- -4"
    assert f"`{suggested}`" in refused.stderr, refused.stderr
    discarded = flask_cli(v1_database, *suggested.split()[1:])
    assert discarded.returncode == 0, discarded.stderr
    assert query(v1_database, "SELECT version_num FROM alembic_version") == [
        ("0007_verified_domains",)
    ]


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


# Derived entirely from data the downgrade keeps, so nothing is lost with them.
DERIVED = {"0005_dashboard": "request_status_counts is counted again from service_requests"}


def test_every_revision_whose_downgrade_drops_data_says_what_it_discards():
    """A downgrade that drops a table or column names what it loses (env.py refuses first)."""
    import re

    from alembic.script import ScriptDirectory

    from fleetos import MIGRATIONS_DIR

    result = flask_cli(
        "postgresql://offline@127.0.0.1/offline",
        "db",
        "downgrade",
        "--sql",
        "head:0001_fleetos_v1",
    )
    assert result.returncode == 0, result.stderr
    steps = re.split(r"^-- Running downgrade (\S+) -> ", result.stdout, flags=re.M)[1:]
    dropping = {
        revision
        for revision, sql in zip(steps[::2], steps[1::2], strict=True)
        if re.search(r"\bDROP (TABLE|COLUMN)\b", sql)
    }
    assert {"0002_emergent_contacts", "0008_sessions", "0011_attachments"} <= dropping
    scripts = ScriptDirectory(str(MIGRATIONS_DIR))
    for revision in dropping - set(DERIVED):
        module = scripts.get_revision(revision).module
        assert hasattr(module, "data_a_downgrade_discards"), revision


def test_later_revisions_say_what_a_downgrade_would_discard(v1_database):
    migrate(v1_database)
    execute(
        v1_database,
        """
INSERT INTO domain_claims (company_id, domain, token, verified_at)
SELECT company_id, 'claimed.example', 'token-1', now() FROM companies ORDER BY name LIMIT 1;
INSERT INTO web_sessions (contact_id, expires_at)
SELECT contact_id, now() + interval '2 days' FROM contacts ORDER BY contact_value LIMIT 1;
INSERT INTO invitations (company_id, address, revoked_at)
SELECT company_id, 'new.colleague@example.com', now() FROM companies ORDER BY name LIMIT 1;
INSERT INTO company_recipients (company_id, address)
SELECT company_id, 'new.colleague@example.com' FROM companies ORDER BY name LIMIT 1;
INSERT INTO attachments (request_id, company_id, filename, content_type, size_bytes, sha256)
SELECT request_id, fleet_company_id, 'a.pdf', 'application/pdf', 10, repeat('ab', 32)
  FROM service_requests WHERE fleet_company_id IS NOT NULL ORDER BY title LIMIT 1;
INSERT INTO outbox_messages (kind, recipient, subject, status, context, text_body,
                             email_message_id)
VALUES ('sign_in', 'a@example.com', 'Sign in', 'pending', '{}', NULL, NULL),
       ('sign_in', 'b@example.com', 'Sign in', 'withheld', '{}', NULL, NULL),
       ('sign_in', 'c@example.com', 'Sign in', 'expired', NULL, 'Hello', NULL),
       ('sign_in', 'd@example.com', 'Sign in', 'pending', NULL, 'Hello', '<x@example.com>');
INSERT INTO link_credentials (jti, contact_value, token, code_hash, expires_at)
VALUES ('jti-1', '+14155550100', 'signed', 'hash', now() + interval '10 minutes');
INSERT INTO sms_request_refs (address, request_id, ref)
SELECT '+14155550100', request_id, '4821' FROM service_requests ORDER BY title LIMIT 1;
INSERT INTO sms_opt_outs (address) VALUES ('+14155550100');
INSERT INTO reply_addresses (reply_address_id, request_id, address, company_id)
SELECT 'token1', request_id, 'bob@bobsrepair.example', fleet_company_id
  FROM service_requests WHERE fleet_company_id IS NOT NULL ORDER BY title LIMIT 1;
INSERT INTO held_replies (request_id, reply_address_id, channel, sender, body)
SELECT request_id, reply_address_id, 'mail', 'eve@elsewhere.example', 'hello'
  FROM reply_addresses;
""",
    )
    before = dump(v1_database)

    refused = flask_cli(v1_database, "db", "downgrade", "0001_fleetos_v1")

    assert refused.returncode == 1
    for line in (
        "domain_claims: 1 domain claims made since the upgrade (1 verified;",
        "web_sessions: 1 signed-in sessions would end",
        "invitations: 1 invitations, 1 of them revoked",
        "company_recipients: 1 addresses written to other than by a request",
        "attachments: 1 photos and documents on 1 requests",
        "outbox_messages: 1 messages not yet composed would never be sent",
        "outbox_messages: 1 messages not yet sent would lose their Message-ID or expiry",
        "outbox_messages: 4 messages (2 not yet sent)",
        "link_credentials: 1 unused codes and short links would stop working",
        "sms_request_refs: 1 refs that SMS replies name their request by",
        "sms_opt_outs: 1 numbers that texted STOP",
        "reply_addresses: 1 reply addresses in mail already sent would stop working",
        "held_replies: 1 replies held for their addressee to accept",
    ):
        assert line in refused.stderr, refused.stderr
    assert dump(v1_database) == before


def revisions_after_0002() -> list[tuple[str, str]]:
    from alembic.script import ScriptDirectory

    from fleetos import MIGRATIONS_DIR

    scripts = ScriptDirectory(str(MIGRATIONS_DIR))
    pairs = [
        (script.down_revision, script.revision)
        for script in scripts.walk_revisions()
        if isinstance(script.down_revision, str) and script.down_revision != "0001_fleetos_v1"
    ]
    return sorted(pairs)


# A revision's downgrade that keeps a table on purpose (see 0003's docstring).
KEPT_BY = {"0003_sign_in": "used_link_tokens"}


@pytest.mark.parametrize(("before", "revision"), revisions_after_0002())
def test_each_revision_downgrades_to_the_schema_before_it_exactly(v1_database, before, revision):
    kept = [f"--exclude-table={KEPT_BY[revision]}"] if revision in KEPT_BY else []
    migrate(v1_database, before)
    schema_before = dump(v1_database, "--schema-only", *kept)
    migrate(v1_database, revision)
    migrate_down(v1_database, before)  # right after the upgrade, nothing to discard
    assert dump(v1_database, "--schema-only", *kept) == schema_before
