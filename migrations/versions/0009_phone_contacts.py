"""Phone contacts: one-time codes and short links beside every link, SMS refs and opt-outs.

* ``link_credentials``: what a message carried beside its signed link (one row
  per link id, ``jti``): the 6-digit code (hashed) that signs in on whatever
  device types it, and the short key of ``BASE_URL/s/<key>`` (an SMS has room
  for no more). The row keeps the signed link itself until it is used (the
  code and the short key resolve to it) and expires with it; using either
  burns both, through the link's id in ``used_link_tokens``.
* ``sms_request_refs``: the short "Ref 4821" an SMS about a request carries,
  per (number, request), so a reply can name its request. A number's refs
  are its own: a guessed ref reaches nothing of anyone else's. It also says
  which requests were sent to a number that is no contact yet (it emerges on
  its first reply).
* ``sms_opt_outs``: numbers that texted STOP; FleetOS sends them no SMS until
  they text START.
* ``sms_received``: the gateway's id of every SMS reply acted on (Twilio's
  ``MessageSid``, the webhook's ``id``), so a gateway that posts one twice
  (a retry after a timeout) gets it acted on once.

Only new tables, created empty in this transaction: nothing existing is
rewritten or locked. ``sms_request_refs`` references service_requests through
``requests_rebuild.table()`` (the table being rebuilt during a v1 upgrade).
``downgrade`` drops the four tables, which restores 0008's schema exactly;
``data_a_downgrade_discards`` says what that loses first.

Revision ID: 0009_phone_contacts
Revises: 0008_sessions
Create Date: 2026-12-03
"""

from alembic import op
from sqlalchemy import text
from sqlalchemy.engine import Connection

from migrations import requests_rebuild

revision = "0009_phone_contacts"
down_revision = "0008_sessions"
branch_labels = None
depends_on = None

# Does not touch service_requests, so it runs before 0002's swap (requests_rebuild.py).
REBUILD_AWARE = True

CREATE_LINK_CREDENTIALS = """
CREATE TABLE link_credentials (
    jti TEXT NOT NULL,
    contact_value TEXT NOT NULL,
    token TEXT,
    code_hash TEXT,
    short_key TEXT,
    -- A handful at most (the code dies at 5).
    -- squawk-ignore prefer-bigint-over-int
    wrong_tries INTEGER DEFAULT 0 NOT NULL,
    -- timestamp holding UTC, not timestamptz, like every FleetOS timestamp
    -- (see 0002_emergent_contacts: the app pins the session to UTC).
    -- squawk-ignore prefer-timestamp-tz
    expires_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    -- squawk-ignore prefer-timestamp-tz
    created_at TIMESTAMP WITHOUT TIME ZONE DEFAULT now() NOT NULL,
    CONSTRAINT link_credentials_pkey PRIMARY KEY (jti),
    CONSTRAINT link_credentials_short_key_key UNIQUE (short_key)
)
"""


def create_sms_request_refs() -> str:
    return f"""
CREATE TABLE sms_request_refs (
    address TEXT NOT NULL,
    request_id UUID NOT NULL,
    ref TEXT NOT NULL,
    -- squawk-ignore prefer-timestamp-tz
    created_at TIMESTAMP WITHOUT TIME ZONE DEFAULT now() NOT NULL,
    CONSTRAINT sms_request_refs_pkey PRIMARY KEY (address, request_id),
    CONSTRAINT sms_request_refs_address_ref_key UNIQUE (address, ref),
    CONSTRAINT sms_request_refs_request_id_fkey FOREIGN KEY (request_id)
        REFERENCES {requests_rebuild.table()} (request_id) ON DELETE CASCADE
)
"""


CREATE_SMS_OPT_OUTS = """
CREATE TABLE sms_opt_outs (
    address TEXT NOT NULL,
    -- squawk-ignore prefer-timestamp-tz
    opted_out_at TIMESTAMP WITHOUT TIME ZONE DEFAULT now() NOT NULL,
    CONSTRAINT sms_opt_outs_pkey PRIMARY KEY (address)
)
"""

CREATE_SMS_RECEIVED = """
CREATE TABLE sms_received (
    gateway_id TEXT NOT NULL,
    -- squawk-ignore prefer-timestamp-tz
    received_at TIMESTAMP WITHOUT TIME ZONE DEFAULT now() NOT NULL,
    CONSTRAINT sms_received_pkey PRIMARY KEY (gateway_id)
)
"""

# Indexes on tables created in this same transaction: nobody else can see
# them yet, so there is nothing for CONCURRENTLY to spare.
INDEXES = {
    "idx_link_credentials_contact": "link_credentials (contact_value, expires_at)",
    "idx_link_credentials_expires": "link_credentials (expires_at)",
    "idx_sms_request_refs_request": "sms_request_refs (request_id)",
}


def upgrade():
    op.execute(CREATE_LINK_CREDENTIALS)
    op.execute(create_sms_request_refs())
    op.execute(CREATE_SMS_OPT_OUTS)
    op.execute(CREATE_SMS_RECEIVED)
    for name, target in INDEXES.items():
        op.execute(
            f"-- squawk-ignore require-concurrent-index-creation\nCREATE INDEX {name} ON {target}"
        )


def data_a_downgrade_discards(connection: Connection) -> list[str]:
    """What dropping the four tables loses (env.py asks first).

    The ids of replies acted on (``sms_received``) guard only against a gateway's
    retry, and a downgraded FleetOS takes no SMS: not counted.
    """
    codes, refs, stopped = connection.execute(
        text(
            "SELECT (SELECT count(*) FROM link_credentials"
            "         WHERE token IS NOT NULL AND expires_at > now() AT TIME ZONE 'UTC'),"
            "       (SELECT count(*) FROM sms_request_refs),"
            "       (SELECT count(*) FROM sms_opt_outs)"
        )
    ).one()
    lost = []
    if codes:
        lost.append(
            f"link_credentials: {codes} unused codes and short links would stop working "
            "(their messages' long links would still work)"
        )
    if refs:
        lost.append(f"sms_request_refs: {refs} refs that SMS replies name their request by")
    if stopped:
        lost.append(
            f"sms_opt_outs: {stopped} numbers that texted STOP (upgrading again would "
            "text them again)"
        )
    return lost


def downgrade():
    op.execute("DROP TABLE sms_received")
    op.execute("DROP TABLE sms_opt_outs")
    op.execute("DROP TABLE sms_request_refs")
    op.execute("DROP TABLE link_credentials")
