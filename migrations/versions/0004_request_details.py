"""Request details (odometer, location) and the index behind a request's timeline.

``idx_event_log_request`` serves "this request's events, in order", which
every request page and notification reads. ``idx_service_requests_supplier_address``
finds the company an address was reached at (sign-in for a supplier that
emerged from a request, before it has any contact); it is an expression
index because v1 addresses are stored as typed.

Locks. The upgrade is one transaction, and every lock is held until COMMIT:

* Upgrading a v1 database (0002 in the same run), the columns, the check and
  the index go onto the service_requests that 0002 is building
  (``migrations/requests_rebuild.py``), and ``idx_event_log_request`` onto
  the event_log 0002 created: no other session can see either table yet, so
  they block no one. (The ALTER still scans the new table once, to validate
  the check.)
* On a database already at 0003, ``idx_event_log_request`` builds under a
  SHARE lock on event_log: v2 writers of event_log wait, readers go on.
* On a database already at 0003, service_requests is changed in place. The
  index builds first, under a SHARE lock (writers wait, readers go on). Then
  one ALTER adds the columns and the check: it takes an ACCESS EXCLUSIVE lock
  and scans the table once to validate the check (every odometer is NULL, so
  it passes). From that ALTER until COMMIT, readers of service_requests wait,
  including during whatever later revisions of the same run do. ``NOT VALID``
  followed by ``VALIDATE`` would not help: in one transaction the ALTER's lock
  is still held while ``VALIDATE`` scans.

Revision ID: 0004_request_details
Revises: 0003_sign_in
Create Date: 2026-11-23
"""

from alembic import op
from sqlalchemy import text
from sqlalchemy.engine import Connection

from migrations.requests_rebuild import index_name, table

revision = "0004_request_details"
down_revision = "0003_sign_in"
branch_labels = None
depends_on = None
# Changes service_requests through requests_rebuild.table(), so it runs before the swap.
REBUILD_AWARE = True


def upgrade_sql() -> str:
    requests = table()
    return f"""
-- No statement_timeout, as in 0002_emergent_contacts; lock waits are bounded
-- by lock_timeout.
-- Not CONCURRENTLY, which cannot run inside the upgrade's one transaction.
-- SHARE on event_log stops its writers only, and nothing writes it during a
-- deploy. Built before the ALTER below, so it holds no reader up.
-- squawk-ignore require-statement-timeout,require-concurrent-index-creation
CREATE INDEX idx_event_log_request ON event_log (target_request_id, created_at);
-- Not CONCURRENTLY either. SHARE on {requests} stops writers, not readers.
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX {index_name("idx_service_requests_supplier_address")} ON {requests} (lower(btrim(supplier_email)));
-- One ALTER, so one lock and one validating scan (see the docstring).
ALTER TABLE {requests}
    -- An odometer in km or miles stays far below 2^31.
    -- squawk-ignore prefer-bigint-over-int
    ADD COLUMN odometer INTEGER,
    ADD COLUMN location TEXT,
    -- Validated at once, in the upgrade's transaction (see the docstring).
    -- squawk-ignore constraint-missing-not-valid
    ADD CONSTRAINT service_requests_odometer_check CHECK (odometer >= 0);
"""


def upgrade():
    op.execute(upgrade_sql())


def data_a_downgrade_discards(connection: Connection) -> list[str]:
    """Requests whose odometer or location the downgrade would drop (env.py asks first)."""
    count = connection.execute(
        text(
            "SELECT count(*) FROM service_requests"
            " WHERE odometer IS NOT NULL OR location IS NOT NULL"
        )
    ).scalar()
    if not count:
        return []
    return [f"service_requests: {count} requests would lose their odometer or location"]


def downgrade():
    op.drop_index("idx_service_requests_supplier_address", table_name="service_requests")
    op.drop_index("idx_event_log_request", table_name="event_log")
    op.drop_constraint(op.f("service_requests_odometer_check"), "service_requests", type_="check")
    op.drop_column("service_requests", "location")
    op.drop_column("service_requests", "odometer")
