"""Attachments: photos and documents on requests and notes.

One new table, ``attachments``: a row per file (its safe name, type, size,
SHA-256, thumbnail, who added it, when, to which request and by which note or
creation event). The bytes are not in PostgreSQL: they are in the attachment
storage (``ATTACHMENT_STORAGE``: a directory or an S3 bucket), under their
SHA-256. Rows are written in the same transaction as the note or request that
carries them.

Nothing existing is rewritten or locked for long: the table is new, and its
foreign keys only take a SHARE ROW EXCLUSIVE lock on the tables they point at
(writers wait, readers go on) until COMMIT, the upgrade being one
transaction; an empty table has nothing to check. During a v1 upgrade its
foreign key to service_requests points at the table 0002 is building
(``requests_rebuild.table()``), which the swap renames: the key follows it.

Downgrading drops the table, and with it the record of which file belongs to
which request; the files stay in storage (``flask fleetos attachments gc``
removes them once nothing refers to them).

Revision ID: 0011_attachments
Revises: 0010_replies
Create Date: 2026-12-03
"""

from alembic import op
from sqlalchemy import text
from sqlalchemy.engine import Connection

from migrations.requests_rebuild import table

revision = "0011_attachments"
down_revision = "0010_replies"
branch_labels = None
depends_on = None
# Its foreign key references requests_rebuild.table(), so it runs before the
# swap: during a v1 upgrade it points at the table 0002 is building, which the
# swap renames to service_requests (a foreign key follows a table by its oid).
REBUILD_AWARE = True


def create_table_sql() -> str:
    return f"""
CREATE TABLE attachments (
    attachment_id UUID DEFAULT gen_random_uuid() NOT NULL,
    request_id UUID NOT NULL,
    event_id UUID,
    company_id UUID NOT NULL,
    contact_id UUID,
    filename TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    thumbnail_sha256 TEXT,
    -- Pixels: Pillow refuses images of more than about 89 million in all.
    -- squawk-ignore prefer-bigint-over-int
    width INTEGER,
    -- squawk-ignore prefer-bigint-over-int
    height INTEGER,
    channel TEXT DEFAULT 'web' NOT NULL,
    -- timestamp holding UTC, not timestamptz, like every FleetOS timestamp
    -- (see 0002_emergent_contacts: the app pins the session to UTC).
    -- squawk-ignore prefer-timestamp-tz
    created_at TIMESTAMP WITHOUT TIME ZONE DEFAULT now() NOT NULL,
    CONSTRAINT attachments_pkey PRIMARY KEY (attachment_id),
    CONSTRAINT attachments_content_type_check
        CHECK (content_type IN ('image/jpeg', 'image/png', 'image/webp', 'application/pdf')),
    CONSTRAINT attachments_size_bytes_check CHECK (size_bytes > 0),
    CONSTRAINT attachments_sha256_check CHECK (sha256 ~ '^[0-9a-f]{{64}}$'),
    CONSTRAINT attachments_thumbnail_sha256_check CHECK (thumbnail_sha256 ~ '^[0-9a-f]{{64}}$'),
    CONSTRAINT attachments_request_id_fkey FOREIGN KEY (request_id)
        REFERENCES {table()} (request_id) ON DELETE CASCADE,
    CONSTRAINT attachments_event_id_fkey FOREIGN KEY (event_id)
        REFERENCES event_log (event_id) ON DELETE SET NULL,
    CONSTRAINT attachments_company_id_fkey FOREIGN KEY (company_id)
        REFERENCES companies (company_id) ON DELETE CASCADE,
    CONSTRAINT attachments_contact_id_fkey FOREIGN KEY (contact_id)
        REFERENCES contacts (contact_id) ON DELETE SET NULL
)
"""


# An index on a table created in this same transaction: nobody else can see
# the table yet, so there is nothing for CONCURRENTLY to spare.
INDEXES = {
    "idx_attachments_request": "attachments (request_id, created_at)",
    "idx_attachments_event": "attachments (event_id)",
    "idx_attachments_sha256": "attachments (sha256)",
    "idx_attachments_thumbnail_sha256": "attachments (thumbnail_sha256)",
}


def upgrade():
    op.execute(create_table_sql())
    op.execute(
        "COMMENT ON TABLE attachments IS"
        " 'Photos and documents on requests; the bytes are in attachment storage'"
    )
    for name, target in INDEXES.items():
        op.execute(
            f"-- squawk-ignore require-concurrent-index-creation\nCREATE INDEX {name} ON {target}"
        )


def data_a_downgrade_discards(connection: Connection) -> list[str]:
    """The record of which file belongs to which request (env.py asks first)."""
    files, requests = connection.execute(
        text("SELECT count(*), count(DISTINCT request_id) FROM attachments")
    ).one()
    if not files:
        return []
    return [
        f"attachments: {files} photos and documents on {requests} requests (the files stay in "
        "attachment storage, but nothing says which request they belong to)"
    ]


def downgrade():
    op.execute("DROP TABLE attachments")
