"""Reliable delivery: a stable Message-ID, an expiry, and a NOTIFY for the worker.

* ``outbox_messages.email_message_id``: the ``Message-ID`` header, fixed when
  a message is queued, so that every attempt to send it carries the same one
  and a receiver can drop a duplicate (delivery is at least once). Messages
  still pending get one here; sent ones keep none (their ids are history).
* ``outbox_messages.expires_at``: a message whose link has expired before it
  could be sent is not sent; its status becomes ``expired``.
* A trigger NOTIFYs ``fleetos_outbox`` when mail is queued (or made due again
  by hand), so the delivery worker, LISTENing, sends it at once instead of at
  its next poll; web processes never talk to SMTP.

Both columns are nullable without a default, so adding them rewrites nothing.
The status check is replaced by a wider one (it only admits one more value),
added NOT VALID and validated at once: every existing row met the narrower check.

Revision ID: 0006_reliable_delivery
Revises: 0005_dashboard
Create Date: 2026-11-25
"""

from email.utils import parseaddr

import sqlalchemy as sa
from alembic import op
from flask import current_app
from sqlalchemy import text
from sqlalchemy.engine import Connection

revision = "0006_reliable_delivery"
down_revision = "0005_dashboard"
branch_labels = None
depends_on = None
# Does not touch service_requests (only outbox_messages, created by 0003 in the
# same run on a v1 upgrade), so it runs before 0002's swap (requests_rebuild.py).
REBUILD_AWARE = True

CHANNEL = "fleetos_outbox"

NOTIFY_FUNCTION = f"""
CREATE FUNCTION fleetos_outbox_notify() RETURNS trigger AS $$
BEGIN
    -- Notifications are sent at commit, and only if it commits; PostgreSQL
    -- folds identical ones of one transaction into one.
    PERFORM pg_notify('{CHANNEL}', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""


ADD_EXPIRES_AT = """
-- timestamp holding UTC, not timestamptz, like every FleetOS timestamp
-- (see 0002_emergent_contacts: the app pins the session to UTC).
-- squawk-ignore prefer-timestamp-tz
ALTER TABLE outbox_messages ADD COLUMN expires_at TIMESTAMP
"""

DROP_STATUS_CHECK = """
-- Replaced at once by a wider check of the same name, in this transaction:
-- no client ever sees the table without it.
-- squawk-ignore ban-drop-constraint
ALTER TABLE outbox_messages DROP CONSTRAINT outbox_messages_status_check
"""

VALIDATE_STATUS_CHECK = """
-- Validated in the transaction that added it NOT VALID (the whole upgrade is
-- one transaction, and ADD COLUMN already holds ACCESS EXCLUSIVE on the
-- table): one sequential scan of outbox_messages, no rewrite. Every row met
-- the narrower check it replaces, so it cannot fail.
-- squawk-ignore constraint-missing-not-valid
ALTER TABLE outbox_messages VALIDATE CONSTRAINT outbox_messages_status_check
"""


def sender_domain() -> str:
    """The domain of the From address (as the app's new_message_id uses it)."""
    sender = current_app.config.get("MAIL_DEFAULT_SENDER") or ""
    return parseaddr(sender)[1].rpartition("@")[2] or "fleetos.invalid"


def upgrade():
    op.execute(ADD_EXPIRES_AT)
    op.execute("ALTER TABLE outbox_messages ADD COLUMN email_message_id TEXT")
    op.execute(
        sa.text(
            "UPDATE outbox_messages"
            " SET email_message_id = '<' || gen_random_uuid() || '@' || :domain || '>'"
            " WHERE status = 'pending'"
        ).bindparams(domain=sender_domain())
    )
    op.execute(DROP_STATUS_CHECK)
    op.execute(
        "ALTER TABLE outbox_messages ADD CONSTRAINT outbox_messages_status_check"
        " CHECK (status IN ('pending', 'sent', 'failed', 'expired')) NOT VALID"
    )
    op.execute(VALIDATE_STATUS_CHECK)
    op.execute(NOTIFY_FUNCTION)
    op.execute(
        "CREATE TRIGGER outbox_messages_queued AFTER INSERT ON outbox_messages"
        " FOR EACH STATEMENT EXECUTE FUNCTION fleetos_outbox_notify()"
    )
    # An operator who makes mail due again by hand (SET next_attempt_at = now())
    # wakes the worker too; the worker's own retries are scheduled in the future.
    op.execute(
        "CREATE TRIGGER outbox_messages_due_again AFTER UPDATE OF status, next_attempt_at"
        " ON outbox_messages FOR EACH ROW"
        " WHEN (NEW.status = 'pending' AND NEW.next_attempt_at <= now())"
        " EXECUTE FUNCTION fleetos_outbox_notify()"
    )


def data_a_downgrade_discards(connection: Connection) -> list[str]:
    """Mail not yet sent whose Message-ID or expiry the downgrade would drop (env.py asks first).

    An expired message becoming failed is no loss: neither was sent.
    """
    unsent = connection.execute(
        text(
            "SELECT count(*) FROM outbox_messages WHERE status = 'pending'"
            " AND (email_message_id IS NOT NULL OR expires_at IS NOT NULL)"
        )
    ).scalar()
    if not unsent:
        return []
    return [
        f"outbox_messages: {unsent} messages not yet sent would lose their Message-ID or "
        "expiry (a receiver could get one twice, or after its link has expired)"
    ]


def downgrade():
    op.execute("DROP TRIGGER outbox_messages_due_again ON outbox_messages")
    op.execute("DROP TRIGGER outbox_messages_queued ON outbox_messages")
    op.execute("DROP FUNCTION fleetos_outbox_notify()")
    # 0005 knows no 'expired': such a message was not sent, as a failed one.
    op.execute("UPDATE outbox_messages SET status = 'failed' WHERE status = 'expired'")
    op.execute("ALTER TABLE outbox_messages DROP CONSTRAINT outbox_messages_status_check")
    op.execute(
        "ALTER TABLE outbox_messages ADD CONSTRAINT outbox_messages_status_check"
        " CHECK (status IN ('pending', 'sent', 'failed'))"
    )
    op.execute("ALTER TABLE outbox_messages DROP COLUMN email_message_id")
    op.execute("ALTER TABLE outbox_messages DROP COLUMN expires_at")
