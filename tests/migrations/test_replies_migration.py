"""Migration 0010_replies: three new tables, nothing else touched, and undone exactly.

Its foreign keys to service_requests are made against ``requests_rebuild.table()``:
on a v1 upgrade that is the table being rebuilt, and after the swap they point at
service_requests as it is then (deleting a request takes its reply rows with it).
"""

from __future__ import annotations

from alembic.script import ScriptDirectory

from fleetos import MIGRATIONS_DIR
from tests.migrations.conftest import dump, execute, migrate, migrate_down, query

REVISION = "0010_replies"


def previous_revision() -> str:
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    down = script.get_revision(REVISION).down_revision
    assert isinstance(down, str)
    return down


def test_downgrade_restores_the_previous_schema_exactly(make_database):
    url = make_database()
    migrate(url, previous_revision())
    before = dump(url, "--schema-only")
    migrate(url, REVISION)
    assert dump(url, "--schema-only") != before
    migrate_down(url, previous_revision())
    assert dump(url, "--schema-only") == before
    migrate(url, REVISION)  # and up again


def test_on_an_upgraded_v1_database_reply_rows_follow_their_request(v1_database):
    migrate(v1_database)
    assert (
        query(
            v1_database,
            "SELECT confrelid::regclass::text FROM pg_constraint"
            " WHERE conname IN ('reply_addresses_request_id_fkey', 'held_replies_request_id_fkey',"
            " 'inbound_messages_request_id_fkey') ORDER BY conname",
        )
        == [("service_requests",)] * 3
    )
    execute(
        v1_database,
        "INSERT INTO reply_addresses (reply_address_id, request_id, address, company_id)"
        " SELECT 'k' || row_number() OVER (), request_id, 'a@b.example', supplier_company_id"
        " FROM service_requests WHERE supplier_company_id IS NOT NULL",
    )
    (count,) = query(v1_database, "SELECT count(*) FROM reply_addresses")[0]
    assert count > 0
    execute(
        v1_database,
        "DELETE FROM event_log; DELETE FROM service_requests WHERE request_id ="
        " (SELECT request_id FROM reply_addresses ORDER BY reply_address_id LIMIT 1)",
    )
    assert query(v1_database, "SELECT count(*) FROM reply_addresses") == [(count - 1,)]


def test_one_live_reply_address_per_request_and_address(head_database):
    import psycopg
    import pytest

    execute(
        head_database,
        "INSERT INTO companies (company_id, name, company_type)"
        " VALUES ('00000000-0000-0000-0000-00000000000a', 'Acme', 'supplier');"
        "INSERT INTO service_requests (request_id, vehicle, title, supplier_company_id)"
        " VALUES ('00000000-0000-0000-0000-00000000000b', 'Unit 1', 'Tyre',"
        " '00000000-0000-0000-0000-00000000000a');"
        "INSERT INTO reply_addresses (reply_address_id, request_id, address, company_id, revoked_at)"
        " VALUES ('old', '00000000-0000-0000-0000-00000000000b', 'a@b.example',"
        " '00000000-0000-0000-0000-00000000000a', now());"
        "INSERT INTO reply_addresses (reply_address_id, request_id, address, company_id)"
        " VALUES ('new', '00000000-0000-0000-0000-00000000000b', 'a@b.example',"
        " '00000000-0000-0000-0000-00000000000a')",
    )
    with pytest.raises(psycopg.errors.UniqueViolation):
        execute(
            head_database,
            "INSERT INTO reply_addresses (reply_address_id, request_id, address, company_id)"
            " VALUES ('newer', '00000000-0000-0000-0000-00000000000b', 'a@b.example',"
            " '00000000-0000-0000-0000-00000000000a')",
        )
