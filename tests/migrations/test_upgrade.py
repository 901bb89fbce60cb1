"""Upgrading a live v1 database: every data rule, on the v1 sample and on edge cases."""

from __future__ import annotations

import shutil
from datetime import datetime

import pytest

from fleetos import MIGRATIONS_DIR
from tests.migrations.conftest import V1_TABLES, dump, execute, migrate, query, rows
from tests.support.apps import flask_cli
from tests.support.database import run_sql_files

ACME = "11111111-1111-4111-8111-111111111111"
NORTHWIND = "22222222-2222-4222-8222-222222222222"
BOBS = "33333333-3333-4333-8333-333333333333"
QUICK_TYRES = "44444444-4444-4444-8444-444444444444"


def request(n: int) -> str:
    return f"cccccccc-0000-4000-8000-00000000000{n}"


def contact_ids(url: str) -> dict[str, str]:
    return {
        value: str(cid)
        for cid, value in query(url, "SELECT contact_id, contact_value FROM contacts")
    }


def owners(url: str) -> dict[str, tuple]:
    result = query(
        url,
        "SELECT request_id::text, status, fleet_company_id::text, supplier_company_id::text,"
        " submitted_by_contact_id::text, assigned_to_contact_id::text FROM service_requests",
    )
    return {row[0]: row[1:] for row in result}


def test_empty_database_gets_the_whole_schema(make_database):
    url = make_database()
    migrate(url)
    tables = {
        row[0] for row in query(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    }
    assert {"companies", "users", "contacts", "service_requests", "event_log"} <= tables
    assert query(url, "SELECT count(*) FROM companies") == [(0,)]
    # A request inserted with no status starts its life as 'new'.
    execute(
        url,
        f"INSERT INTO companies (company_id, name, company_type) VALUES ('{ACME}', 'A', 'fleet')",
    )
    execute(
        url,
        f"INSERT INTO service_requests (vehicle, title, fleet_company_id) VALUES ('v', 't', '{ACME}')",
    )
    assert query(url, "SELECT status FROM service_requests") == [("new",)]


def test_statuses_are_mapped(v1_database):
    migrate(v1_database)
    statuses = {rid: row[0] for rid, row in owners(v1_database).items()}
    assert statuses == {
        request(1): "new",  # pending
        request(2): "acknowledged",  # open
        request(3): "in_progress",
        request(4): "completed",  # closed
        request(5): "declined",  # rejected
        request(6): "new",
        request(7): "new",
        request(8): "completed",
    }


def test_one_canonical_contact_per_v1_user(v1_database):
    migrate(v1_database)
    contacts = query(
        v1_database,
        "SELECT contact_value, company_id::text, contact_type, display_name, first_seen_at, last_seen_at"
        " FROM contacts ORDER BY contact_value",
    )
    assert contacts == [
        ("bob@bobsrepair.com", BOBS, "email", "Bob",
         datetime(2025, 1, 5, 8, 5), datetime(2025, 6, 2, 7, 45)),
        ("dana.dispatch@acme-fleet.com", ACME, "email", "Dana Dispatch",
         datetime(2025, 1, 10, 9, 5), datetime(2025, 6, 1, 8, 0)),
        ("nora@northwind.example", NORTHWIND, "email", "Nora North",
         datetime(2025, 2, 1, 10, 5), datetime(2025, 5, 20, 17, 30)),
        # never signed in: last seen when created
        ("ops@acme-fleet.com", ACME, "email", None,
         datetime(2025, 1, 11, 9, 5), datetime(2025, 1, 11, 9, 5)),
        ("quicktyres@gmail.com", QUICK_TYRES, "email", "Quick Tyres desk",
         datetime(2025, 3, 1, 12, 5), datetime(2025, 3, 1, 12, 5)),
    ]  # fmt: skip


def test_addresses_that_never_signed_in_get_no_contact(v1_database):
    migrate(v1_database)
    values = {row[0] for row in query(v1_database, "SELECT contact_value FROM contacts")}
    assert "workshop@bobsrepair.com" not in values
    assert "mobile.mechanic.joe@gmail.com" not in values


def expected_owners(url: str) -> dict[str, tuple]:
    """The owners the v1 sample's requests must have after the upgrade, by request."""
    c = contact_ids(url)
    dana, ops, nora = (
        c["dana.dispatch@acme-fleet.com"],
        c["ops@acme-fleet.com"],
        c["nora@northwind.example"],
    )
    bob, quick = c["bob@bobsrepair.com"], c["quicktyres@gmail.com"]
    joe_company = query(
        url, "SELECT company_id::text FROM companies WHERE name = 'mobile.mechanic.joe@gmail.com'"
    )
    assert len(joe_company) == 1
    joe = joe_company[0][0]
    return {
        request(1): (ACME, BOBS, dana, bob),  # supplier user's company
        request(2): (ACME, BOBS, ops, bob),
        request(3): (NORTHWIND, QUICK_TYRES, nora, quick),
        request(4): (ACME, BOBS, dana, bob),
        request(5): (NORTHWIND, QUICK_TYRES, nora, quick),
        request(6): (ACME, BOBS, dana, None),  # registered domain, mixed case
        request(7): (NORTHWIND, joe, nora, None),  # public domain: a company of its own
        request(8): (None, BOBS, None, bob),  # creator deleted in v1
    }


def test_owners_of_each_request(v1_database):
    migrate(v1_database)
    got = {rid: row[1:] for rid, row in owners(v1_database).items()}
    assert got == expected_owners(v1_database)


def test_owners_are_the_same_when_the_fill_runs_in_parallel_workers(v1_database):
    """On a big table 0002's fill reads and joins in parallel workers; here one is made to."""
    parallel_even_for_small_tables = (
        "-c min_parallel_table_scan_size=0 -c max_parallel_workers_per_gather=2"
    )
    result = flask_cli(v1_database, "db", "upgrade", PGOPTIONS=parallel_even_for_small_tables)
    assert result.returncode == 0, result.stderr
    got = {rid: row[1:] for rid, row in owners(v1_database).items()}
    assert got == expected_owners(v1_database)
    assert flask_cli(v1_database, "fleetos", "verify").returncode == 0


def test_new_supplier_company_is_recorded_and_not_grouped_by_public_domain(v1_database):
    migrate(v1_database)
    company = query(
        v1_database,
        "SELECT c.company_type, c.email_domain, e.metadata ->> 'source' FROM companies c"
        " JOIN event_log e ON e.company_id = c.company_id AND e.event_type = 'company.created'"
        " WHERE c.name = 'mobile.mechanic.joe@gmail.com'",
    )
    assert company == [("supplier", None, "0002_emergent_contacts")]
    assert query(v1_database, "SELECT count(*) FROM companies") == [(5,)]


def test_only_status_changes_in_v1_data(v1_database):
    columns = {
        # v1's columns (later revisions add their own, empty on v1 rows)
        "companies": "company_id, name, company_type, email_domain, created_at",
        "users": "*",
        "service_requests": "request_id, created_by_user_id, supplier_user_id, supplier_email, vehicle,"
        " title, description, priority, created_at, updated_at",
    }
    sql = {t: f"SELECT {cols} FROM {t} ORDER BY 1" for t, cols in columns.items()}
    before = {t: query(v1_database, s) for t, s in sql.items()}
    migrate(v1_database)
    after = {t: query(v1_database, s) for t, s in sql.items()}
    after["companies"] = [
        row for row in after["companies"] if row[1] != "mobile.mechanic.joe@gmail.com"
    ]
    assert after == before


EDGE_CASES = f"""
-- Users that differ only by case and spaces, in the same company: one contact.
INSERT INTO users (user_id, company_id, email, full_name, created_at, last_login_at) VALUES
  ('aaaaaaaa-0000-4000-8000-000000000010', '{ACME}', 'FLEET.BOSS@acme-fleet.com ', '  ', '2025-01-02 09:00', NULL),
  ('aaaaaaaa-0000-4000-8000-000000000011', '{ACME}', 'fleet.boss@ACME-fleet.com', 'Fleet Boss', '2025-01-03 09:00', '2025-07-01 10:00'),
  ('aaaaaaaa-0000-4000-8000-000000000012', '{ACME}', ' fleet.boss@acme-fleet.com', 'Second Name', '2025-01-04 09:00', '2025-02-01 10:00');
-- A supplier company that registered a public domain: never used to group addresses.
INSERT INTO companies (company_id, name, company_type, email_domain, created_at) VALUES
  ('55555555-5555-4555-8555-555555555555', 'Gmail Garage', 'supplier', 'GMAIL.com', '2025-01-01 00:00');
INSERT INTO service_requests (request_id, created_by_user_id, supplier_user_id, supplier_email, vehicle, title, status) VALUES
  -- only an address, which is a v1 user's (in other case): that user's company
  ('dddddddd-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-000000000011', NULL, ' QuickTyres@Gmail.com ', 'X1', 'Rule b', 'pending'),
  -- two more addresses at gmail.com: two more companies, not one, and not Gmail Garage
  ('dddddddd-0000-4000-8000-000000000002', 'aaaaaaaa-0000-4000-8000-000000000011', NULL, 'Other.Garage@gmail.com', 'X2', 'Public 1', 'open'),
  ('dddddddd-0000-4000-8000-000000000003', 'aaaaaaaa-0000-4000-8000-000000000011', NULL, 'other.garage@gmail.com ', 'X3', 'Public 1 again', 'pending'),
  ('dddddddd-0000-4000-8000-000000000004', 'aaaaaaaa-0000-4000-8000-000000000011', NULL, 'third@gmail.com', 'X4', 'Public 2', 'pending'),
  -- no supplier at all
  ('dddddddd-0000-4000-8000-000000000005', 'aaaaaaaa-0000-4000-8000-000000000011', NULL, NULL, 'X5', 'Nobody', 'pending');
"""


@pytest.fixture
def v1_with_edge_cases(v1_database):
    execute(v1_database, EDGE_CASES)
    return v1_database


def test_case_duplicate_users_become_one_contact(v1_with_edge_cases):
    migrate(v1_with_edge_cases)
    merged = query(
        v1_with_edge_cases,
        "SELECT company_id::text, display_name, first_seen_at, last_seen_at FROM contacts"
        " WHERE contact_value = 'fleet.boss@acme-fleet.com'",
    )
    # earliest first_seen, latest last_seen, first non-empty name (oldest user first)
    assert merged == [(ACME, "Fleet Boss", datetime(2025, 1, 2, 9, 0), datetime(2025, 7, 1, 10, 0))]
    submitted = query(
        v1_with_edge_cases,
        "SELECT DISTINCT c.contact_value FROM service_requests r"
        " JOIN contacts c ON c.contact_id = r.submitted_by_contact_id WHERE r.request_id::text LIKE 'dddddddd%'",
    )
    assert submitted == [("fleet.boss@acme-fleet.com",)]


def test_supplier_resolution_fallbacks(v1_with_edge_cases):
    migrate(v1_with_edge_cases)
    supplier = dict(
        query(
            v1_with_edge_cases,
            "SELECT r.title, c.name FROM service_requests r"
            " LEFT JOIN companies c ON c.company_id = r.supplier_company_id"
            " WHERE r.request_id::text LIKE 'dddddddd%'",
        )
    )
    assert supplier == {
        "Rule b": "Quick Tyres",
        "Public 1": "other.garage@gmail.com",
        "Public 1 again": "other.garage@gmail.com",
        "Public 2": "third@gmail.com",
        "Nobody": None,
    }
    assert query(
        v1_with_edge_cases,
        "SELECT count(*) FROM companies WHERE name = 'other.garage@gmail.com'",
    ) == [(1,)]
    gmail_garage = query(
        v1_with_edge_cases,
        "SELECT count(*) FROM service_requests WHERE supplier_company_id = '55555555-5555-4555-8555-555555555555'",
    )
    assert gmail_garage == [(0,)]


def test_running_the_revision_again_changes_nothing(v1_with_edge_cases):
    emergent = "0002_emergent_contacts"
    migrate(v1_with_edge_cases, emergent)
    tables = (*V1_TABLES, "contacts", "event_log")
    before = rows(v1_with_edge_cases, *tables)
    # Make Alembic believe 0002 never ran, so its body runs a second time.
    execute(v1_with_edge_cases, "UPDATE alembic_version SET version_num = '0001_fleetos_v1'")
    migrate(v1_with_edge_cases, emergent)
    assert rows(v1_with_edge_cases, *tables) == before
    migrate(v1_with_edge_cases)
    at_head = rows(v1_with_edge_cases, *tables)
    migrate(v1_with_edge_cases)  # and at head, upgrade is a no-op
    assert rows(v1_with_edge_cases, *tables) == at_head


def test_adopts_a_database_with_the_plan_applied_by_hand(v1_database):
    run_sql_files(v1_database, "seed_applied_by_hand.sql")
    migrate(v1_database)
    assert {rid: row[0] for rid, row in owners(v1_database).items()}[request(2)] == "acknowledged"
    assert len(contact_ids(v1_database)) == 5
    # The plan's racy select-then-insert function is replaced by ours.
    source = query(
        v1_database, "SELECT prosrc FROM pg_proc WHERE proname = 'get_or_create_contact'"
    )
    assert len(source) == 1 and "ON CONFLICT" in source[0][0]
    constraint = query(
        v1_database,
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'valid_status'",
    )
    assert "'declined'" in constraint[0][0] and "'pending'" not in constraint[0][0]
    fks = query(
        v1_database,
        "SELECT count(*) FROM pg_constraint WHERE conrelid = 'service_requests'::regclass AND contype = 'f'",
    )
    assert fks == [(6,)]  # 2 v1 + 4 new, none doubled


def test_stamping_a_later_revision_runs_nothing_and_no_traceback(v1_database):
    """`flask db stamp` (an operator who applied a revision by hand) records the version only."""
    migrate(v1_database, "0010_replies")
    before = dump(v1_database, "--schema-only")
    result = flask_cli(v1_database, "db", "stamp", "head")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "(head)" in flask_cli(v1_database, "db", "current").stdout
    assert dump(v1_database, "--schema-only") == before


def test_flask_db_current_prints_the_version_once(head_database):
    """env.py asks for the run's steps; for `current` that function prints the version."""
    result = flask_cli(head_database, "db", "current")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("(head)") == 1, result.stdout


def test_flask_db_migrate_writes_a_model_change_once(head_database, tmp_path):
    """A developer's `flask db migrate` gets one revision holding each change once (before,
    env.py ran autogenerate three times and Alembic failed with a traceback)."""
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, directory, ignore=shutil.ignore_patterns("__pycache__"))
    before = set((directory / "versions").iterdir())
    execute(head_database, "DROP INDEX idx_contacts_last_seen")  # the model still has it
    result = flask_cli(head_database, "db", "migrate", "-d", str(directory), "-m", "probe")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    [new] = set((directory / "versions").iterdir()) - before
    assert new.read_text().count("create_index('idx_contacts_last_seen'") == 1
