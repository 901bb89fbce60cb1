"""Migration 0011_attachments: a new table, nothing else touched; a downgrade takes it away
exactly (the schema is the one before, byte for byte in pg_dump), rows and all."""

from __future__ import annotations

from tests.migrations.conftest import dump, execute, migrate, migrate_down, query

BEFORE = "0010_replies"


def test_upgrade_adds_the_table_and_downgrade_restores_the_schema_exactly(make_database):
    url = make_database()
    migrate(url, BEFORE)
    schema_before = dump(url, "--schema-only")

    migrate(url, "0011_attachments")
    execute(
        url,
        "INSERT INTO companies (company_id, name, company_type)"
        " VALUES ('00000000-0000-0000-0000-00000000000a', 'Acme', 'fleet');"
        "INSERT INTO service_requests (request_id, vehicle, title, fleet_company_id)"
        " VALUES ('00000000-0000-0000-0000-00000000000b', 'Unit 1', 'Tyre',"
        " '00000000-0000-0000-0000-00000000000a');"
        "INSERT INTO attachments (request_id, company_id, filename, content_type, size_bytes,"
        " sha256) VALUES ('00000000-0000-0000-0000-00000000000b',"
        " '00000000-0000-0000-0000-00000000000a', 'a.pdf', 'application/pdf', 10,"
        f" '{'ab' * 32}')",
    )
    assert query(url, "SELECT filename, channel FROM attachments") == [("a.pdf", "web")]

    migrate_down(url, BEFORE, discard_v2_data=True)  # the attachment's row goes
    assert dump(url, "--schema-only") == schema_before
    assert query(url, "SELECT title FROM service_requests") == [("Tyre",)]  # only the table went
    migrate(url)
    assert query(url, "SELECT count(*) FROM attachments") == [(0,)]


def test_the_database_refuses_what_fleetos_never_stores(head_database):
    import psycopg
    import pytest

    execute(
        head_database,
        "INSERT INTO companies (company_id, name, company_type)"
        " VALUES ('00000000-0000-0000-0000-00000000000a', 'Acme', 'fleet');"
        "INSERT INTO service_requests (request_id, vehicle, title, fleet_company_id)"
        " VALUES ('00000000-0000-0000-0000-00000000000b', 'Unit 1', 'Tyre',"
        " '00000000-0000-0000-0000-00000000000a')",
    )
    insert = (
        "INSERT INTO attachments (request_id, company_id, filename, content_type, size_bytes,"
        " sha256) VALUES ('00000000-0000-0000-0000-00000000000b',"
        " '00000000-0000-0000-0000-00000000000a', 'x', '{type}', {size}, '{sha}')"
    )
    good = {"type": "image/jpeg", "size": 10, "sha": "ab" * 32}
    execute(head_database, insert.format(**good))
    for bad in ({"type": "text/html"}, {"size": 0}, {"sha": "../../etc/passwd"}):
        with pytest.raises(psycopg.errors.CheckViolation):
            execute(head_database, insert.format(**{**good, **bad}))
