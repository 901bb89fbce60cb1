"""Verified domains, one supplier per new address, and mail the worker decides.

* ``domain_claims``: a company's claim to a mail domain, with the token it
  publishes as a DNS TXT record (``fleetos-verification=<token>``). A check
  that finds the record sets ``companies.email_domain``, which from now on
  means *verified*: only a verified domain routes requests and lets people
  join. A unique index on ``lower(btrim(email_domain))`` makes one verified
  owner per domain a database fact, also when two checks race.
* Domains already registered: those a v1 administrator registered count as
  verified and stay (where several companies registered one domain, the
  oldest keeps it). Those a sign-up registered (FleetOS used to take the
  founder's domain, proved by nothing: an attack claimed ``hotmail.fr`` that
  way) are taken off the company and become pending claims it can prove.
  Public mail domains a v1 administrator registered stay stored but mean
  nothing: the app never routes by one, nor shows one.
* ``companies.emerged_from_address`` (unique): a supplier that emerged from a
  request sent to a new address remembers that address, so the next request
  there finds it instead of making another company. Suppliers that repeated
  requests already duplicated are merged: their requests, contacts and events
  move to one of them (the one whose address has signed in, else the
  oldest), and each merge is recorded as a ``company.merged`` event.
* ``outbox_messages.context`` and the status ``withheld``: some messages are
  composed by the delivery worker, which decides what, if anything, an
  address is sent, so that a web request does the same work whoever the
  address belongs to.

Downgrade: the schema returns exactly to 0006's; every domain this upgrade
took off a company is put back as it was stored. Merged suppliers stay
merged: 0006 reads merged data as it reads any, and splitting them again
would only bring the bug back (the merge events say what was merged). Mail
0006 cannot represent: ``withheld`` becomes ``failed``, and a message still
waiting to be composed is ``expired`` (the person asks again).

Locks (held until COMMIT, the upgrade being one transaction): adding
``emerged_from_address`` (and its unique constraint) takes ACCESS EXCLUSIVE
on ``companies``. On a database already at 0006 it is taken here, in short
attempts (``requests_rebuild.lock_in_short_attempts_sql``), and readers of
companies wait from here until COMMIT. During a v1 upgrade, where it would
hold them through 0008's fill of company_recipients and the rest of the run
(3 to 7 s per million requests on a busy 2-core machine), the four
statements that need it (the column, the addresses of the suppliers that
stay, the unique index and constraint) are handed to the swap
(``requests_rebuild.at_swap``): it locks companies together with
service_requests in the same short attempts and runs them just before it
swaps, so readers of companies wait only as long as readers of
service_requests (see docs/deployment.md). Merging suppliers reads companies
and deletes the merged ones under the SHARE lock 0002 took (v1 writers wait,
readers go on); the column does not exist until the swap, so no later
revision of the run may use it. Moving requests to the supplier that stays
goes through ``requests_rebuild.table()``: during a v1 upgrade, onto the
service_requests 0002 is building, which no one else sees yet.
``outbox_messages`` is only locked against its own readers on a database
already at 0006 (on a v1 upgrade, 0003 created it in the same transaction).

Revision ID: 0007_verified_domains
Revises: 0006_reliable_delivery
Create Date: 2026-12-04
"""

from alembic import op
from sqlalchemy import text
from sqlalchemy.engine import Connection

from migrations.requests_rebuild import at_swap, lock_in_short_attempts_sql, rebuilding, table

revision = "0007_verified_domains"
down_revision = "0006_reliable_delivery"
branch_labels = None
depends_on = None
# Reads and moves requests through requests_rebuild.table() (during a v1
# upgrade, supplier_company_id is only on the table 0002 is building), so it
# runs before the swap.
REBUILD_AWARE = True

SOURCE = "0007_verified_domains"

CREATE_DOMAIN_CLAIMS = """
CREATE TABLE domain_claims (
    claim_id UUID NOT NULL DEFAULT gen_random_uuid(),
    company_id UUID NOT NULL,
    domain TEXT NOT NULL,
    token TEXT NOT NULL,
    claimed_by_contact_id UUID,
    -- timestamps hold UTC without a zone, like every FleetOS timestamp
    -- (0002_emergent_contacts pins the session to UTC).
    -- squawk-ignore prefer-timestamp-tz
    created_at TIMESTAMP NOT NULL DEFAULT now(),
    -- squawk-ignore prefer-timestamp-tz
    checked_at TIMESTAMP,
    -- squawk-ignore prefer-timestamp-tz
    verified_at TIMESTAMP,
    unverified_registration TEXT,
    CONSTRAINT domain_claims_pkey PRIMARY KEY (claim_id),
    CONSTRAINT domain_claims_company_id_fkey FOREIGN KEY (company_id)
        REFERENCES companies (company_id) ON DELETE CASCADE,
    CONSTRAINT domain_claims_claimed_by_contact_id_fkey FOREIGN KEY (claimed_by_contact_id)
        REFERENCES contacts (contact_id) ON DELETE SET NULL,
    CONSTRAINT domain_claims_company_id_domain_key UNIQUE (company_id, domain),
    CONSTRAINT domain_claims_token_key UNIQUE (token),
    CONSTRAINT domain_claims_domain_check CHECK (domain = lower(btrim(domain)) AND domain <> '')
)
"""

# -- one supplier per new address ------------------------------------------------------------

# Suppliers that emerged from a request to an address (by the app, or by 0002
# from v1 data), as their company.created event says; never one with v1 users.
EMERGED = """
CREATE TEMP TABLE fleetos_0007_emerged ON COMMIT DROP AS
SELECT DISTINCT ON (c.company_id)
       c.company_id, lower(btrim(e.metadata ->> 'address')) AS address, c.created_at,
       EXISTS (SELECT 1 FROM contacts k WHERE k.company_id = c.company_id) AS signed_in
  FROM companies c
  JOIN event_log e ON e.company_id = c.company_id AND e.event_type = 'company.created'
 WHERE c.company_type = 'supplier'
   AND (e.metadata ->> 'via' = 'request' OR e.metadata ->> 'source' = '0002_emergent_contacts')
   AND btrim(coalesce(e.metadata ->> 'address', '')) <> ''
   AND NOT EXISTS (SELECT 1 FROM users u WHERE u.company_id = c.company_id)
 ORDER BY c.company_id, e.created_at
"""

# For each address, the company that stays: the one its owner signed in to, else the oldest.
MERGES = """
CREATE TEMP TABLE fleetos_0007_merges ON COMMIT DROP AS
SELECT company_id AS merged_id, address,
       first_value(company_id) OVER (
           PARTITION BY address ORDER BY signed_in DESC, created_at, company_id
       ) AS kept_id
  FROM fleetos_0007_emerged
"""


def record_merges_sql() -> str:
    return f"""
INSERT INTO event_log (event_type, company_id, metadata)
SELECT 'company.merged', m.kept_id,
       jsonb_build_object(
           'source', '{SOURCE}', 'address', m.address, 'merged_company_id', c.company_id,
           'merged_name', c.name, 'merged_created_at', c.created_at,
           'requests', (SELECT count(*) FROM {table()} r
                         WHERE r.supplier_company_id = c.company_id))
  FROM fleetos_0007_merges m
  JOIN companies c ON c.company_id = m.merged_id
 WHERE m.merged_id <> m.kept_id
"""


def move_to_kept_sql() -> list[str]:
    return [
        # The status counts follow by their trigger (0005).
        f"""
UPDATE {table()} r SET supplier_company_id = m.kept_id
  FROM fleetos_0007_merges m
 WHERE r.supplier_company_id = m.merged_id AND m.merged_id <> m.kept_id
""",
        """
UPDATE contacts k SET company_id = m.kept_id
  FROM fleetos_0007_merges m
 WHERE k.company_id = m.merged_id AND m.merged_id <> m.kept_id
""",
        """
UPDATE event_log e SET company_id = m.kept_id
  FROM fleetos_0007_merges m
 WHERE e.company_id = m.merged_id AND m.merged_id <> m.kept_id
""",
        # Nothing refers to them any more (their zeroed counts go with them).
        """
DELETE FROM companies c
 USING fleetos_0007_merges m
 WHERE c.company_id = m.merged_id AND m.merged_id <> m.kept_id
""",
    ]


ADD_EMERGED_COLUMN = "ALTER TABLE companies ADD COLUMN emerged_from_address TEXT"

RECORD_EMERGED_ADDRESSES = """
UPDATE companies c SET emerged_from_address = m.address
  FROM fleetos_0007_merges m
 WHERE c.company_id = m.kept_id AND m.merged_id = m.kept_id
"""


ADD_EMERGED_UNIQUE = """
-- companies is small (one row per company) and the whole upgrade is one
-- transaction, which CONCURRENTLY cannot run in; the build takes a moment.
-- squawk-ignore require-concurrent-index-creation
CREATE UNIQUE INDEX companies_emerged_from_address_key ON companies (emerged_from_address)
"""

USE_EMERGED_UNIQUE = """
-- Made from the index just built, so no second scan.
-- squawk-ignore disallowed-unique-constraint
ALTER TABLE companies ADD CONSTRAINT companies_emerged_from_address_key
    UNIQUE USING INDEX companies_emerged_from_address_key
"""

# -- verified domains ------------------------------------------------------------------------

REGISTERED_BY_SIGN_UP = """
CREATE TEMP TABLE fleetos_0007_unproved ON COMMIT DROP AS
SELECT c.company_id, c.email_domain
  FROM companies c
 WHERE btrim(coalesce(c.email_domain, '')) <> ''
   AND EXISTS (SELECT 1 FROM event_log e
                WHERE e.company_id = c.company_id AND e.event_type = 'company.created'
                  AND e.metadata ->> 'via' = 'sign-up')
"""

# Among the rest (registered by v1 administrators), the oldest company keeps a domain.
REGISTERED_TWICE = """
INSERT INTO fleetos_0007_unproved (company_id, email_domain)
SELECT company_id, email_domain
  FROM (SELECT c.company_id, c.email_domain,
               row_number() OVER (PARTITION BY lower(btrim(c.email_domain))
                                  ORDER BY c.created_at, c.company_id) AS nth
          FROM companies c
         WHERE btrim(coalesce(c.email_domain, '')) <> ''
           AND c.company_id NOT IN (SELECT company_id FROM fleetos_0007_unproved)) ranked
 WHERE nth > 1
"""

UNPROVED_TO_CLAIMS = """
INSERT INTO domain_claims (company_id, domain, token, unverified_registration)
SELECT company_id, lower(btrim(email_domain)), replace(gen_random_uuid()::text, '-', ''),
       email_domain
  FROM fleetos_0007_unproved
"""

TAKE_UNPROVED_OFF = """
UPDATE companies c SET email_domain = NULL
  FROM fleetos_0007_unproved u
 WHERE c.company_id = u.company_id
"""

ADD_DOMAIN_UNIQUE = """
-- companies is small and the upgrade is one transaction (see above).
-- squawk-ignore require-concurrent-index-creation
CREATE UNIQUE INDEX uq_companies_email_domain ON companies (lower(btrim(email_domain)))
 WHERE btrim(email_domain) <> ''
"""

# -- mail the worker decides -----------------------------------------------------------------

DROP_STATUS_CHECK = """
-- Replaced at once by a wider check of the same name, in this transaction.
-- squawk-ignore ban-drop-constraint
ALTER TABLE outbox_messages DROP CONSTRAINT outbox_messages_status_check
"""

VALIDATE_STATUS_CHECK = """
-- Validated in the transaction that added it NOT VALID: one scan, no rewrite;
-- every row met the narrower check it replaces, so it cannot fail.
-- squawk-ignore constraint-missing-not-valid
ALTER TABLE outbox_messages VALIDATE CONSTRAINT outbox_messages_status_check
"""


def upgrade():
    op.execute(CREATE_DOMAIN_CLAIMS)
    op.execute("CREATE INDEX idx_domain_claims_domain ON domain_claims (domain)")

    # ADD COLUMN (and ADD CONSTRAINT) need ACCESS EXCLUSIVE on companies, held
    # until COMMIT: readers of companies wait from there on.
    emerged_address = (
        ADD_EMERGED_COLUMN,
        RECORD_EMERGED_ADDRESSES,
        ADD_EMERGED_UNIQUE,
        USE_EMERGED_UNIQUE,
    )
    if rebuilding():
        # A v1 upgrade: the swap, just before COMMIT, locks companies with
        # service_requests and runs them (the temporary table of merges lasts
        # until COMMIT). Nothing later in the run uses the column.
        op.execute(EMERGED)
        op.execute(MERGES)
        op.execute(record_merges_sql())
        for statement in move_to_kept_sql():
            op.execute(statement)
        at_swap("companies", *emerged_address)
    else:
        # Already v2: taken here, in short attempts, so that no reader queues
        # long behind the request while an older transaction still reads
        # companies (see requests_rebuild.lock_in_short_attempts_sql).
        op.execute(lock_in_short_attempts_sql("companies"))
        op.execute(ADD_EMERGED_COLUMN)
        op.execute(EMERGED)
        op.execute(MERGES)
        op.execute(record_merges_sql())
        for statement in move_to_kept_sql():
            op.execute(statement)
        for statement in emerged_address[1:]:
            op.execute(statement)

    op.execute(REGISTERED_BY_SIGN_UP)
    op.execute(REGISTERED_TWICE)
    op.execute(UNPROVED_TO_CLAIMS)
    op.execute(TAKE_UNPROVED_OFF)
    op.execute(ADD_DOMAIN_UNIQUE)

    op.execute("ALTER TABLE outbox_messages ADD COLUMN context JSONB")
    op.execute(DROP_STATUS_CHECK)
    op.execute(
        "ALTER TABLE outbox_messages ADD CONSTRAINT outbox_messages_status_check"
        " CHECK (status IN ('pending', 'sent', 'failed', 'expired', 'withheld')) NOT VALID"
    )
    op.execute(VALIDATE_STATUS_CHECK)


def data_a_downgrade_discards(connection: Connection) -> list[str]:
    """Claims and mail the downgrade would drop or give up on (env.py asks first).

    Claims this upgrade made from domains it took off a company are not lost:
    the downgrade puts those domains back. Merged suppliers stay merged, and a
    withheld message becoming failed is no loss: neither was sent.
    """
    claims, verified, uncomposed = connection.execute(
        text(
            "SELECT (SELECT count(*) FROM domain_claims WHERE unverified_registration IS NULL),"
            "       (SELECT count(*) FROM domain_claims"
            "         WHERE unverified_registration IS NULL AND verified_at IS NOT NULL),"
            "       (SELECT count(*) FROM outbox_messages"
            "         WHERE status = 'pending' AND context IS NOT NULL AND text_body IS NULL)"
        )
    ).one()
    lost = []
    if claims:
        lost.append(
            f"domain_claims: {claims} domain claims made since the upgrade ({verified} verified; "
            "a verified domain stays on its company, the claim and its token go)"
        )
    if uncomposed:
        lost.append(f"outbox_messages: {uncomposed} messages not yet composed would never be sent")
    return lost


def downgrade():
    # 0006 knows neither: a withheld message was not sent; one not composed yet cannot be.
    op.execute(
        "UPDATE outbox_messages SET status = 'failed', last_error = 'withheld by the worker'"
        " WHERE status = 'withheld'"
    )
    op.execute(
        "UPDATE outbox_messages SET status = 'expired', text_body = NULL, html_body = NULL,"
        " last_error = 'not composed before the downgrade to 0006'"
        " WHERE status = 'pending' AND context IS NOT NULL AND text_body IS NULL"
    )
    op.execute("ALTER TABLE outbox_messages DROP CONSTRAINT outbox_messages_status_check")
    op.execute(
        "ALTER TABLE outbox_messages ADD CONSTRAINT outbox_messages_status_check"
        " CHECK (status IN ('pending', 'sent', 'failed', 'expired'))"
    )
    op.execute("ALTER TABLE outbox_messages DROP COLUMN context")

    op.execute("DROP INDEX uq_companies_email_domain")
    op.execute(
        "UPDATE companies c SET email_domain = d.unverified_registration"
        "  FROM domain_claims d"
        " WHERE d.company_id = c.company_id AND d.unverified_registration IS NOT NULL"
        "   AND c.email_domain IS NULL"
    )
    op.execute("DROP TABLE domain_claims")
    op.execute("ALTER TABLE companies DROP COLUMN emerged_from_address")
