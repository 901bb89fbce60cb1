"""Dashboard: keyset indexes per owner and status, and exact per-status counts.

A dashboard lists one company's requests in one status, newest first, a page
at a time by keyset (created_at, request_id). The two composite indexes make
every page, the first or the 400th, one index range scan.

Counting a big supplier's 200,000 requests on every poll would cost far more
than listing 50 of them, so ``request_status_counts`` keeps the count per
company, side (fleet or supplier) and status, maintained by a trigger on
service_requests in the same transaction as each change: exact, never stale.

Locks (held until COMMIT, the upgrade being one transaction):

* Upgrading a v1 database (0002 in the same run), the indexes, the counts and
  the trigger are built on the service_requests 0002 is building
  (``migrations/requests_rebuild.py``), which no other session can see yet,
  and no v1 writer can slip a change in (0002's SHARE lock): no one waits.
* On a database already at 0004, the indexes build under a SHARE lock on
  service_requests (writers wait, readers go on), which the counts' fill then
  takes explicitly, so that no change slips between the fill and the trigger;
  CREATE TRIGGER takes SHARE ROW EXCLUSIVE (readers still go on).

Revision ID: 0005_dashboard
Revises: 0004_request_details
Create Date: 2026-11-23
"""

from alembic import op

from migrations.requests_rebuild import index_name, rebuilding, table

revision = "0005_dashboard"
down_revision = "0004_request_details"
branch_labels = None
depends_on = None
# Changes service_requests through requests_rebuild.table(), so it runs before the swap.
REBUILD_AWARE = True

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


def upgrade_sql() -> str:
    requests = table()
    keyset_indexes = "\n".join(
        f"""-- squawk-ignore require-concurrent-index-creation{first}
CREATE INDEX {index_name(f"idx_service_requests_{side}_status_created")}
    ON {requests} ({side}_company_id, status, created_at DESC, request_id DESC);"""
        for side, first in (("supplier", ", require-statement-timeout"), ("fleet", ""))
    )
    # On a v1 upgrade, 0002's SHARE lock already keeps every writer out.
    share_lock = "" if rebuilding() else f"LOCK TABLE {requests} IN SHARE MODE;"
    return f"""
-- No statement_timeout, as in 0002_emergent_contacts; lock waits are bounded
-- by lock_timeout. Not CONCURRENTLY, which cannot run inside the upgrade's
-- one transaction; a SHARE lock stops writers, not readers.
{keyset_indexes}

CREATE TABLE request_status_counts (
    company_id UUID NOT NULL,
    side TEXT NOT NULL,
    status TEXT NOT NULL,
    -- A count per company and status, never near 2^31.
    -- squawk-ignore prefer-bigint-over-int
    n INTEGER NOT NULL,
    CONSTRAINT request_status_counts_pkey PRIMARY KEY (company_id, side, status),
    CONSTRAINT request_status_counts_side_check CHECK (side IN ('fleet', 'supplier'))
);
COMMENT ON TABLE request_status_counts IS 'Requests per company, side and status; kept exact by a trigger on service_requests';

{share_lock}
-- Counted into a temporary table first: CREATE TABLE AS may count with
-- parallel workers, INSERT ... SELECT never does (a third less time on a
-- million requests).
CREATE TEMP TABLE fleetos_0005_counts ON COMMIT DROP AS
SELECT fleet_company_id AS company_id, 'fleet' AS side, status, count(*) AS n FROM {requests}
 WHERE fleet_company_id IS NOT NULL GROUP BY fleet_company_id, status
UNION ALL
SELECT supplier_company_id, 'supplier', status, count(*) FROM {requests}
 WHERE supplier_company_id IS NOT NULL GROUP BY supplier_company_id, status;
INSERT INTO request_status_counts (company_id, side, status, n)
SELECT company_id, side, status, n FROM fleetos_0005_counts;
-- Its foreign key once it is filled: one check of every row, not one per row.
ALTER TABLE request_status_counts ADD CONSTRAINT request_status_counts_company_id_fkey
    FOREIGN KEY (company_id) REFERENCES companies (company_id) ON DELETE CASCADE;

{TRIGGER_FUNCTION};

CREATE TRIGGER service_requests_count_statuses
AFTER INSERT OR DELETE OR UPDATE OF status, fleet_company_id, supplier_company_id
ON {requests} FOR EACH ROW EXECUTE FUNCTION fleetos_count_request_statuses();
"""


def upgrade():
    op.execute(upgrade_sql())


def downgrade():
    op.execute("DROP TRIGGER IF EXISTS service_requests_count_statuses ON service_requests")
    op.execute("DROP FUNCTION IF EXISTS fleetos_count_request_statuses()")
    op.drop_table("request_status_counts")
    op.drop_index("idx_service_requests_fleet_status_created", table_name="service_requests")
    op.drop_index("idx_service_requests_supplier_status_created", table_name="service_requests")
