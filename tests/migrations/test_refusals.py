"""A refused upgrade names what it refused, exits 1 without a traceback, and changes nothing."""

from __future__ import annotations

import time

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.mailserver import free_port
from tests.migrations.conftest import dump, execute, migrate, query
from tests.migrations.test_live_upgrade import InBackground
from tests.support.apps import flask_cli
from tests.support.database import conninfo_to_url, database_name, libpq_url
from tests.support.waiting import eventually

UNKNOWN_STATUSES = """
ALTER TABLE service_requests DROP CONSTRAINT valid_status;
UPDATE service_requests SET status = 'on_hold' WHERE title IN ('Brakes squeal', 'Oil change');
UPDATE service_requests SET status = 'cancelled' WHERE title = 'Puncture';
"""

SAME_ADDRESS_IN_TWO_COMPANIES = """
INSERT INTO users (company_id, email, full_name) VALUES
  ('11111111-1111-4111-8111-111111111111', ' NORA@Northwind.example', 'Nora at Acme');
"""


def assert_refused(url: str, *expected: str, **env: str) -> str:
    before = dump(url)
    result = flask_cli(url, "db", "upgrade", **env)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for text in expected:
        assert text in result.stderr
    assert dump(url) == before, "a refused upgrade changed the database"
    return result.stderr


def test_unknown_statuses_are_named_with_their_row_counts(v1_database):
    execute(v1_database, UNKNOWN_STATUSES)
    stderr = assert_refused(
        v1_database, "'cancelled' (1 row)", "'on_hold' (2 rows)", "Nothing was changed"
    )
    assert "Error: FleetOS refused the upgrade" in stderr


def test_unknown_statuses_refused_after_0001_as_well(v1_database):
    migrate(v1_database, "0001_fleetos_v1")
    execute(v1_database, UNKNOWN_STATUSES)
    assert_refused(v1_database, "'on_hold' (2 rows)")
    assert query(v1_database, "SELECT version_num FROM alembic_version") == [("0001_fleetos_v1",)]


def test_one_address_in_two_companies_is_refused(v1_database):
    execute(v1_database, SAME_ADDRESS_IN_TWO_COMPANIES)
    assert_refused(v1_database, "nora@northwind.example", '"Acme Fleet"', '"Northwind Haulage"')


def test_a_database_that_is_not_v1_is_refused(make_database):
    url = make_database()
    execute(url, "CREATE TABLE companies (company_id uuid PRIMARY KEY, label text)")
    assert_refused(url, "not a FleetOS v1 database", "companies.name", "users.email")


def test_a_v1_row_the_v2_table_cannot_hold_is_refused_by_request(v1_database):
    """A DBA dropped v1's own NOT NULL and CHECK: the rows that broke them are named."""
    execute(
        v1_database,
        """
        ALTER TABLE service_requests ALTER COLUMN title DROP NOT NULL;
        UPDATE service_requests SET title = NULL WHERE title = 'Puncture';
        ALTER TABLE service_requests DROP CONSTRAINT service_requests_priority_check;
        UPDATE service_requests SET priority = 'critical'
         WHERE description IS NOT NULL AND title IN ('Brakes squeal', 'Oil change');
        """,
    )
    [(untitled,)] = query(
        v1_database, "SELECT request_id::text FROM service_requests WHERE title IS NULL"
    )
    [(critical,)] = query(
        v1_database, "SELECT count(*) FROM service_requests WHERE priority = 'critical'"
    )
    assert critical > 0
    rows = "1 row" if critical == 1 else f"{critical} rows"
    assert_refused(
        v1_database,
        "service_requests has rows the v2 table cannot hold",
        f"title is empty in 1 row (request_id {untitled})",
        f"priority 'critical' in {rows}",
        "Nothing was changed",
    )


def test_two_upgrades_at_once_run_one_after_the_other(v1_database):
    """Two deploys run `flask db upgrade` together: one upgrades, the other waits, then has
    nothing to do (before, both created alembic_version and one died with a traceback)."""
    first = InBackground(lambda: flask_cli(v1_database, "db", "upgrade"))
    second = flask_cli(v1_database, "db", "upgrade")
    for result in (first(), second):
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr + result.stdout
    upgrades = (first().stderr + second.stderr).count("Running upgrade 0001_fleetos_v1 -> 0002")
    assert upgrades == 1
    current = flask_cli(v1_database, "db", "current")
    assert "(head)" in current.stdout, current.stdout + current.stderr
    assert flask_cli(v1_database, "fleetos", "verify").returncode == 0


def test_names_the_rebuild_needs_that_are_taken_are_refused(v1_database):
    execute(v1_database, "CREATE TABLE fleetos_0002_user_owners (note text)")
    assert_refused(
        v1_database,
        "schema public already has fleetos_0002_user_owners",
        "Rename or drop that first",
        "Nothing was changed",
    )
    execute(v1_database, "DROP TABLE fleetos_0002_user_owners")
    migrate(v1_database)  # with the name free again, the upgrade goes through


@pytest.mark.slow
def test_a_long_transaction_makes_the_upgrade_give_up_not_queue(v1_database):
    """With lock_timeout the deploy stops waiting; readers are not stuck behind it."""
    holder = psycopg.connect(libpq_url(v1_database))
    holder.execute("SELECT count(*) FROM service_requests")  # holds ACCESS SHARE until rollback
    try:
        assert_refused(
            v1_database,
            "could not get a table lock within lock_timeout (1s)",
            MIGRATION_LOCK_TIMEOUT="1s",
        )
    finally:
        holder.rollback()
        holder.close()
    migrate(v1_database)  # with the transaction gone, the upgrade goes through


def test_lock_timeout_setting_is_validated(v1_database):
    result = flask_cli(v1_database, "db", "upgrade", MIGRATION_LOCK_TIMEOUT="5; DROP TABLE users")
    assert result.returncode == 1
    assert "MIGRATION_LOCK_TIMEOUT must look like 5s" in result.stderr
    assert "Traceback" not in result.stderr
    assert query(v1_database, "SELECT count(*) FROM users") == [(5,)]


FROZEN_SCHEMA = """
CREATE FUNCTION refuse_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'schema changes are frozen until the audit ends'
        USING HINT = 'Ask the DBA on call.';
END $$;
CREATE EVENT TRIGGER schema_freeze ON ddl_command_start {only} EXECUTE FUNCTION refuse_ddl();
"""


@pytest.mark.parametrize(
    ("only", "where"),
    [
        ("", "at the start, before or in revision 0001_fleetos_v1"),
        # 0002 is the first to create a table from a query (the rebuilt service_requests).
        ("WHEN TAG IN ('CREATE TABLE AS')", "in revision 0002_emergent_contacts"),
    ],
)
def test_an_error_no_refusal_foresees_says_where_and_what_and_changes_nothing(
    v1_database, only, where
):
    """A DBA's event trigger refuses schema changes: no revision can know that one."""
    execute(v1_database, FROZEN_SCHEMA.format(only=only))
    stderr = assert_refused(
        v1_database,
        f"Error: the migration stopped on an error it does not expect ({where}).",
        "The database said (P0001): schema changes are frozen until the audit ends",
        "Ask the DBA on call.",
        "PL/pgSQL function refuse_ddl() line 3 at RAISE",
        "nothing was changed",
    )
    assert stderr.count("Error:") == 1


# Case- and accent-insensitive: joe@ and Joé@ compare equal, so do addresses with
# and without a zero-width space.
NOCASE = (
    "CREATE COLLATION nocase (provider = icu, locale = 'und-u-ks-level1', deterministic = false)"
)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (
            "ALTER TABLE users ALTER COLUMN email TYPE text COLLATE nocase;"
            " ALTER TABLE service_requests ALTER COLUMN supplier_email TYPE text COLLATE nocase",
            "service_requests.supplier_email (collation nocase), users.email (collation nocase)",
        ),
        (  # a contacts table a plan applied by hand made, which the upgrade adopts
            "CREATE TABLE contacts (contact_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),"
            " company_id uuid NOT NULL REFERENCES companies (company_id),"
            " contact_value text COLLATE nocase NOT NULL UNIQUE, contact_type text NOT NULL,"
            " display_name text, first_seen_at timestamp DEFAULT now(),"
            " last_seen_at timestamp DEFAULT now())",
            "contacts.contact_value (collation nocase)",
        ),
    ],
)
def test_columns_with_a_nondeterministic_collation_are_refused_by_name(v1_database, change, named):
    """Under such a collation two suppliers' addresses can match as one, and a request
    would go to the wrong company: the upgrade refuses rather than guess."""
    try:
        execute(v1_database, NOCASE)
    except psycopg.errors.FeatureNotSupported:
        pytest.skip("this PostgreSQL was built without ICU")
    execute(v1_database, change)
    assert_refused(
        v1_database,
        f"FleetOS refused the upgrade: {named} compare text with a nondeterministic collation",
        'ALTER TABLE users ALTER COLUMN email TYPE text COLLATE "default"',
        "Nothing was changed",
    )


FROZEN_WEB_SESSIONS = """
CREATE FUNCTION refuse_web_sessions() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_event_trigger_ddl_commands()
                WHERE object_identity = 'public.web_sessions') THEN
        RAISE EXCEPTION 'web_sessions may not be created yet';
    END IF;
END $$;
CREATE EVENT TRIGGER web_sessions_freeze ON ddl_command_end WHEN TAG IN ('CREATE TABLE')
    EXECUTE FUNCTION refuse_web_sessions();
"""


def runs_waiting(url: str) -> int:
    """How many `flask db upgrade` runs wait for the migration-run lock."""
    return query(url, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")[
        0
    ][0]


def test_a_run_that_waited_for_another_says_where_it_stopped_in_what_was_left(v1_database):
    """The second of two deploys plans its run once the first has ended, from the version
    the first left: its error names its own revision, not one the first had done."""
    execute(v1_database, FROZEN_WEB_SESSIONS)  # 0008 creates web_sessions
    holder = psycopg.connect(libpq_url(v1_database), autocommit=True)
    holder.execute("SELECT pg_advisory_lock(hashtext('fleetos: flask db upgrade'))")
    try:
        first = InBackground(
            lambda: flask_cli(v1_database, "db", "upgrade", "0007_verified_domains")
        )
        eventually(lambda: runs_waiting(v1_database) == 1, 60, "the first run never waited")
        second = InBackground(lambda: flask_cli(v1_database, "db", "upgrade"))
        eventually(lambda: runs_waiting(v1_database) == 2, 60, "the second run never waited")
    finally:
        holder.close()  # the two go in the order they came
    assert first().returncode == 0, first().stderr
    assert second().returncode == 1
    assert "Traceback" not in second().stderr
    assert (
        "stopped on an error it does not expect (at the start, before or in revision "
        "0008_sessions)" in second().stderr
    )
    assert "web_sessions may not be created yet" in second().stderr
    assert query(v1_database, "SELECT version_num FROM alembic_version") == [
        ("0007_verified_domains",)
    ]


def test_an_error_that_comes_back_on_every_run_is_not_called_an_outage(v1_database):
    """psycopg calls "index row too big" an OperationalError, as it does a lost connection;
    only the second is worth running again once the database is back."""
    execute(
        v1_database,
        "UPDATE service_requests SET supplier_email = (SELECT string_agg(md5(g::text), '')"
        "  FROM generate_series(1, 100) g) || '@garage.example'"
        " WHERE request_id = (SELECT request_id FROM service_requests LIMIT 1)",
    )
    stderr = assert_refused(
        v1_database,
        "stopped on an error it does not expect (in revision 0004_request_details)",
        "The database said (54000): index row size",
        "nothing was changed",
    )
    assert "once the database is back" not in stderr


@pytest.mark.parametrize("where", ["a port nobody listens on", "a database that does not exist"])
def test_a_database_it_cannot_reach_is_named_as_such_without_the_password(v1_database, where):
    if where == "a port nobody listens on":
        url = f"postgresql://postgres:s3cret-pw@127.0.0.1:{free_port()}/fleetos"
    else:  # the test server, over TCP or its Unix socket
        server = conninfo_to_dict(libpq_url(v1_database))
        server.update(dbname="fleetos_no_such", password="s3cret-pw")
        url = conninfo_to_url(make_conninfo(**server))
    result = flask_cli(url, "db", "upgrade")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert "Error: could not connect to the database (" in result.stderr
    assert "Check DATABASE_URL and that the database is up. Nothing was changed." in result.stderr
    assert "s3cret-pw" not in result.stderr + result.stdout


def test_a_downgrade_counting_what_it_would_lose_behind_a_lock_says_so(v1_database):
    """The count before a downgrade waits for a table lock no longer than lock_timeout, and
    says that was it, like the migration itself (before, the app's statement timeout cut
    it off and it was reported as an unexpected error)."""
    migrate(v1_database)
    holder = psycopg.connect(libpq_url(v1_database))
    holder.execute("LOCK TABLE event_log IN ACCESS EXCLUSIVE MODE")  # until rollback
    try:
        result = flask_cli(
            v1_database,
            "db",
            "downgrade",
            "0001_fleetos_v1",
            MIGRATION_LOCK_TIMEOUT="1s",
            DATABASE_STATEMENT_TIMEOUT="3",
        )
    finally:
        holder.rollback()
        holder.close()
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "could not get a table lock within lock_timeout (1s)" in result.stderr


def test_a_lock_timeout_the_database_sets_does_not_cut_the_wait_for_another_run(v1_database):
    """Waiting for another deploy is not waiting for a table: a lock_timeout set on the
    database (or role) must not make the second run give up on the first."""
    execute(v1_database, f"ALTER DATABASE {database_name(v1_database)} SET lock_timeout = '200ms'")
    holder = psycopg.connect(libpq_url(v1_database), autocommit=True)
    holder.execute("SELECT pg_advisory_lock(hashtext('fleetos: flask db upgrade'))")
    try:
        run = InBackground(lambda: flask_cli(v1_database, "db", "upgrade"))
        eventually(lambda: runs_waiting(v1_database) == 1, 60, "the run never waited")
        time.sleep(1)  # five times the database's lock_timeout
        assert not run.done(), run().stderr
    finally:
        holder.close()
    assert run().returncode == 0, run().stderr
