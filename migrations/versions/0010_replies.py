"""Replies: a reply to a FleetOS message acts on its request (issue 15).

Three new tables; nothing existing is changed:

* ``reply_addresses``: one row per request and address FleetOS mailed about
  it. A notification's ``Reply-To: reply+<token>@INBOUND_MAIL_DOMAIN`` names
  a row (the token is its id and a signature over what it says), so the
  token stays short enough for a mail address's local part (64 characters)
  and can be revoked (``revoked_at``). ``company_id`` is the company the
  address acts for on that request (its contact's, or the supplier the
  request resolved to for an address with no contact yet).
* ``inbound_messages``: the Message-ID of every reply processed (by
  ``receive-mail`` or the gateway, however often it arrives): processed once.
* ``held_replies``: a reply from an address other than the one the token was
  sent to, waiting for that address's owner to accept it as their note or
  discard it. Its files stay in attachment storage meanwhile (``attachments``
  holds what was taken in; ``flask fleetos attachments gc`` keeps them).

The foreign keys to service_requests point at ``requests_rebuild.table()``:
during a v1 upgrade that is the table being rebuilt, which the swap renames to
service_requests (a foreign key follows its table, not its name).
``downgrade`` drops the three tables, which restores 0009's schema exactly;
``data_a_downgrade_discards`` says what that loses first.

Revision ID: 0010_replies
Revises: 0009_phone_contacts
Create Date: 2026-12-03
"""

from alembic import op
from sqlalchemy import text
from sqlalchemy.engine import Connection

from migrations.requests_rebuild import table

revision = "0010_replies"
down_revision = "0009_phone_contacts"
branch_labels = None
depends_on = None

# Only references service_requests through requests_rebuild.table(), so it runs before the swap.
REBUILD_AWARE = True


def create_reply_addresses(requests: str) -> str:
    return f"""
-- Every timestamp below is timestamp holding UTC, not timestamptz, like every
-- FleetOS timestamp (see 0002_emergent_contacts, the app pins the session to UTC).
CREATE TABLE reply_addresses (
    reply_address_id TEXT NOT NULL,
    request_id UUID NOT NULL,
    address TEXT NOT NULL,
    company_id UUID NOT NULL,
    -- squawk-ignore prefer-timestamp-tz
    created_at TIMESTAMP DEFAULT now() NOT NULL,
    -- squawk-ignore prefer-timestamp-tz
    revoked_at TIMESTAMP,
    CONSTRAINT reply_addresses_pkey PRIMARY KEY (reply_address_id),
    CONSTRAINT reply_addresses_request_id_fkey FOREIGN KEY (request_id)
        REFERENCES {requests} (request_id) ON DELETE CASCADE,
    CONSTRAINT reply_addresses_company_id_fkey FOREIGN KEY (company_id)
        REFERENCES companies (company_id) ON DELETE CASCADE
)
"""


def create_inbound_messages(requests: str) -> str:
    return f"""
CREATE TABLE inbound_messages (
    message_key TEXT NOT NULL,
    channel TEXT NOT NULL,
    request_id UUID,
    outcome TEXT NOT NULL,
    -- squawk-ignore prefer-timestamp-tz
    received_at TIMESTAMP DEFAULT now() NOT NULL,
    CONSTRAINT inbound_messages_pkey PRIMARY KEY (message_key),
    CONSTRAINT inbound_messages_request_id_fkey FOREIGN KEY (request_id)
        REFERENCES {requests} (request_id) ON DELETE CASCADE
)
"""


def create_held_replies(requests: str) -> str:
    return f"""
CREATE TABLE held_replies (
    held_reply_id UUID DEFAULT gen_random_uuid() NOT NULL,
    request_id UUID NOT NULL,
    reply_address_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    sender TEXT NOT NULL,
    body TEXT DEFAULT '' NOT NULL,
    attachments JSONB,
    -- squawk-ignore prefer-timestamp-tz
    created_at TIMESTAMP DEFAULT now() NOT NULL,
    -- squawk-ignore prefer-timestamp-tz
    decided_at TIMESTAMP,
    decision TEXT,
    CONSTRAINT held_replies_pkey PRIMARY KEY (held_reply_id),
    CONSTRAINT held_replies_decision_check CHECK (decision IN ('accepted', 'discarded')),
    CONSTRAINT held_replies_request_id_fkey FOREIGN KEY (request_id)
        REFERENCES {requests} (request_id) ON DELETE CASCADE,
    CONSTRAINT held_replies_reply_address_id_fkey FOREIGN KEY (reply_address_id)
        REFERENCES reply_addresses (reply_address_id) ON DELETE CASCADE
)
"""


# The tables are created empty in this transaction: nobody else can see them
# yet, so building their indexes takes no lock anyone waits on.
INDEXES = [
    # One live reply address per request and address: every mail about the
    # request to that address carries the same one.
    "CREATE UNIQUE INDEX uq_reply_addresses_live ON reply_addresses (request_id, address)"
    " WHERE revoked_at IS NULL",
    "CREATE INDEX idx_inbound_messages_request ON inbound_messages (request_id)",
    "CREATE INDEX idx_held_replies_request ON held_replies (request_id)",
    "CREATE INDEX idx_held_replies_reply_address ON held_replies (reply_address_id)",
]


def upgrade():
    requests = table()
    op.execute(create_reply_addresses(requests))
    op.execute(create_inbound_messages(requests))
    op.execute(create_held_replies(requests))
    for statement in INDEXES:
        op.execute(f"-- squawk-ignore require-concurrent-index-creation\n{statement}")


def data_a_downgrade_discards(connection: Connection) -> list[str]:
    """What dropping the three tables loses (env.py asks first).

    The record of messages processed (``inbound_messages``) guards only against
    processing one twice, and a downgraded FleetOS takes no replies: not counted.
    """
    addresses, held = connection.execute(
        text(
            "SELECT (SELECT count(*) FROM reply_addresses WHERE revoked_at IS NULL),"
            "       (SELECT count(*) FROM held_replies WHERE decided_at IS NULL)"
        )
    ).one()
    lost = []
    if addresses:
        lost.append(
            f"reply_addresses: {addresses} reply addresses in mail already sent would stop "
            "working (replies to them would be refused as unknown)"
        )
    if held:
        lost.append(f"held_replies: {held} replies held for their addressee to accept")
    return lost


def downgrade():
    op.execute("DROP TABLE held_replies")
    op.execute("DROP TABLE inbound_messages")
    op.execute("DROP TABLE reply_addresses")
