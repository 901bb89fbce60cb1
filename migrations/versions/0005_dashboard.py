"""Dashboard: keyset indexes per owner and status, and exact per-status counts.

A dashboard lists one company's requests in one status, newest first, a page
at a time by keyset (created_at, request_id). The two composite indexes make
every page, the first or the 400th, one index range scan.

Counting a big supplier's 200,000 requests on every poll would cost far more
than listing 50 of them, so ``request_status_counts`` keeps the count per
company, side (fleet or supplier) and status, maintained by a trigger on
service_requests in the same transaction as each change: exact, never stale.
It is filled under a SHARE lock (writers wait a moment, readers do not) so
that no change slips between the fill and the trigger.

Revision ID: 0005_dashboard
Revises: 0004_request_details
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_dashboard"
down_revision = "0004_request_details"
branch_labels = None
depends_on = None

TRIGGER_FUNCTION = """
CREATE FUNCTION fleetos_count_request_statuses() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND (OLD.status, OLD.fleet_company_id, OLD.supplier_company_id)
            IS NOT DISTINCT FROM (NEW.status, NEW.fleet_company_id, NEW.supplier_company_id) THEN
        RETURN NULL;
    END IF;
    -- Take the old row out of its counts, then put the new row in. Rows
    -- without an owner on one side (v1 leftovers) count on the other only.
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE request_status_counts SET n = n - 1
         WHERE (company_id, side, status) IN ((OLD.fleet_company_id, 'fleet', OLD.status),
                                               (OLD.supplier_company_id, 'supplier', OLD.status));
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO request_status_counts AS c (company_id, side, status, n)
        SELECT owner, side, NEW.status, 1
          FROM (VALUES (NEW.fleet_company_id, 'fleet'), (NEW.supplier_company_id, 'supplier'))
               AS sides(owner, side)
         WHERE owner IS NOT NULL
        ON CONFLICT (company_id, side, status) DO UPDATE SET n = c.n + 1;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""


def upgrade():
    op.create_index(
        "idx_service_requests_supplier_status_created",
        "service_requests",
        ["supplier_company_id", "status", sa.text("created_at DESC"), sa.text("request_id DESC")],
    )
    op.create_index(
        "idx_service_requests_fleet_status_created",
        "service_requests",
        ["fleet_company_id", "status", sa.text("created_at DESC"), sa.text("request_id DESC")],
    )
    op.create_table(
        "request_status_counts",
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("side", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "side IN ('fleet', 'supplier')", name=op.f("request_status_counts_side_check")
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.company_id"],
            ondelete="CASCADE",
            name=op.f("request_status_counts_company_id_fkey"),
        ),
        sa.PrimaryKeyConstraint(
            "company_id", "side", "status", name=op.f("request_status_counts_pkey")
        ),
        comment="Requests per company, side and status; kept exact by a trigger on service_requests",
    )
    op.execute("LOCK TABLE service_requests IN SHARE MODE")
    op.execute("""
        INSERT INTO request_status_counts (company_id, side, status, n)
        SELECT fleet_company_id, 'fleet', status, count(*) FROM service_requests
         WHERE fleet_company_id IS NOT NULL GROUP BY fleet_company_id, status
        UNION ALL
        SELECT supplier_company_id, 'supplier', status, count(*) FROM service_requests
         WHERE supplier_company_id IS NOT NULL GROUP BY supplier_company_id, status
    """)
    op.execute(TRIGGER_FUNCTION)
    op.execute("""
        CREATE TRIGGER service_requests_count_statuses
        AFTER INSERT OR DELETE OR UPDATE OF status, fleet_company_id, supplier_company_id
        ON service_requests FOR EACH ROW EXECUTE FUNCTION fleetos_count_request_statuses()
    """)


def downgrade():
    op.execute("DROP TRIGGER IF EXISTS service_requests_count_statuses ON service_requests")
    op.execute("DROP FUNCTION IF EXISTS fleetos_count_request_statuses()")
    op.drop_table("request_status_counts")
    op.drop_index("idx_service_requests_fleet_status_created", table_name="service_requests")
    op.drop_index("idx_service_requests_supplier_status_created", table_name="service_requests")
