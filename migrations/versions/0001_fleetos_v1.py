"""FleetOS v1: the schema production databases have before emergent contacts.

On an empty database this creates the v1 tables. On a live v1 database (which
has never been under Alembic) it adopts them and changes nothing: every
statement is ``IF NOT EXISTS``. A database that has only some of the v1
tables, or v1 tables missing v1 columns, is not one we know how to upgrade,
so the revision refuses it before touching anything.

Revision ID: 0001_fleetos_v1
Revises:
Create Date: 2026-11-23
"""

from alembic import op

revision = "0001_fleetos_v1"
down_revision = None
branch_labels = None
depends_on = None

# (table, column) pairs a v1 database has; adoption checks them all.
V1_COLUMNS = {
    "companies": ("company_id", "name", "company_type", "email_domain", "created_at"),
    "users": ("user_id", "company_id", "email", "full_name", "created_at", "last_login_at"),
    "service_requests": (
        "request_id",
        "created_by_user_id",
        "supplier_user_id",
        "supplier_email",
        "vehicle",
        "title",
        "description",
        "priority",
        "status",
        "created_at",
        "updated_at",
    ),
}


def _expected_columns_sql() -> str:
    rows = ", ".join(
        f"('{table}', '{column}')" for table, columns in V1_COLUMNS.items() for column in columns
    )
    return f"(VALUES {rows}) AS expected(table_name, column_name)"


# Refuse a half-v1 database: some v1 tables present, or present without v1 columns.
REFUSE_UNKNOWN_SHAPE = f"""
DO $$
DECLARE
    present_tables int;
    missing text;
BEGIN
    SELECT count(*) INTO present_tables FROM pg_tables
     WHERE schemaname = current_schema() AND tablename IN ('companies', 'users', 'service_requests');
    IF present_tables = 0 THEN
        RETURN;  -- an empty database: create v1 below
    END IF;
    SELECT string_agg(expected.table_name || '.' || expected.column_name, ', '
                      ORDER BY expected.table_name, expected.column_name)
      INTO missing
      FROM {_expected_columns_sql()}
     WHERE NOT EXISTS (
        SELECT 1 FROM information_schema.columns c
         WHERE c.table_schema = current_schema()
           AND c.table_name = expected.table_name
           AND c.column_name = expected.column_name);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION USING MESSAGE =
            'FleetOS refused the upgrade: this is not a FleetOS v1 database; it lacks '
            || missing || '.';
    END IF;
END
$$;
"""

V1_SCHEMA = """
-- v1's schema as production databases have it. On a v1 database every
-- statement is skipped (IF NOT EXISTS); on an empty one it makes empty
-- tables, at once. So nothing here can be slow, and v1's own choices stay,
-- such as timestamps without time zone holding UTC.
CREATE TABLE IF NOT EXISTS companies (
    company_id    UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name          TEXT NOT NULL,
    company_type  TEXT NOT NULL CHECK (company_type IN ('fleet', 'supplier')),
    email_domain  TEXT,
    -- squawk-ignore prefer-timestamp-tz
    created_at    TIMESTAMP NOT NULL DEFAULT NOW()
);

-- squawk-ignore require-statement-timeout
CREATE TABLE IF NOT EXISTS users (
    user_id       UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id    UUID NOT NULL REFERENCES companies(company_id),
    email         TEXT NOT NULL UNIQUE,
    full_name     TEXT,
    -- squawk-ignore prefer-timestamp-tz
    created_at    TIMESTAMP NOT NULL DEFAULT NOW(),
    -- squawk-ignore prefer-timestamp-tz
    last_login_at TIMESTAMP
);

CREATE TABLE IF NOT EXISTS service_requests (
    request_id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    created_by_user_id  UUID REFERENCES users(user_id),
    supplier_user_id    UUID REFERENCES users(user_id),
    supplier_email      TEXT,
    vehicle             TEXT NOT NULL,
    title               TEXT NOT NULL,
    description         TEXT,
    priority            TEXT NOT NULL DEFAULT 'normal'
                        CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    status              TEXT NOT NULL DEFAULT 'pending',
    -- squawk-ignore prefer-timestamp-tz
    created_at          TIMESTAMP NOT NULL DEFAULT NOW(),
    -- squawk-ignore prefer-timestamp-tz
    updated_at          TIMESTAMP NOT NULL DEFAULT NOW(),
    CONSTRAINT valid_status CHECK (status IN ('pending', 'open', 'in_progress', 'closed', 'rejected'))
);

CREATE INDEX IF NOT EXISTS idx_service_requests_created_by ON service_requests(created_by_user_id);
CREATE INDEX IF NOT EXISTS idx_users_company ON users(company_id);
"""


def upgrade():
    op.execute(REFUSE_UNKNOWN_SHAPE)
    op.execute(V1_SCHEMA)


def downgrade():
    # Below the baseline there is nothing to go back to but an empty database,
    # and on an adopted production database that would mean dropping its data.
    raise RuntimeError(
        "0001_fleetos_v1 is the v1 baseline: downgrading below it would drop the v1 tables "
        "and their data. Nothing was changed. Drop them by hand if that is really meant."
    )
