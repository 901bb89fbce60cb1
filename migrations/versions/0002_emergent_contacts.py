"""Emergent contacts: companies own the work, contacts are emergent actors.

Creates everything the plan's SQL creates (contacts, the four company/contact
columns on service_requests, event_log, get_or_create_contact,
get_last_active_contact, the new valid_status) and migrates the v1 data that
the plan leaves out:

* statuses  pending->new, open->acknowledged, in_progress, closed->completed,
  rejected->declined; any other status refuses the upgrade;
* one contact per v1 user address (trimmed, lower-case), users differing
  only by case/spaces merged; the same address in two companies refuses;
* each request's fleet company (its creator's company) and supplier company
  (supplier user's company, else a user/contact with that exact address, else
  a supplier whose registered domain matches, never a public mail domain,
  else a new supplier company for that single address).

service_requests is not altered in place: the v2 table is built beside the
v1 one and swapped in at the very end (``migrations/requests_rebuild.py``).
Its rows, keys, constraints and indexes are those an in-place upgrade would
give; only the way there differs. No v1 value changes but ``status``, so
``flask db downgrade 0001_fleetos_v1`` restores the v1 tables exactly. The
revision adopts a database where someone ran part of the plan's SQL by hand
(values already in the new columns are kept), and running it again changes
nothing. It refuses, before changing anything, a service_requests with
columns, constraints, triggers, views, rules, policies or publications it does
not know (it could not carry them to the new table); plain indexes, grants,
owner and comments are carried over. It refuses, naming them, rows the v2
table cannot hold (a NULL title, an unknown priority: only where a DBA
dropped v1's own NOT NULL or CHECK), and a schema that already has a table
under one of the names the rebuild uses.

Locks, in order (all held until COMMIT, the upgrade being one transaction):

1. SHARE on companies, users, service_requests (and contacts if present),
   before anything is read: v1 writers wait, readers go on. A v1 write that
   was waiting fails cleanly once the upgrade commits (``refuse_v1_writes``).
2. New tables (contacts, event_log, the new service_requests, and the two
   lookup tables its fill joins, dropped right after it) are invisible to
   other sessions until COMMIT: filling and indexing them blocks no one.
   Foreign keys from them take SHARE ROW EXCLUSIVE on users, companies and
   contacts, and event_log's on the v1 service_requests; so does the guard
   trigger on users (writers wait; they already do; readers go on). New
   supplier companies are inserted under ROW EXCLUSIVE on companies, which
   conflicts with no reader either.
3. The swap (env.py, after the last revision of the run, or before the first
   one not marked REBUILD_AWARE; every revision up to 0011 is): ACCESS
   EXCLUSIVE on the v1 service_requests, then DROP and RENAME. Readers of
   service_requests wait from here to COMMIT: 0.02 to 0.25 s measured on a
   million requests on a busy machine; the lock is tried in short attempts so
   no reader queues long behind it.

Later revisions of the same run take their own locks (see their docstrings):
0007_verified_domains's ADD COLUMN on companies is handed to the swap
(``requests_rebuild.at_swap``), which locks companies with service_requests,
so readers of companies wait only as long as those of service_requests.

lock_timeout (env.py) bounds the wait for each lock. Disk: while it runs the
database holds the v1 table and the new one, with both sets of indexes; the
v1 table's space is freed at COMMIT (see docs/deployment.md).

No SQL below contains a percent sign: Alembic's ``--sql`` output and the
psycopg paramstyle would disagree on how to escape it. No SQL comment below
contains a colon either: ``op.execute`` reads a colon before a word as a bind
parameter, even inside a comment.

Linting: ``scripts/lint-migrations.sh`` runs squawk on every revision's
``--sql`` output. Each warning we accept is explained by an SQL comment right
above the statement, ending in a ``-- squawk-ignore <rule>`` line; squawk
honours that only on the line directly above the one it flags (for a column,
the column's own line), so keep the two lines together. The comments are part
of the SQL strings, so they also appear in the ``--sql`` output a DBA reads.

Revision ID: 0002_emergent_contacts
Revises: 0001_fleetos_v1
Create Date: 2026-11-23
"""

from alembic import context, op
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from migrations import requests_rebuild
from migrations.requests_rebuild import NEW_NAME_PREFIX, NEW_TABLE
from migrations.sql import canonical_domain, canonical_email

revision = "0002_emergent_contacts"
down_revision = "0001_fleetos_v1"
branch_labels = None
depends_on = None

MIGRATION_SOURCE = "0002_emergent_contacts"

STATUS_V1_TO_V2 = {
    "pending": "new",
    "open": "acknowledged",
    "in_progress": "in_progress",
    "closed": "completed",
    "rejected": "declined",
}
V2_STATUSES = ("new", "acknowledged", "in_progress", "completed", "declined")

# Frozen copy of fleetos.domains.PUBLIC_MAIL_DOMAINS as of this revision
# (a test keeps the two in step): addresses at these domains are never grouped
# into one company by their domain.
PUBLIC_MAIL_DOMAINS = (
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "yahoo.co.uk",
    "ymail.com",
    "outlook.com",
    "hotmail.com",
    "hotmail.co.uk",
    "live.com",
    "live.co.uk",
    "msn.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "aol.com",
    "proton.me",
    "protonmail.com",
    "pm.me",
    "gmx.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "mail.com",
    "yandex.com",
    "yandex.ru",
    "mail.ru",
    "zoho.com",
    "fastmail.com",
    "hey.com",
    "btinternet.com",
    "sky.com",
    "virginmedia.com",
    "talktalk.net",
    "comcast.net",
    "verizon.net",
    "att.net",
    "orange.fr",
    "free.fr",
    "laposte.net",
    "wanadoo.fr",
    "libero.it",
    "t-online.de",
    "bigpond.com",
    "shaw.ca",
    "rogers.com",
    "qq.com",
    "163.com",
    "126.com",
    "rediffmail.com",
)


def _sql_list(values) -> str:
    return ", ".join(f"'{value}'" for value in values)


def _status_case(mapping: dict[str, str], column: str = "status") -> str:
    whens = " ".join(f"WHEN '{old}' THEN '{new}'" for old, new in mapping.items())
    return f"CASE {column} {whens} ELSE {column} END"


# ---------------------------------------------------------------------------
# Preflight: refuse before changing anything.
# ---------------------------------------------------------------------------


def v1_check_still_guards(name: str, column: str, condition: str) -> tuple[str, str]:
    """SQL that tells whether service_requests still has v1's CHECK ``name``, validated.

    Returns the statement to run first (a temporary table declaring the same
    CHECK, whose definition PostgreSQL prints the way it prints v1's) and the
    condition, true when v1's constraint is there, validated and the same:
    then no row can break it, and nothing needs to be scanned for it.
    """
    model = f"fleetos_0002_v1_{column}"
    declare = (
        f"CREATE TEMP TABLE {model} (\n"
        f"    {column} TEXT CONSTRAINT {name} CHECK ({condition})\n) ON COMMIT DROP;"
    )
    guards = f"""EXISTS (SELECT 1 FROM pg_constraint c, pg_constraint v1
                WHERE c.conrelid = 'service_requests'::regclass AND c.conname = '{name}'
                  AND c.convalidated AND v1.conrelid = '{model}'::regclass
                  AND pg_get_constraintdef(c.oid) = pg_get_constraintdef(v1.oid))"""
    return declare, guards


# v1's own valid_status, when it is still there and validated, already rules
# out other statuses: then there is nothing to count (a scan of every request).
_DECLARE_V1_STATUSES, _V1_STATUSES_GUARDED = v1_check_still_guards(
    "valid_status", "status", f"status IN ({_sql_list(STATUS_V1_TO_V2)})"
)
REFUSE_UNKNOWN_STATUSES = f"""
{_DECLARE_V1_STATUSES}
DO $$
DECLARE
    unknown text;
BEGIN
    IF {_V1_STATUSES_GUARDED} THEN
        RETURN;
    END IF;
    SELECT string_agg(quote_literal(status) || ' (' || n || CASE WHEN n = 1 THEN ' row)' ELSE ' rows)' END,
                      ', ' ORDER BY status)
      INTO unknown
      FROM (SELECT status, count(*) AS n FROM service_requests
             WHERE status NOT IN ({_sql_list(STATUS_V1_TO_V2)}, {_sql_list(V2_STATUSES)})
             GROUP BY status) s;
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION USING MESSAGE =
            'FleetOS refused the upgrade: service_requests has statuses with no v2 meaning: '
            || unknown || '. Change them to one of {", ".join(STATUS_V1_TO_V2)} first.';
    END IF;
END
$$;
"""

# Under a nondeterministic collation (a DBA's case- or accent-insensitive ICU
# one) different text compares equal: joe@ and joé@, or an address with and
# without an invisible zero-width space. The upgrade matches requests to their
# suppliers' addresses and domains by equality, so such a column could give
# one company's request to another. Refused, naming the columns, rather than
# guessed at: v1's three tables, and contacts where a plan applied by hand
# made it.
REFUSE_NONDETERMINISTIC_COLLATIONS = """
DO $$
DECLARE
    found text;
BEGIN
    SELECT string_agg(c.relname || '.' || a.attname || ' (collation ' || quote_ident(co.collname) || ')',
                      ', ' ORDER BY c.relname, a.attnum)
      INTO found
      FROM pg_attribute a
      JOIN pg_class c ON c.oid = a.attrelid
      JOIN pg_collation co ON co.oid = a.attcollation
     WHERE a.attrelid IN (to_regclass('companies'), to_regclass('users'),
                          to_regclass('service_requests'), to_regclass('contacts'))
       AND a.attnum > 0 AND NOT a.attisdropped
       AND NOT co.collisdeterministic;
    IF found IS NOT NULL THEN
        RAISE EXCEPTION USING MESSAGE =
            'FleetOS refused the upgrade: ' || found || ' compare text with a nondeterministic '
            || 'collation, under which different addresses can count as one, so a request '
            || 'could go to the wrong company. Give them a deterministic collation first, '
            || 'for example ALTER TABLE users ALTER COLUMN email TYPE text COLLATE "default".';
    END IF;
END
$$;
"""

# Users whose addresses differ only by case/spaces become one contact, which
# can belong to only one company. So can an address that is already a contact.
REFUSE_ADDRESS_IN_TWO_COMPANIES = f"""
DO $$
DECLARE
    clashes text;
BEGIN
    CREATE TEMP TABLE fleetos_0002_addresses ON COMMIT DROP AS
        SELECT {canonical_email("u.email")} AS address, u.company_id
          FROM users u;
    IF to_regclass('contacts') IS NOT NULL THEN
        INSERT INTO fleetos_0002_addresses
             SELECT contact_value, company_id FROM contacts;
    END IF;

    SELECT string_agg(a.address || ' is in ' || a.names, '; ' ORDER BY a.address)
      INTO clashes
      FROM (SELECT address,
                   string_agg(DISTINCT '"' || c.name || '"', ' and ') AS names
              FROM fleetos_0002_addresses x
              JOIN companies c USING (company_id)
             GROUP BY address
            HAVING count(DISTINCT x.company_id) > 1) a;
    DROP TABLE fleetos_0002_addresses;
    IF clashes IS NOT NULL THEN
        RAISE EXCEPTION USING MESSAGE =
            'FleetOS refused the upgrade: an address can be a contact of one company only, but '
            || clashes || '. Correct or merge these v1 users first.';
    END IF;
END
$$;
"""

# Before the upgrade reads anything it resolves, v1 writers must stop: rows
# written between the reads and the rebuild would arrive unmigrated.
LOCK_V1_TABLES = """
-- SHARE conflicts with INSERT, UPDATE and DELETE, not with SELECT: a v1 app
-- still running has its writes wait (for this lock at most lock_timeout, and
-- once it is granted, until COMMIT), while its reads go on.
-- No statement_timeout for this upgrade, on purpose (squawk flags only the
-- first slow statement, this one, but the choice covers the whole upgrade).
-- Waiting for other sessions is bounded by the lock_timeout env.py sets; what
-- is left is work proportional to the data, done inside one transaction, so a
-- timeout could only turn a slow but correct upgrade into a rolled-back one
-- after it had held its locks. Its duration and the time readers wait are
-- measured beforehand with bench/migration_upgrade.py. env.py sets
-- statement_timeout to 0 for the upgrade's transaction, so one configured for
-- the role or database does not apply either.
-- squawk-ignore require-statement-timeout
LOCK TABLE companies, users, service_requests IN SHARE MODE;
DO $$
BEGIN
    IF to_regclass('contacts') IS NOT NULL THEN  -- a plan applied by hand, or a round trip
        LOCK TABLE contacts IN SHARE MODE;
    END IF;
END
$$;
"""

# ---------------------------------------------------------------------------
# PART 1: contacts (emergent)
# ---------------------------------------------------------------------------

CREATE_CONTACTS = """
CREATE TABLE IF NOT EXISTS contacts (
    contact_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id UUID NOT NULL REFERENCES companies(company_id) ON DELETE CASCADE,
    contact_value TEXT UNIQUE NOT NULL,
    contact_type TEXT CHECK (contact_type IN ('email', 'phone')),
    display_name TEXT,
    -- timestamp, not timestamptz, as the plan and every v1 table have it. The
    -- values are UTC (env.py and the app pin the session timezone to UTC), and
    -- fleetos.models maps every timestamp as a naive UTC datetime.
    -- squawk-ignore prefer-timestamp-tz
    first_seen_at TIMESTAMP DEFAULT NOW(),
    -- squawk-ignore prefer-timestamp-tz
    last_seen_at TIMESTAMP DEFAULT NOW()
);
-- idx_contacts_value repeats the unique index; the plan names it, and
-- `flask fleetos verify` checks for it, so it stays.
CREATE INDEX IF NOT EXISTS idx_contacts_company ON contacts(company_id);
CREATE INDEX IF NOT EXISTS idx_contacts_value ON contacts(contact_value);
CREATE INDEX IF NOT EXISTS idx_contacts_last_seen ON contacts(last_seen_at DESC);
COMMENT ON TABLE contacts IS 'Emergent contacts - created on first access, no signup required';
COMMENT ON COLUMN contacts.contact_value IS 'Canonical email (lowercase) or phone (E.164 format)';
COMMENT ON COLUMN contacts.first_seen_at IS 'When this contact first accessed FleetOS';
COMMENT ON COLUMN contacts.last_seen_at IS 'Most recent access (for "last active" routing)';
"""

# One contact per canonical v1 address: earliest first_seen, latest
# last_seen, the first non-empty name (oldest user first).
MIGRATE_USERS_TO_CONTACTS = f"""
INSERT INTO contacts (company_id, contact_value, contact_type, display_name, first_seen_at, last_seen_at)
SELECT (array_agg(u.company_id ORDER BY u.created_at, u.user_id))[1],
       {canonical_email("u.email")},
       'email',
       (array_agg(btrim(u.full_name) ORDER BY u.created_at, u.user_id)
            FILTER (WHERE btrim(u.full_name) <> ''))[1],
       min(u.created_at),
       max(coalesce(u.last_login_at, u.created_at))
  FROM users u
 GROUP BY {canonical_email("u.email")}
ON CONFLICT (contact_value) DO NOTHING;
"""

# ---------------------------------------------------------------------------
# PART 3: event_log (audit trail). Created before the requests are migrated,
# because the migration records the supplier companies it creates.
# ---------------------------------------------------------------------------

CREATE_EVENT_LOG = """
CREATE TABLE IF NOT EXISTS event_log (
    event_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    event_type TEXT NOT NULL,
    company_id UUID REFERENCES companies(company_id) ON DELETE CASCADE,
    contact_id UUID REFERENCES contacts(contact_id) ON DELETE SET NULL,
    target_request_id UUID REFERENCES service_requests(request_id) ON DELETE CASCADE,
    metadata JSONB,
    -- timestamp holding UTC, not timestamptz, like contacts.first_seen_at above.
    -- squawk-ignore prefer-timestamp-tz
    created_at TIMESTAMP DEFAULT NOW()
);
CREATE INDEX IF NOT EXISTS idx_event_log_company ON event_log(company_id);
CREATE INDEX IF NOT EXISTS idx_event_log_contact ON event_log(contact_id);
CREATE INDEX IF NOT EXISTS idx_event_log_created ON event_log(created_at DESC);
CREATE INDEX IF NOT EXISTS idx_event_log_type ON event_log(event_type);
COMMENT ON TABLE event_log IS 'Audit trail - tracks every access and action';
COMMENT ON COLUMN event_log.contact_id IS 'Which emergent contact acted';
"""

# ---------------------------------------------------------------------------
# PART 4: helper functions
# ---------------------------------------------------------------------------

# The plan's select-then-insert lets two concurrent first uses of one address
# both insert (one then fails on the unique key). INSERT ... ON CONFLICT is
# atomic. Canonicalisation matches fleetos.contacts.canonicalise for every
# address both accept: e-mail trimmed and lower-cased; phones in E.164.
CREATE_FUNCTIONS = f"""
-- Drop, then create, rather than CREATE OR REPLACE, which cannot change the
-- parameter names, defaults or result columns of a version of the plan's
-- function applied by hand. Both happen in the upgrade's one transaction, so
-- no other session ever sees the function missing, and no v1 code calls it.
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS get_or_create_contact(text, uuid, text, text);
CREATE FUNCTION get_or_create_contact(
    p_contact_value TEXT,
    p_company_id UUID,
    p_contact_type TEXT,
    p_display_name TEXT DEFAULT NULL
) RETURNS UUID AS $$
DECLARE
    v_type TEXT := coalesce(p_contact_type,
                            CASE WHEN position('@' IN p_contact_value) > 0 THEN 'email' ELSE 'phone' END);
    v_value TEXT;
    v_contact_id UUID;
BEGIN
    IF v_type = 'email' THEN
        v_value := {canonical_email("p_contact_value")};
        IF v_value !~ '^[^@[:space:]]+@[^@[:space:]]+[.][^@[:space:]]+$' THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = 'not an e-mail address: ' || coalesce(p_contact_value, 'NULL');
        END IF;
    ELSIF v_type = 'phone' THEN
        v_value := regexp_replace(btrim(p_contact_value), '[[:space:]().-]', '', 'g');
        IF left(v_value, 2) = '00' THEN
            v_value := '+' || substr(v_value, 3);
        END IF;
        IF v_value !~ '^[+][1-9][0-9]{{6,14}}$' THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = 'not a phone number in international format (+country code): '
                          || coalesce(p_contact_value, 'NULL');
        END IF;
    ELSE
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'contact_type must be email or phone, not ' || v_type;
    END IF;

    INSERT INTO contacts AS c (company_id, contact_value, contact_type, display_name,
                               first_seen_at, last_seen_at)
    VALUES (p_company_id, v_value, v_type, nullif(btrim(p_display_name), ''), now(), now())
    ON CONFLICT (contact_value) DO UPDATE
        SET last_seen_at = now(),
            display_name = coalesce(c.display_name, EXCLUDED.display_name)
    RETURNING c.contact_id INTO v_contact_id;
    RETURN v_contact_id;
END;
$$ LANGUAGE plpgsql;
COMMENT ON FUNCTION get_or_create_contact(text, uuid, text, text) IS 'Get existing or create emergent contact on first access';

-- Drop, then create, as for get_or_create_contact above.
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS get_last_active_contact(uuid);
CREATE FUNCTION get_last_active_contact(p_company_id UUID)
RETURNS TABLE(contact_id UUID, contact_value TEXT, last_seen_at TIMESTAMP) AS $$
BEGIN
    RETURN QUERY
    SELECT c.contact_id, c.contact_value, c.last_seen_at
      FROM contacts c
     WHERE c.company_id = p_company_id
     ORDER BY c.last_seen_at DESC NULLS LAST, c.contact_id
     LIMIT 1;
END;
$$ LANGUAGE plpgsql STABLE;
COMMENT ON FUNCTION get_last_active_contact(uuid) IS 'Find last active contact for org-level fallback notifications';
"""

# ---------------------------------------------------------------------------
# PART 2 with its data: service_requests rebuilt beside the v1 table, with
# the company and contact columns and every request's owners.
# ---------------------------------------------------------------------------

# v1's columns, in order, with their types (the rebuilt table has the same).
V1_REQUEST_COLUMNS = {
    "request_id": "uuid",
    "created_by_user_id": "uuid",
    "supplier_user_id": "uuid",
    "supplier_email": "text",
    "vehicle": "text",
    "title": "text",
    "description": "text",
    "priority": "text",
    "status": "text",
    # timestamp holding UTC, as in v1 (see contacts.first_seen_at).
    "created_at": "timestamp",
    "updated_at": "timestamp",
}
NEW_COLUMNS = (
    ("fleet_company_id", "companies(company_id)"),
    ("supplier_company_id", "companies(company_id)"),
    ("submitted_by_contact_id", "contacts(contact_id)"),
    ("assigned_to_contact_id", "contacts(contact_id)"),
)
V1_FOREIGN_KEYS = (
    ("created_by_user_id", "users(user_id)"),
    ("supplier_user_id", "users(user_id)"),
)
INDEXES = {
    "idx_service_requests_created_by": "created_by_user_id",  # v1's
    "idx_service_requests_fleet_company": "fleet_company_id",
    "idx_service_requests_supplier_company": "supplier_company_id",
    "idx_service_requests_submitted_by": "submitted_by_contact_id",
    "idx_service_requests_assigned_to": "assigned_to_contact_id",
}
PRIMARY_KEY = "service_requests_pkey"
V2_WRITE_GUARD = "refuse_v1_writes"


def _fkey(column: str) -> str:
    return f"service_requests_{column}_fkey"


# The v2 table's columns, in order: the v1 ones, then the plan's four.
COLUMN_TYPES = {**V1_REQUEST_COLUMNS, **{column: "uuid" for column, _ in NEW_COLUMNS}}
# Where the rebuild takes the plan's four from (lookup tables of resolve_owners_sql),
# unless the v1 row already has them (a plan applied by hand).
OWNERS_FROM = {
    "fleet_company_id": "creator.company_id",
    "supplier_company_id": "supplier_user.company_id, address.company_id",
    "submitted_by_contact_id": "creator.contact_id",
    "assigned_to_contact_id": "supplier_user.contact_id",
}
COLUMN_DEFAULTS = {
    "request_id": "gen_random_uuid()",
    "priority": "'normal'",
    "status": "'new'",
    "created_at": "now()",
    "updated_at": "now()",
}
CHECKS = {
    "service_requests_priority_check": "priority IN ('low', 'normal', 'high', 'urgent')",
    "valid_status": f"status IN ({_sql_list(V2_STATUSES)})",
}


# What the rebuild carries over from the v1 table by name. Anything else a
# DBA added is refused (below), except plain indexes, which are rebuilt too.
KNOWN_COLUMNS = tuple(COLUMN_TYPES)
NOT_NULL_COLUMNS = (
    "request_id",
    "vehicle",
    "title",
    "priority",
    "status",
    "created_at",
    "updated_at",
)
KNOWN_CONSTRAINTS = (
    PRIMARY_KEY,
    "service_requests_priority_check",
    "valid_status",
    *(_fkey(column) for column, _ in V1_FOREIGN_KEYS + NEW_COLUMNS),
)

REFUSE_WHAT_THE_REBUILD_CANNOT_CARRY = f"""
DO $$
DECLARE
    unknown text;
BEGIN
    SELECT string_agg(DISTINCT thing, ', ') INTO unknown
      FROM (SELECT 'column ' || a.attname AS thing
              FROM pg_attribute a
             WHERE a.attrelid = 'service_requests'::regclass AND a.attnum > 0 AND NOT a.attisdropped
               AND a.attname NOT IN ({_sql_list(KNOWN_COLUMNS)})
            UNION ALL
            SELECT 'column ' || a.attname || ' of type ' || format_type(a.atttypid, a.atttypmod)
              FROM pg_attribute a
              JOIN (VALUES {", ".join(f"('{column}', '{kind}'::regtype)" for column, kind in COLUMN_TYPES.items())})
                   AS known(name, type) ON known.name = a.attname
             WHERE a.attrelid = 'service_requests'::regclass AND a.attnum > 0 AND NOT a.attisdropped
               AND (a.atttypid <> known.type OR a.atttypmod <> -1)
            UNION ALL
            SELECT 'NOT NULL on column ' || a.attname
              FROM pg_attribute a
             WHERE a.attrelid = 'service_requests'::regclass AND a.attnum > 0 AND NOT a.attisdropped
               AND a.attnotnull AND a.attname NOT IN ({_sql_list(NOT_NULL_COLUMNS)})
            UNION ALL
            SELECT 'constraint ' || c.conname
              FROM pg_constraint c
             WHERE c.conrelid = 'service_requests'::regclass
               AND c.contype <> 'n'  -- NOT NULL (PostgreSQL 18 lists them here): see above
               AND c.conname NOT IN ({_sql_list(KNOWN_CONSTRAINTS)})
            UNION ALL
            SELECT 'trigger ' || t.tgname
              FROM pg_trigger t
             WHERE t.tgrelid = 'service_requests'::regclass AND NOT t.tgisinternal
               AND t.tgname <> '{V2_WRITE_GUARD}'
            UNION ALL
            SELECT 'rule ' || r.rulename
              FROM pg_rewrite r WHERE r.ev_class = 'service_requests'::regclass
            UNION ALL
            SELECT 'view ' || r.ev_class::regclass::text
              FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
             WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = 'service_requests'::regclass
               AND r.ev_class <> 'service_requests'::regclass
            UNION ALL
            SELECT 'row security policy ' || p.polname
              FROM pg_policy p WHERE p.polrelid = 'service_requests'::regclass
            UNION ALL
            SELECT 'publication ' || p.pubname
              FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid
             WHERE pr.prrelid = 'service_requests'::regclass
            UNION ALL
            SELECT 'inheritance link to ' || i.inhrelid::regclass::text
              FROM pg_inherits i WHERE i.inhparent = 'service_requests'::regclass
            UNION ALL
            SELECT 'inheritance link to ' || i.inhparent::regclass::text
              FROM pg_inherits i WHERE i.inhrelid = 'service_requests'::regclass) found;
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION USING MESSAGE =
            'FleetOS refused the upgrade: service_requests has ' || unknown
            || ', which FleetOS does not know and could not carry over to the v2 table it builds. '
            || 'Drop or move them first, and add them again after the upgrade.'
            -- Dropping a v1 column would lose its data: it goes back to v1's type.
            || CASE WHEN unknown LIKE '%column % of type %'
                    THEN ' A v1 column named with its type goes back to the type v1 gave it '
                         || 'instead (ALTER TABLE service_requests ALTER COLUMN ... TYPE text).'
                    ELSE '' END;
    END IF;
END
$$;
"""


# The tables the rebuild creates under fixed names (resolve_owners_sql, fill_sql).
REBUILD_TABLES = (NEW_TABLE, "fleetos_0002_user_owners", "fleetos_0002_addresses")

REFUSE_TAKEN_NAMES = f"""
DO $$
DECLARE
    taken text;
BEGIN
    SELECT string_agg(quote_ident(typname), ', ' ORDER BY typname) INTO taken
      FROM pg_type
     WHERE typnamespace = current_schema()::regnamespace
       AND typname IN ({_sql_list(REBUILD_TABLES)});
    IF taken IS NOT NULL THEN
        RAISE EXCEPTION USING MESSAGE =
            'FleetOS refused the upgrade: it builds the v2 service_requests in tables named '
            || '{", ".join(REBUILD_TABLES)}, but schema ' || quote_ident(current_schema())
            || ' already has ' || taken || '. Rename or drop that first.';
    END IF;
END
$$;
"""

# A v1 row the v2 table cannot hold (a NULL title, a priority v2 does not
# know) can only exist where a DBA dropped v1's own NOT NULL or CHECK. Where
# v1 still has them, validated, there is nothing to look for; otherwise the
# rows are counted and named, so that the upgrade refuses them by request,
# before changing anything, instead of failing on a constraint later.
_DECLARE_V1_PRIORITIES, _V1_PRIORITIES_GUARDED = v1_check_still_guards(
    "service_requests_priority_check", "priority", CHECKS["service_requests_priority_check"]
)
REFUSE_ROWS_V2_CANNOT_HOLD = f"""
{_DECLARE_V1_PRIORITIES}
DO $$
DECLARE
    item text;
    empty bigint;
    first_ids text[];
    found text;
    problems text[] := '{{}}';
BEGIN
    FOREACH item IN ARRAY ARRAY[{_sql_list(NOT_NULL_COLUMNS)}] LOOP
        CONTINUE WHEN (SELECT attnotnull FROM pg_attribute
                        WHERE attrelid = 'service_requests'::regclass AND attname = item);
        EXECUTE format('SELECT count(*), (array_agg(request_id::text ORDER BY request_id))[1:3]'
                       || ' FROM service_requests WHERE %I IS NULL', item)
          INTO empty, first_ids;
        IF empty > 0 THEN
            problems := problems || (item || ' is empty in ' || empty
                                     || CASE WHEN empty = 1 THEN ' row' ELSE ' rows' END
                                     || ' (request_id ' || array_to_string(first_ids, ', ', 'NULL')
                                     || CASE WHEN empty > 3 THEN ', ...)' ELSE ')' END);
        END IF;
    END LOOP;
    IF NOT {_V1_PRIORITIES_GUARDED} THEN
        SELECT 'priority ' || string_agg(quote_literal(priority) || ' in ' || n
                                         || CASE WHEN n = 1 THEN ' row' ELSE ' rows' END,
                                         ', ' ORDER BY priority)
          INTO found
          FROM (SELECT priority, count(*) AS n FROM service_requests
                 WHERE NOT ({CHECKS["service_requests_priority_check"]}) GROUP BY priority) p;
        IF found IS NOT NULL THEN
            problems := problems || found;
        END IF;
    END IF;
    IF cardinality(problems) > 0 THEN
        RAISE EXCEPTION USING MESSAGE =
            'FleetOS refused the upgrade: service_requests has rows the v2 table cannot hold: '
            || array_to_string(problems, '; ')
            || '. Correct them first (v1 itself required these values).';
    END IF;
END
$$;
"""


def _kept(column: str, existing: set[str]) -> str:
    """A new column's value already on the v1 row (a plan applied by hand, a re-run), or NULL."""
    return f"sr.{column}" if column in existing else "NULL::uuid"


def resolve_owners_sql(existing: set[str]) -> str:
    """Who owns what, resolved once per v1 user and once per supplier address.

    A few thousand users and addresses instead of a million requests: the
    rebuild then joins each request with these on plain ids and strings.
    ``existing`` names the new columns already on service_requests; values
    found there are kept, and a request with a kept supplier needs no address.
    """
    unresolved = "sr.supplier_user_id IS NULL AND sr.supplier_email IS NOT NULL"
    if "supplier_company_id" in existing:
        unresolved += " AND sr.supplier_company_id IS NULL"
    return f"""
CREATE TEMP TABLE fleetos_0002_domains ON COMMIT DROP AS
SELECT DISTINCT ON (domain) domain, company_id
  FROM (SELECT {canonical_domain("email_domain")} AS domain, company_id, created_at
          FROM companies
         WHERE company_type = 'supplier' AND btrim(email_domain) <> '') c
 WHERE domain NOT IN ({_sql_list(PUBLIC_MAIL_DOMAINS)})
 ORDER BY domain, created_at, company_id;

-- A v1 user's company, and the contact their address became. This table and
-- the next are plain, not temporary, so that the fill below can join them in
-- parallel workers; they are dropped after it, before anyone can see them.
CREATE TABLE fleetos_0002_user_owners AS
SELECT u.user_id, u.company_id, c.contact_id
  FROM users u
  LEFT JOIN contacts c ON c.contact_value = {canonical_email("u.email")};
ANALYZE fleetos_0002_user_owners;

-- Each supplier address (as typed) of a request with no supplier user: the
-- company of the contact with that address, else the supplier that
-- registered its domain (never a public mail domain).
CREATE TABLE fleetos_0002_addresses AS
SELECT typed.supplier_email, typed.address,
       coalesce(contact.company_id, by_domain.company_id) AS company_id
  FROM (SELECT supplier_email, nullif({canonical_email("supplier_email")}, '') AS address
          FROM (SELECT DISTINCT sr.supplier_email FROM service_requests sr
                 WHERE {unresolved}) d) typed
  LEFT JOIN contacts contact ON contact.contact_value = typed.address
  LEFT JOIN fleetos_0002_domains by_domain ON by_domain.domain = split_part(typed.address, '@', 2);

-- An address with no company anywhere becomes a supplier company of its own:
-- one per address, never one per domain (two workshops on gmail.com must not
-- see each other's work). Each is recorded, so a downgrade can remove it.
CREATE TEMP TABLE fleetos_0002_new_suppliers ON COMMIT DROP AS
SELECT address, gen_random_uuid() AS company_id
  FROM (SELECT DISTINCT address FROM fleetos_0002_addresses
         WHERE company_id IS NULL AND address IS NOT NULL) a;

UPDATE fleetos_0002_addresses a
   SET company_id = n.company_id
  FROM fleetos_0002_new_suppliers n
 WHERE a.company_id IS NULL AND a.address = n.address;
ANALYZE fleetos_0002_addresses;

INSERT INTO companies (company_id, name, company_type)
SELECT company_id, address, 'supplier' FROM fleetos_0002_new_suppliers;

INSERT INTO event_log (event_type, company_id, metadata)
SELECT 'company.created', company_id,
       jsonb_build_object('source', '{MIGRATION_SOURCE}', 'address', address,
                          'reason', 'a v1 request was sent to this address, which no company had')
  FROM fleetos_0002_new_suppliers;
"""


def _row_value(column: str, existing: set[str]) -> str:
    """The v2 value of ``column`` for v1 row ``sr``, cast to the v2 column's type."""
    if column == "status":
        value = _status_case(STATUS_V1_TO_V2, "sr.status")
    elif column in OWNERS_FROM:
        value = f"coalesce({_kept(column, existing)}, {OWNERS_FROM[column]})"
    else:
        value = f"sr.{column}"
    cast = f"({value})::{COLUMN_TYPES[column]}"
    # CREATE TABLE AS gives a column its value's collation: a text column a
    # DBA gave another collation in v1 gets the default one, as the v2 model
    # (and a CREATE TABLE of it) has.
    return f'{cast} COLLATE "default"' if COLUMN_TYPES[column] == "text" else cast


def _column_rules() -> str:
    """The ALTER TABLE clauses that give the filled table its NOT NULLs, defaults and checks."""
    clauses = [
        f"    -- squawk-ignore adding-not-nullable-field\n    ALTER COLUMN {column} SET NOT NULL"
        for column in NOT_NULL_COLUMNS
    ]
    clauses += [
        f"    ALTER COLUMN {column} SET DEFAULT {default}"
        for column, default in COLUMN_DEFAULTS.items()
    ]
    clauses += [
        f"    -- squawk-ignore constraint-missing-not-valid\n"
        f"    ADD CONSTRAINT {name} CHECK ({condition})"
        for name, condition in CHECKS.items()
    ]
    return ",\n".join(clauses)


def fill_sql(existing: set[str]) -> str:
    values = ",\n       ".join(_row_value(column, existing) for column in COLUMN_TYPES)
    return f"""
-- The v2 service_requests, built beside the v1 one, which stays readable:
-- every v1 row, once, with its v2 status and its owners, in one statement.
-- Fleet company and sender come from its creator; supplier company from its
-- supplier user, else from the address it was sent to; assignee from its
-- supplier user. v1 writers have been waiting since the SHARE lock above,
-- so none is missed. Created in this transaction, the table is invisible to
-- every other session until COMMIT, so filling it, indexing it and checking
-- its keys blocks no one; migrations/env.py swaps the names at the very end
-- (requests_rebuild.py).
--
-- CREATE TABLE AS rather than CREATE TABLE and INSERT ... SELECT: it may read
-- and join the v1 rows with parallel workers (an INSERT never does), and it
-- writes in bulk. The planner's default costs keep a million wide rows in
-- one process (passing them between processes looks dear); made free for
-- this statement, the fill takes half the time (0.74 s against 1.57 s on a
-- million requests here). The lookup tables it joins are plain tables for
-- that reason: parallel workers cannot read temporary ones. The two costs are
-- kept aside and put back after it, as they were.
SELECT set_config('fleetos.parallel_setup_cost', current_setting('parallel_setup_cost'), true),
       set_config('fleetos.parallel_tuple_cost', current_setting('parallel_tuple_cost'), true),
       set_config('parallel_setup_cost', '0', true),
       set_config('parallel_tuple_cost', '0', true);
CREATE TABLE {NEW_TABLE} ({", ".join(COLUMN_TYPES)}) AS
SELECT {values}
  FROM service_requests sr
  LEFT JOIN fleetos_0002_user_owners creator ON creator.user_id = sr.created_by_user_id
  LEFT JOIN fleetos_0002_user_owners supplier_user ON supplier_user.user_id = sr.supplier_user_id
  LEFT JOIN fleetos_0002_addresses address ON address.supplier_email = sr.supplier_email;
SELECT set_config('parallel_setup_cost', current_setting('fleetos.parallel_setup_cost'), true),
       set_config('parallel_tuple_cost', current_setting('fleetos.parallel_tuple_cost'), true);

-- What CREATE TABLE would have declared, added in one ALTER that checks every
-- row once (0.2 s on a million requests); no one else sees the table yet.
ALTER TABLE {NEW_TABLE}
{_column_rules()};

-- The lookup tables, made in this transaction and seen by no one, go now.
-- squawk-ignore ban-drop-table
DROP TABLE fleetos_0002_user_owners, fleetos_0002_addresses;
"""


def keys_and_indexes_sql() -> str:
    indexes = "\n".join(
        f"CREATE INDEX {NEW_NAME_PREFIX}{name} ON {NEW_TABLE} ({column});"
        for name, column in INDEXES.items()
    )
    foreign_keys = "\n".join(
        f"ALTER TABLE {NEW_TABLE} ADD CONSTRAINT {_fkey(column)}\n"
        f"    FOREIGN KEY ({column}) REFERENCES {target};"
        for column, target in V1_FOREIGN_KEYS + NEW_COLUMNS
    )
    return f"""
-- Keys and indexes are built on the full table: one sort each, instead of
-- maintaining them row by row while it fills. None of this needs CONCURRENTLY
-- or NOT VALID (which only help in separate transactions, and this upgrade is
-- one on purpose): no other session can see {NEW_TABLE}. The foreign keys'
-- SHARE ROW EXCLUSIVE locks on users, companies and contacts stop only
-- writers, who already wait.
-- Each build sorts a million rows or so, with the sort memory migrations/env.py
-- sets for the upgrade's transaction (maintenance_work_mem, at least 256MB).
ALTER TABLE {NEW_TABLE} ADD CONSTRAINT {NEW_NAME_PREFIX}{PRIMARY_KEY} PRIMARY KEY (request_id);
{indexes}
-- Plain indexes a DBA added to the v1 table are rebuilt on the new one.
DO $$
DECLARE
    idx record;
BEGIN
    FOR idx IN SELECT i.relname, x.indisunique, pg_get_indexdef(x.indexrelid) AS definition
                 FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
                WHERE x.indrelid = 'service_requests'::regclass
                  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
                  AND i.relname NOT IN ({_sql_list(INDEXES)}) LOOP
        EXECUTE 'CREATE ' || CASE WHEN idx.indisunique THEN 'UNIQUE ' ELSE '' END || 'INDEX '
                || quote_ident('{NEW_NAME_PREFIX}' || idx.relname) || ' ON {NEW_TABLE}'
                || substr(idx.definition, strpos(idx.definition, ' USING '));
    END LOOP;
END
$$;
{foreign_keys}
"""


# Once the upgrade commits, a v1 app still running writes to the v2 tables: a
# write that was waiting on the SHARE lock looks the table name up again when
# the lock is granted, and finds the new service_requests. These triggers make
# such a write fail with a clear error, instead of landing as a request no
# company owns or a user with no contact. FleetOS v2 never writes users, nor
# the v1 user columns of service_requests.
GUARD_AGAINST_V1_WRITES = f"""
CREATE OR REPLACE FUNCTION fleetos_refuse_v1_writes() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION USING
        ERRCODE = 'check_violation',
        MESSAGE = 'FleetOS v2 refused a v1 write to ' || TG_TABLE_NAME
                  || ' (this database has been upgraded to emergent contacts)',
        HINT = 'Stop the FleetOS v1 application. FleetOS v2 never writes v1 users '
               || 'or the v1 user columns of service requests.';
END;
$$ LANGUAGE plpgsql;
COMMENT ON FUNCTION fleetos_refuse_v1_writes() IS 'Refuses writes in the shape of FleetOS v1 after the upgrade';
CREATE TRIGGER {V2_WRITE_GUARD}
    BEFORE INSERT OR UPDATE OF created_by_user_id, supplier_user_id ON {NEW_TABLE}
    FOR EACH ROW WHEN (NEW.created_by_user_id IS NOT NULL OR NEW.supplier_user_id IS NOT NULL)
    EXECUTE FUNCTION fleetos_refuse_v1_writes();
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger
                    WHERE tgrelid = 'users'::regclass AND tgname = '{V2_WRITE_GUARD}') THEN
        CREATE TRIGGER {V2_WRITE_GUARD} BEFORE INSERT ON users
            FOR EACH ROW EXECUTE FUNCTION fleetos_refuse_v1_writes();
    END IF;
END
$$;
"""

# The new table is the v1 table's owner's, with the v1 table's grants and
# comments: a v2 app connecting as another role keeps its privileges.
CARRY_OWNER_GRANTS_AND_COMMENTS = f"""
DO $$
DECLARE
    v1_owner regrole := (SELECT relowner::regrole FROM pg_class
                          WHERE oid = 'service_requests'::regclass);
    item record;
BEGIN
    IF v1_owner <> (SELECT relowner::regrole FROM pg_class WHERE oid = '{NEW_TABLE}'::regclass) THEN
        EXECUTE 'ALTER TABLE {NEW_TABLE} OWNER TO ' || v1_owner::text;
    END IF;
    FOR item IN SELECT a.privilege_type, a.grantee, a.is_grantable
                  FROM pg_class c, aclexplode(c.relacl) a
                 WHERE c.oid = 'service_requests'::regclass LOOP
        EXECUTE 'GRANT ' || item.privilege_type || ' ON {NEW_TABLE} TO '
                || CASE WHEN item.grantee = 0 THEN 'PUBLIC' ELSE item.grantee::regrole::text END
                || CASE WHEN item.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END;
    END LOOP;
    IF obj_description('service_requests'::regclass, 'pg_class') IS NOT NULL THEN
        EXECUTE 'COMMENT ON TABLE {NEW_TABLE} IS '
                || quote_literal(obj_description('service_requests'::regclass, 'pg_class'));
    END IF;
    FOR item IN SELECT a.attname, col_description(a.attrelid, a.attnum) AS comment
                  FROM pg_attribute a
                 WHERE a.attrelid = 'service_requests'::regclass AND a.attnum > 0
                   AND NOT a.attisdropped AND col_description(a.attrelid, a.attnum) IS NOT NULL LOOP
        EXECUTE 'COMMENT ON COLUMN {NEW_TABLE}.' || quote_ident(item.attname) || ' IS '
                || quote_literal(item.comment);
    END LOOP;
END
$$;
"""


def existing_request_columns() -> set[str]:
    if context.is_offline_mode():
        return set()  # --sql output is written for a v1 database
    columns = inspect(op.get_bind()).get_columns("service_requests")
    return {column["name"] for column in columns} & {column for column, _ in NEW_COLUMNS}


def upgrade():
    op.execute(LOCK_V1_TABLES)
    op.execute(REFUSE_NONDETERMINISTIC_COLLATIONS)
    op.execute(REFUSE_UNKNOWN_STATUSES)
    op.execute(REFUSE_ADDRESS_IN_TWO_COMPANIES)
    op.execute(REFUSE_WHAT_THE_REBUILD_CANNOT_CARRY)
    op.execute(REFUSE_TAKEN_NAMES)
    op.execute(REFUSE_ROWS_V2_CANNOT_HOLD)
    op.execute(CREATE_CONTACTS)
    op.execute(MIGRATE_USERS_TO_CONTACTS)
    op.execute(CREATE_EVENT_LOG)
    op.execute(CREATE_FUNCTIONS)
    existing = existing_request_columns()
    op.execute(resolve_owners_sql(existing))
    op.execute(fill_sql(existing))
    requests_rebuild.begin()
    op.execute(keys_and_indexes_sql())
    op.execute(GUARD_AGAINST_V1_WRITES)
    op.execute(CARRY_OWNER_GRANTS_AND_COMMENTS)


# ---------------------------------------------------------------------------
# Downgrade: back to the v1 tables. What v1 has no place for goes, except
# what a later upgrade needs to be right: contacts (who belongs to which
# company) and, in 0003, the record of used links.
# ---------------------------------------------------------------------------

STATUS_V2_TO_V1 = {new: old for old, new in STATUS_V1_TO_V2.items()}

DOWNGRADE = f"""
-- Supplier companies that emerged from an address (made by this upgrade, or
-- by a v2 request to a new address) and that no contact has claimed: the
-- address is still on the request, so an upgrade makes each again, once.
CREATE TEMP TABLE fleetos_0002_address_companies ON COMMIT DROP AS
SELECT DISTINCT e.company_id FROM event_log e
 WHERE e.event_type = 'company.created' AND e.company_id IS NOT NULL
   AND e.metadata ->> 'address' IS NOT NULL
   AND (e.metadata ->> 'source' = '{MIGRATION_SOURCE}' OR e.metadata ->> 'via' = 'request')
   AND NOT EXISTS (SELECT 1 FROM contacts c WHERE c.company_id = e.company_id);

DROP TRIGGER IF EXISTS {V2_WRITE_GUARD} ON users;
DROP TRIGGER IF EXISTS {V2_WRITE_GUARD} ON service_requests;
DROP FUNCTION IF EXISTS fleetos_refuse_v1_writes();

ALTER TABLE service_requests DROP CONSTRAINT IF EXISTS valid_status;
UPDATE service_requests SET status = {_status_case(STATUS_V2_TO_V1)}
 WHERE status IN ({_sql_list(STATUS_V2_TO_V1)});
ALTER TABLE service_requests
    ADD CONSTRAINT valid_status CHECK (status IN ({_sql_list(STATUS_V1_TO_V2)}));
ALTER TABLE service_requests ALTER COLUMN status SET DEFAULT 'pending';

DROP FUNCTION IF EXISTS get_last_active_contact(uuid);
DROP FUNCTION IF EXISTS get_or_create_contact(text, uuid, text, text);
DROP TABLE IF EXISTS event_log;
ALTER TABLE service_requests
    DROP COLUMN IF EXISTS assigned_to_contact_id,
    DROP COLUMN IF EXISTS submitted_by_contact_id,
    DROP COLUMN IF EXISTS supplier_company_id,
    DROP COLUMN IF EXISTS fleet_company_id;
DELETE FROM companies WHERE company_id IN (SELECT company_id FROM fleetos_0002_address_companies);
"""


def data_a_downgrade_discards(connection: Connection) -> list[str]:
    """What the downgrade deletes that no later upgrade can bring back (env.py asks first)."""
    events, requests = connection.execute(
        text(f"""
SELECT (SELECT count(*) FROM event_log
         WHERE NOT (event_type = 'company.created'
                    AND metadata ->> 'source' = '{MIGRATION_SOURCE}')),
       (SELECT count(*)
          FROM service_requests sr
          LEFT JOIN users creator ON creator.user_id = sr.created_by_user_id
          LEFT JOIN contacts creator_contact
                 ON creator_contact.contact_value = {canonical_email("creator.email")}
          LEFT JOIN users supplier_user ON supplier_user.user_id = sr.supplier_user_id
          LEFT JOIN contacts supplier_contact
                 ON supplier_contact.contact_value = {canonical_email("supplier_user.email")}
         WHERE (sr.fleet_company_id IS NOT NULL
                AND sr.fleet_company_id IS DISTINCT FROM creator.company_id)
            OR (sr.submitted_by_contact_id IS NOT NULL
                AND sr.submitted_by_contact_id IS DISTINCT FROM creator_contact.contact_id)
            OR (sr.assigned_to_contact_id IS NOT NULL
                AND sr.assigned_to_contact_id IS DISTINCT FROM supplier_contact.contact_id)
            OR (sr.supplier_company_id IS NOT NULL AND sr.supplier_user_id IS NULL
                AND nullif(btrim(sr.supplier_email), '') IS NULL))
""")
    ).one()
    lost = []
    if events:
        lost.append(
            f"event_log: {events} events recorded since the upgrade "
            "(sign-ins, invitations, requests and their history)"
        )
    if requests:
        lost.append(
            f"service_requests: {requests} requests would lose their fleet, sender, assignee "
            "or supplier (set in v2, where v1 has no column that says so)"
        )
    return lost


def downgrade():
    op.execute(DOWNGRADE)
