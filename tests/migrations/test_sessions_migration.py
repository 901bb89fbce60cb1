"""Migration 0008_sessions: new tables only, filled where history says so, and undone exactly."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from fleetos import MIGRATIONS_DIR
from tests.migrations.conftest import dump, migrate, migrate_down, query

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
