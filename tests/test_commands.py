"""`flask fleetos verify` and `flask fleetos seed-demo`, as an operator runs them."""

from __future__ import annotations

from tests.conftest import flask_cli
from tests.migrations.conftest import execute, migrate, query


def test_verify_passes_on_an_upgraded_v1_database_and_reports_orphans(v1_database):
    migrate(v1_database)
    result = flask_cli(v1_database, "fleetos", "verify")
    assert result.returncode == 0, result.stdout
    out = result.stdout
    assert "[  ok  ] constraint valid_status validated" in out
    assert "[  ok  ] function get_or_create_contact(" in out
    assert "[ warn ] 1 service requests without a fleet company" in out
    assert "cccccccc-0000-4000-8000-000000000008" in out
    assert (
        "5 companies (1 created by the upgrade), 5 contacts (from 5 v1 users), 8 service requests"
        in out
    )
    assert out.strip().splitlines()[-1].endswith("0 failed, 1 warnings")


def test_verify_fails_before_the_upgrade(v1_database):
    migrate(v1_database, "0001_fleetos_v1")
    result = flask_cli(v1_database, "fleetos", "verify")
    assert result.returncode == 1
    assert "FAIL ] table contacts" in result.stdout
    assert "database at 0001_fleetos_v1, head is" in result.stdout


def test_verify_fails_on_a_missing_index_and_an_unvalidated_constraint(v1_database):
    migrate(v1_database)
    execute(
        v1_database,
        "DROP INDEX idx_event_log_type;"
        " ALTER TABLE service_requests DROP CONSTRAINT valid_status;"
        " ALTER TABLE service_requests ADD CONSTRAINT valid_status"
        "   CHECK (status IN ('new', 'acknowledged', 'in_progress', 'completed', 'declined'))"
        "   NOT VALID;",
    )
    result = flask_cli(v1_database, "fleetos", "verify")
    assert result.returncode == 1
    assert "FAIL ] index idx_event_log_type is missing" in result.stdout
    assert "FAIL ] constraint valid_status is not the v2 one, or not validated" in result.stdout


def test_seed_demo_loads_every_status_once(head_database):
    first = flask_cli(head_database, "fleetos", "seed-demo")
    assert first.returncode == 0 and "rows added" in first.stdout
    counts = query(
        head_database,
        "SELECT (SELECT count(*) FROM companies), (SELECT count(*) FROM contacts),"
        " (SELECT count(*) FROM service_requests)",
    )
    statuses = {
        row[0] for row in query(head_database, "SELECT DISTINCT status FROM service_requests")
    }
    assert statuses == {"new", "acknowledged", "in_progress", "completed", "declined"}

    again = flask_cli(head_database, "fleetos", "seed-demo")
    assert again.returncode == 0 and "nothing added" in again.stdout
    assert (
        query(
            head_database,
            "SELECT (SELECT count(*) FROM companies), (SELECT count(*) FROM contacts),"
            " (SELECT count(*) FROM service_requests)",
        )
        == counts
    )
    assert flask_cli(head_database, "fleetos", "verify").returncode == 0
