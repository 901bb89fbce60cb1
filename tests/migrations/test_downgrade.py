"""`flask db downgrade 0001_fleetos_v1` right after an upgrade restores v1 exactly."""

from __future__ import annotations

from tests.migrations.conftest import V1_TABLES, dump, migrate, migrate_down, query, rows


def test_round_trip_restores_v1_exactly_and_upgrades_again(v1_database):
    migrate(v1_database, "0001_fleetos_v1")
    schema_before = dump(v1_database, "--schema-only")
    rows_before = rows(v1_database, *V1_TABLES)

    migrate(v1_database)
    migrate_down(v1_database, "0001_fleetos_v1")

    assert dump(v1_database, "--schema-only") == schema_before
    assert rows(v1_database, *V1_TABLES) == rows_before  # statuses back, created company gone

    migrate(v1_database)
    statuses = dict(query(v1_database, "SELECT title, status FROM service_requests"))
    assert statuses["Two new tyres"] == "in_progress" and statuses["Puncture"] == "declined"
    assert query(v1_database, "SELECT count(*) FROM contacts") == [(5,)]
    assert query(v1_database, "SELECT count(*) FROM companies") == [(5,)]


def test_downgrade_maps_statuses_changed_after_the_upgrade(v1_database):
    migrate(v1_database)
    from tests.migrations.conftest import execute

    execute(
        v1_database,
        "UPDATE service_requests SET status = 'acknowledged' WHERE title = 'Battery dead'",
    )
    migrate_down(v1_database, "0001_fleetos_v1")
    assert query(
        v1_database, "SELECT status FROM service_requests WHERE title = 'Battery dead'"
    ) == [("open",)]
