"""Migration 0008_sessions: new tables only, filled where history says so, and undone exactly."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from fleetos import MIGRATIONS_DIR
from tests.migrations.conftest import dump, execute, migrate, migrate_down, query

REVISION = "0008_sessions"


def previous_revision() -> str:
    """0008's parent, whatever the lead points it at (0007_verified_domains once merged)."""
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    down = script.get_revision(REVISION).down_revision
    assert isinstance(down, str)
    return down


def test_downgrade_restores_the_previous_schema_exactly(v1_database):
    migrate(v1_database, previous_revision())
    before = dump(v1_database, "--schema-only")
    migrate(v1_database, REVISION)
    assert dump(v1_database, "--schema-only") != before
    migrate_down(v1_database, previous_revision())
    assert dump(v1_database, "--schema-only") == before
    migrate(v1_database, REVISION)  # and up again


def test_the_addresses_fleets_wrote_to_are_not_new(v1_database):
    migrate(v1_database, previous_revision())
    expected = query(
        v1_database,
        "SELECT fleet_company_id, lower(btrim(supplier_email)), min(created_at)"
        " FROM service_requests"
        " WHERE supplier_email IS NOT NULL AND fleet_company_id IS NOT NULL"
        " GROUP BY 1, 2 ORDER BY 1, 2",
    )
    assert expected  # the v1 sample has requests sent to addresses
    migrate(v1_database, REVISION)
    assert (
        query(
            v1_database,
            "SELECT company_id, address, first_written_at FROM company_recipients ORDER BY 1, 2",
        )
        == expected
    )


def test_an_address_padded_with_tabs_or_line_breaks_is_the_one_its_contact_has(v1_database):
    # A v1 app stored what was typed: pasted addresses can carry a tab or a line break.
    request_id, typed = query(
        v1_database,
        "UPDATE service_requests SET supplier_email = E' \\t' || upper(supplier_email) || E'\\r\\n'"
        " WHERE request_id = (SELECT request_id FROM service_requests"
        "                      WHERE supplier_email IS NOT NULL AND created_by_user_id IS NOT NULL"
        "                      ORDER BY created_at LIMIT 1)"
        " RETURNING request_id, supplier_email",
    )[0]
    migrate(v1_database, REVISION)
    address = typed.strip().lower()
    recorded = query(
        v1_database,
        "SELECT cr.address, c.contact_value FROM service_requests r"
        "  JOIN company_recipients cr ON cr.company_id = r.fleet_company_id"
        "  LEFT JOIN contacts c ON c.contact_value = cr.address"
        " WHERE r.request_id = %s AND cr.address = %s",
        (request_id, address),
    )
    # Written to once, under the address the fleet's contacts know it by, so the
    # limit on new addresses does not count it as new.
    assert recorded == [(address, address)]
    addresses = [row[0] for row in query(v1_database, "SELECT address FROM company_recipients")]
    assert addresses == [a.strip().lower() for a in addresses]


def test_addresses_as_the_first_0008_wrote_them_are_not_counted_as_lost(v1_database):
    """0008 first trimmed spaces only: a database upgraded then holds an address padded
    with a tab, which its request still accounts for, so a downgrade loses nothing."""
    execute(
        v1_database,
        "UPDATE service_requests SET supplier_email = E'\\t' || supplier_email"
        " WHERE created_by_user_id IS NOT NULL AND supplier_email IS NOT NULL",
    )
    migrate(v1_database, REVISION)
    execute(  # what the first 0008 recorded, beside today's canonical form
        v1_database,
        "INSERT INTO company_recipients (company_id, address)"
        " SELECT DISTINCT fleet_company_id, lower(btrim(supplier_email)) FROM service_requests"
        " WHERE fleet_company_id IS NOT NULL AND supplier_email IS NOT NULL",
    )
    migrate_down(v1_database, previous_revision())  # refuses if it counts anything as lost
    assert query(v1_database, "SELECT to_regclass('company_recipients')") == [(None,)]
