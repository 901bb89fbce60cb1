"""Migration 0009_phone_contacts: new tables only, undone exactly, also on a live v1 upgrade."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from fleetos import MIGRATIONS_DIR
from tests.migrations.conftest import dump, migrate, migrate_down, query

REVISION = "0009_phone_contacts"


def previous_revision() -> str:
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


def test_refs_reference_the_swapped_in_service_requests(v1_database):
    """Upgraded from v1 in one run (0002's rebuild pending), the refs' key names the table
    that ends up as service_requests, not the v1 table the swap dropped."""
    migrate(v1_database, REVISION)
    assert query(
        v1_database,
        "SELECT confrelid::regclass::text FROM pg_constraint"
        " WHERE conname = 'sms_request_refs_request_id_fkey'",
    ) == [("service_requests",)]
