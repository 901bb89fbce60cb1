"""`flask fleetos verify` and `flask fleetos seed-demo`, as an operator runs them."""

from __future__ import annotations

from tests.migrations.conftest import execute, migrate, query
from tests.support.apps import flask_cli


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


LIFECYCLE_PATHS = {
    "new": ["request.created"],
    "acknowledged": ["request.created", "request.acknowledged"],
    "in_progress": ["request.created", "request.acknowledged", "request.in_progress"],
    "completed": [
        "request.created",
        "request.acknowledged",
        "request.in_progress",
        "request.completed",
    ],
    "declined": ["request.created", "request.declined"],
}


def test_seed_demo_gives_each_request_the_history_of_its_status(head_database):
    """A newcomer's timelines and activity feeds show how each demo request got where it is."""
    assert flask_cli(head_database, "fleetos", "seed-demo").returncode == 0
    histories = query(
        head_database,
        "SELECT r.status, r.supplier_company_id, r.assigned_to_contact_id, r.updated_at,"
        "       array_agg(e.event_type ORDER BY e.created_at),"
        "       array_agg(e.company_id ORDER BY e.created_at),"
        "       max(e.created_at),"
        "       bool_and(e.created_at <= c.last_seen_at OR e.event_type = 'request.created'),"
        "       array_agg(e.metadata ->> 'reason') FILTER"
        "         (WHERE e.event_type = 'request.declined'),"
        "       array_agg(e.metadata ->> 'assignee_id') FILTER"
        "         (WHERE e.event_type = 'request.assigned')"
        "  FROM service_requests r"
        "  JOIN event_log e ON e.target_request_id = r.request_id"
        "  JOIN contacts c ON c.contact_id = e.contact_id"
        " GROUP BY r.request_id",
    )
    assert len(histories) == 8
    for (
        status,
        supplier,
        assignee,
        updated,
        types,
        companies,
        last,
        seen,
        reasons,
        assigned,
    ) in histories:
        assert [t for t in types if t != "request.assigned"] == LIFECYCLE_PATHS[status]
        # The supplier acts on its own behalf; the request changed when it last acted.
        assert all(company == supplier for company in companies[1:])
        assert updated == last
        assert seen, "a contact acted after it was last seen"
        if status == "declined":
            assert reasons and reasons[0], "a decline without its reason"
        if assignee is not None:
            assert assigned == [str(assignee)]
        else:
            assert assigned is None
