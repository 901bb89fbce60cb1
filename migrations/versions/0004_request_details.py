"""Request details (odometer, location) and the index behind a request's timeline.

Both columns are nullable with no default, so adding them only touches the
catalog (a brief lock, no table rewrite). The odometer check is added
NOT VALID and validated separately: every existing row is NULL, but
validation would still scan the table under the ALTER's lock.

``idx_event_log_request`` serves "this request's events, in order", which
every request page and notification reads. ``idx_service_requests_supplier_address``
finds the company an address was reached at (sign-in for a supplier that
emerged from a request, before it has any contact); it is an expression
index because v1 addresses are stored as typed. Both are built inside the
upgrade's transaction (a SHARE lock: readers carry on, writers wait).

Revision ID: 0004_request_details
Revises: 0003_sign_in
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_request_details"
down_revision = "0003_sign_in"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("service_requests", sa.Column("odometer", sa.Integer(), nullable=True))
    op.add_column("service_requests", sa.Column("location", sa.Text(), nullable=True))
    op.execute(
        "ALTER TABLE service_requests ADD CONSTRAINT service_requests_odometer_check"
        " CHECK (odometer >= 0) NOT VALID"
    )
    op.execute("ALTER TABLE service_requests VALIDATE CONSTRAINT service_requests_odometer_check")
    op.create_index("idx_event_log_request", "event_log", ["target_request_id", "created_at"])
    op.create_index(
        "idx_service_requests_supplier_address",
        "service_requests",
        [sa.text("lower(btrim(supplier_email))")],
    )


def downgrade():
    op.drop_index("idx_service_requests_supplier_address", table_name="service_requests")
    op.drop_index("idx_event_log_request", table_name="event_log")
    op.drop_constraint(op.f("service_requests_odometer_check"), "service_requests", type_="check")
    op.drop_column("service_requests", "location")
    op.drop_column("service_requests", "odometer")
