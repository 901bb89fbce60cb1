"""The v1 upgrade rebuilds service_requests beside the v1 table: what it carries, what it refuses."""

from __future__ import annotations

import pytest
from flask_migrate import upgrade

from migrations import requests_rebuild
from tests.migrations.conftest import (
    app_for,
    database_name,
    dump,
    execute,
    flask_cli,
    migrate,
    migration_sql,
    query,
)
from tests.migrations.test_refusals import assert_refused


def test_v1_writers_are_locked_out_before_anything_is_read():
    """The upgrade's first statement stops v1 writers; only then does it read v1 data."""
    sql = migration_sql("0001_fleetos_v1:0002_emergent_contacts")
    lock = sql.index("LOCK TABLE companies, users, service_requests IN SHARE MODE;")
    first_read = min(
        sql.index(f"FROM {table}") for table in ("service_requests", "users", "companies")
    )
    assert lock < first_read


def test_an_index_a_dba_added_grants_and_comments_are_carried_over(v1_database):
    execute(
        v1_database,
        "CREATE INDEX service_requests_vehicle_lower ON service_requests (lower(vehicle))"
        "  WHERE status <> 'closed';"
        " GRANT SELECT, INSERT ON service_requests TO PUBLIC;"
        " COMMENT ON TABLE service_requests IS 'Work for suppliers';"
        " COMMENT ON COLUMN service_requests.vehicle IS 'Plate or unit number';",
    )
    migrate(v1_database)
    assert query(
        v1_database,
        "SELECT pg_get_indexdef('service_requests_vehicle_lower'::regclass),"
        " has_table_privilege('public', 'service_requests', 'INSERT'),"
        " obj_description('service_requests'::regclass, 'pg_class'),"
        " col_description('service_requests'::regclass, 5)",
    ) == [
        (
            "CREATE INDEX service_requests_vehicle_lower ON public.service_requests"
            " USING btree (lower(vehicle)) WHERE (status <> 'closed'::text)",
            True,
            "Work for suppliers",
            "Plate or unit number",
        )
    ]
    assert flask_cli(v1_database, "fleetos", "verify").returncode == 0


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ("ALTER TABLE service_requests ADD COLUMN mileage int", "column mileage"),
        (
            "ALTER TABLE service_requests ALTER COLUMN supplier_email SET NOT NULL",
            "NOT NULL on column supplier_email",
        ),
        (
            "CREATE VIEW open_work AS SELECT * FROM service_requests WHERE status = 'open'",
            "view open_work",
        ),
        (
            "ALTER TABLE service_requests ADD CONSTRAINT title_not_blank CHECK (title <> '')",
            "constraint title_not_blank",
        ),
        (
            "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS"
            " 'BEGIN NEW.updated_at = now(); RETURN NEW; END';"
            " CREATE TRIGGER touch BEFORE UPDATE ON service_requests"
            " FOR EACH ROW EXECUTE FUNCTION touch()",
            "trigger touch",
        ),
    ],
)
def test_what_the_rebuild_could_not_carry_is_refused_by_name(v1_database, change, named):
    execute(v1_database, change)
    assert_refused(
        v1_database,
        f"service_requests has {named}, which FleetOS does not know",
        "Drop or move them first",
        "Nothing was changed",
    )


def test_a_revision_that_changes_the_v1_table_during_the_rebuild_is_refused(
    v1_database, monkeypatch, capfd
):
    """A later revision that ALTERs service_requests by name would lose its change at the swap."""
    swap = requests_rebuild.swap_sql
    monkeypatch.setattr(
        requests_rebuild,
        "swap_sql",
        lambda: "ALTER TABLE service_requests ADD COLUMN rogue int;\n" + swap(),
    )
    before = dump(v1_database)
    with app_for(v1_database), pytest.raises(SystemExit):
        upgrade()
    error = capfd.readouterr().err
    assert "FleetOS refused the upgrade: a revision changed the v1 service_requests" in error
    assert "the rebuilt table lacks column rogue" in error
    assert dump(v1_database) == before


def test_a_revision_not_written_for_the_rebuild_runs_after_the_swap(
    v1_database, make_database, monkeypatch
):
    """A revision without REBUILD_AWARE finds the new service_requests under its own name."""
    reference = make_database(database_name(v1_database))  # the same v1 database, upgraded
    migrate(reference)  # as it is
    aware = requests_rebuild.runs_while_rebuilding
    monkeypatch.setattr(
        requests_rebuild,
        "runs_while_rebuilding",
        lambda module: aware(module) and module.revision != "0005_dashboard",
    )
    tables = []
    table = requests_rebuild.table
    monkeypatch.setattr(requests_rebuild, "table", lambda: tables.append(table()) or tables[-1])
    migrate(v1_database)
    # 0004 built on the new table before the swap; 0005 came after it, the ordinary way
    # (and so did every later revision that names the table, like 0009's foreign key).
    assert tables[:2] == [requests_rebuild.NEW_TABLE, "service_requests"]
    assert set(tables[2:]) <= {"service_requests"}
    assert dump(v1_database, "--schema-only") == dump(reference, "--schema-only")
    assert flask_cli(v1_database, "fleetos", "verify").returncode == 0
