"""Sessions, invitations and abuse limits: what signing out, revoking and "new address" need.

* ``web_sessions``: one row per signed-in browser. The session cookie carries
  its ``session_id``, checked on every request, so signing out (``ended_at``)
  ends the session for every copy of the cookie, and "sign out on all
  devices" ends all of a contact's sessions. Cookies from before this
  revision carry no session id: those browsers sign in once more.
* ``invitations``: the invitations a company sent, listed on its page with
  "revoke". A revoked invitation's link (or a fresh one asked for with it)
  no longer lets anyone join. Invitations sent before this revision were
  never stored; their links still work while their inviter is a contact of
  the company, and cannot be listed or revoked.
* ``company_recipients``: the addresses each company has written to (a
  request, an invitation), so that FleetOS can limit how many *new*
  addresses a company writes to per day. Filled here from every request's
  ``supplier_email``, so the addresses a fleet already worked with are not new.

Only new tables: nothing existing is rewritten or locked beyond the reads of
``service_requests`` that fill ``company_recipients`` (one GROUP BY; during a
v1 upgrade, of the service_requests 0002 is building, through
``requests_rebuild.table()``, so it runs before the swap) and the SHARE ROW
EXCLUSIVE locks of the new foreign keys on ``companies`` and ``contacts``
(writers wait a moment, readers go on). ``company_recipients`` gets its key,
index and foreign key once it is filled.
``downgrade`` drops the three tables, which restores 0007's schema exactly;
``data_a_downgrade_discards`` says what that loses first.

Revision ID: 0008_sessions
Revises: 0007_verified_domains
Create Date: 2026-12-05
"""

from alembic import op
from sqlalchemy import text
from sqlalchemy.engine import Connection

from migrations.requests_rebuild import table
from migrations.sql import canonical_email

revision = "0008_sessions"
down_revision = "0007_verified_domains"
branch_labels = None
depends_on = None
# Reads service_requests through requests_rebuild.table() (during a v1 upgrade
# the fleet_company_id it groups by is only on the table 0002 is building), so
# it runs before the swap.
REBUILD_AWARE = True

CREATE_WEB_SESSIONS = """
-- Every timestamp below is timestamp holding UTC, not timestamptz, like every
-- FleetOS timestamp (see 0002_emergent_contacts, the app pins the session to UTC).
CREATE TABLE web_sessions (
    session_id UUID DEFAULT gen_random_uuid() NOT NULL,
    contact_id UUID NOT NULL,
    -- squawk-ignore prefer-timestamp-tz
    created_at TIMESTAMP DEFAULT now() NOT NULL,
    -- squawk-ignore prefer-timestamp-tz
    expires_at TIMESTAMP NOT NULL,
    -- squawk-ignore prefer-timestamp-tz
    ended_at TIMESTAMP,
    user_agent TEXT,
    CONSTRAINT web_sessions_pkey PRIMARY KEY (session_id),
    CONSTRAINT web_sessions_contact_id_fkey FOREIGN KEY (contact_id)
        REFERENCES contacts (contact_id) ON DELETE CASCADE
)
"""

CREATE_INVITATIONS = """
CREATE TABLE invitations (
    invitation_id UUID DEFAULT gen_random_uuid() NOT NULL,
    company_id UUID NOT NULL,
    address TEXT NOT NULL,
    display_name TEXT,
    invited_by_contact_id UUID,
    -- squawk-ignore prefer-timestamp-tz
    created_at TIMESTAMP DEFAULT now() NOT NULL,
    -- squawk-ignore prefer-timestamp-tz
    accepted_at TIMESTAMP,
    -- squawk-ignore prefer-timestamp-tz
    revoked_at TIMESTAMP,
    revoked_by_contact_id UUID,
    CONSTRAINT invitations_pkey PRIMARY KEY (invitation_id),
    CONSTRAINT invitations_company_id_fkey FOREIGN KEY (company_id)
        REFERENCES companies (company_id) ON DELETE CASCADE,
    CONSTRAINT invitations_invited_by_contact_id_fkey FOREIGN KEY (invited_by_contact_id)
        REFERENCES contacts (contact_id) ON DELETE SET NULL,
    CONSTRAINT invitations_revoked_by_contact_id_fkey FOREIGN KEY (revoked_by_contact_id)
        REFERENCES contacts (contact_id) ON DELETE SET NULL
)
"""


# company_recipients is made from what it holds: every address a fleet sent a
# request to, canonical (trimmed, lower-case, as contacts are: 0002 made the
# contacts of these same addresses with the same expression), since its
# first request there. CREATE TABLE AS may aggregate with parallel workers,
# which an INSERT ... SELECT may not (1.9-2.2 s against 2.5-2.7 s for about
# 400,000 addresses on a million requests). Its NOT NULLs and default follow
# (one scan of the new table), then its key, index and foreign key: one sort
# each, and one check of the key, instead of maintaining two indexes and
# checking the key row by row for every address (6.9 s before).
def create_company_recipients_sql() -> str:
    address = canonical_email("supplier_email")
    return f"""
CREATE TABLE company_recipients (company_id, address, first_written_at) AS
SELECT fleet_company_id, {address}, min(created_at)
  FROM {table()}
 WHERE fleet_company_id IS NOT NULL AND {address} <> ''
 GROUP BY fleet_company_id, {address};
-- The table was created by the statement above: no one else can see it, so
-- checking its rows for NULLs blocks no one.
ALTER TABLE company_recipients
    -- squawk-ignore adding-not-nullable-field
    ALTER COLUMN company_id SET NOT NULL,
    -- squawk-ignore adding-not-nullable-field
    ALTER COLUMN address SET NOT NULL,
    -- squawk-ignore adding-not-nullable-field
    ALTER COLUMN first_written_at SET NOT NULL,
    ALTER COLUMN first_written_at SET DEFAULT now();
"""


# The tables are created in this transaction: nobody else can see them yet,
# so building their indexes and checking their keys takes no lock anyone
# waits on (the foreign key's SHARE ROW EXCLUSIVE on companies stops writers
# only, and the v1 ones already wait on 0002's SHARE lock).
INDEXES = [
    "CREATE INDEX idx_web_sessions_contact ON web_sessions (contact_id) WHERE ended_at IS NULL",
    "CREATE INDEX idx_web_sessions_expires ON web_sessions (expires_at)",
    "CREATE INDEX idx_invitations_company ON invitations (company_id, created_at)",
    "CREATE INDEX idx_invitations_address ON invitations (address)",
]

KEYS_OF_COMPANY_RECIPIENTS = """
-- Added to the table made above (see create_company_recipients_sql).
ALTER TABLE company_recipients ADD CONSTRAINT company_recipients_pkey PRIMARY KEY (company_id, address);
CREATE INDEX idx_company_recipients_first ON company_recipients (company_id, first_written_at);
-- Checked at once: NOT VALID would only leave the check for later, and no
-- one else sees the table yet.
ALTER TABLE company_recipients ADD CONSTRAINT company_recipients_company_id_fkey
    FOREIGN KEY (company_id) REFERENCES companies (company_id) ON DELETE CASCADE;
"""


def upgrade():
    op.execute(CREATE_WEB_SESSIONS)
    op.execute(CREATE_INVITATIONS)
    for statement in INDEXES:
        op.execute(f"-- squawk-ignore require-concurrent-index-creation\n{statement}")
    op.execute(create_company_recipients_sql())
    op.execute(KEYS_OF_COMPANY_RECIPIENTS)


def data_a_downgrade_discards(connection: Connection) -> list[str]:
    """What dropping the three tables loses (env.py asks first).

    Addresses a fleet sent a request to are not lost: the upgrade records them
    again from service_requests. Other addresses (invitations) are.
    """
    sessions, invitations, revoked, addresses = connection.execute(
        text(
            "SELECT (SELECT count(*) FROM web_sessions"
            "         WHERE ended_at IS NULL AND expires_at > now() AT TIME ZONE 'UTC'),"
            "       (SELECT count(*) FROM invitations),"
            "       (SELECT count(*) FROM invitations WHERE revoked_at IS NOT NULL),"
            "       (SELECT count(*) FROM company_recipients cr"
            "         WHERE NOT EXISTS (SELECT 1 FROM service_requests r"
            "                            WHERE r.fleet_company_id = cr.company_id"
            # Also as 0008 first wrote them (trimmed of spaces only): databases
            # upgraded then still hold those, and they are not lost either.
            "                              AND cr.address IN"
            f"                                  ({canonical_email('r.supplier_email')},"
            "                                   lower(btrim(r.supplier_email)))))"
        )
    ).one()
    lost = []
    if sessions:
        lost.append(f"web_sessions: {sessions} signed-in sessions would end")
    if invitations:
        lost.append(
            f"invitations: {invitations} invitations, {revoked} of them revoked (the links "
            "of revoked ones would work again while their inviter is a contact)"
        )
    if addresses:
        lost.append(
            f"company_recipients: {addresses} addresses written to other than by a request "
            "(they would count as new addresses again)"
        )
    return lost


def downgrade():
    op.execute("DROP TABLE company_recipients")
    op.execute("DROP TABLE invitations")
    op.execute("DROP TABLE web_sessions")
