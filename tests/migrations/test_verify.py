"""`flask fleetos verify` after an upgrade: the checks the rebuild and the live upgrade rely on."""

from __future__ import annotations

from tests.migrations.conftest import execute, flask_cli, migrate


def test_verify_fails_when_the_dashboard_counts_drift(v1_database):
    migrate(v1_database)
    execute(
        v1_database,
        "UPDATE request_status_counts SET n = n + 1"
        " WHERE company_id = '33333333-3333-4333-8333-333333333333' AND status = 'new'",
    )
    result = flask_cli(v1_database, "fleetos", "verify")
    assert result.returncode == 1
    assert "FAIL ] request_status_counts disagrees with service_requests on 2 counts" in (
        result.stdout
    )


def test_verify_fails_when_v1_writes_are_no_longer_refused(v1_database):
    migrate(v1_database)
    execute(v1_database, "ALTER TABLE users DISABLE TRIGGER refuse_v1_writes")
    result = flask_cli(v1_database, "fleetos", "verify")
    assert result.returncode == 1
    assert "FAIL ] trigger refuse_v1_writes on users is missing or disabled" in result.stdout
    assert "[  ok  ] v1-shaped writes to service_requests are refused" in result.stdout
