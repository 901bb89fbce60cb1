"""Sign-in: the mail outbox and the record of used links.

``outbox_messages`` holds every message FleetOS sends, written in the same
transaction as the change that causes it; ``used_link_tokens`` makes each
magic link single-use (its id is inserted once, atomically). Both are new
tables, so this revision takes no lock on existing ones.

The downgrade drops ``outbox_messages`` but keeps ``used_link_tokens`` (v1
never reads it): after a downgrade and a new upgrade, a link that was used
before still works no more. So the upgrade adopts a ``used_link_tokens``
that is already there.

Revision ID: 0003_sign_in
Revises: 0002_emergent_contacts
Create Date: 2026-11-23
"""

from alembic import op
from sqlalchemy import text
from sqlalchemy.engine import Connection

revision = "0003_sign_in"
down_revision = "0002_emergent_contacts"
branch_labels = None
depends_on = None
# Runs while service_requests is rebuilt (it does not touch service_requests).
REBUILD_AWARE = True

UPGRADE = """
CREATE TABLE outbox_messages (
    message_id BIGINT GENERATED ALWAYS AS IDENTITY,
    kind TEXT NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    text_body TEXT,
    html_body TEXT,
    dedupe_key TEXT,
    status TEXT DEFAULT 'pending' NOT NULL,
    -- A handful of delivery attempts (MAIL_MAX_ATTEMPTS).
    -- squawk-ignore prefer-bigint-over-int
    attempts INTEGER DEFAULT 0 NOT NULL,
    -- Every FleetOS timestamp is a timestamp holding UTC, as in v1 (the app
    -- pins each session to UTC), so columns compare without conversions.
    -- squawk-ignore prefer-timestamp-tz
    next_attempt_at TIMESTAMP WITHOUT TIME ZONE DEFAULT now() NOT NULL,
    last_error TEXT,
    -- squawk-ignore prefer-timestamp-tz
    created_at TIMESTAMP WITHOUT TIME ZONE DEFAULT now() NOT NULL,
    -- squawk-ignore prefer-timestamp-tz
    sent_at TIMESTAMP WITHOUT TIME ZONE,
    CONSTRAINT outbox_messages_pkey PRIMARY KEY (message_id),
    CONSTRAINT outbox_messages_status_check CHECK (status IN ('pending', 'sent', 'failed')),
    CONSTRAINT outbox_messages_dedupe_key_key UNIQUE (dedupe_key)
);

-- The table was created just above and is empty; the statement is instant.
-- squawk-ignore require-statement-timeout
CREATE INDEX idx_outbox_messages_due ON outbox_messages (next_attempt_at) WHERE status = 'pending';

-- IF NOT EXISTS: a downgrade keeps this table (see the docstring).
CREATE TABLE IF NOT EXISTS used_link_tokens (
    jti TEXT NOT NULL,
    purpose TEXT NOT NULL,
    contact_value TEXT NOT NULL,
    -- squawk-ignore prefer-timestamp-tz
    used_at TIMESTAMP WITHOUT TIME ZONE DEFAULT now() NOT NULL,
    CONSTRAINT used_link_tokens_pkey PRIMARY KEY (jti)
);
"""


def upgrade():
    op.execute(UPGRADE)


def data_a_downgrade_discards(connection: Connection) -> list[str]:
    """The mail the downgrade would drop (env.py asks first)."""
    total, unsent = connection.execute(
        text("SELECT count(*), count(*) FILTER (WHERE status = 'pending') FROM outbox_messages")
    ).one()
    if not total:
        return []
    return [f"outbox_messages: {total} messages ({unsent} not yet sent)"]


def downgrade():
    # used_link_tokens stays: a used link must never work again (see the docstring).
    op.drop_index("idx_outbox_messages_due", table_name="outbox_messages")
    op.drop_table("outbox_messages")
