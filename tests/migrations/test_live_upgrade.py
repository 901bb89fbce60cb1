"""Upgrading a v1 database in use: readers go on, v1 writers wait, and nothing is lost.

Issue 12: the upgrade resolved owners before it locked anything, so rows a v1
app wrote meanwhile arrived with no owners, v1 status changes were silently
lost, and new v1 users got no contact. Now v1 writers wait on a SHARE lock
taken before anything is read, readers are held only by the final swap (in
short attempts), and a v1 write still waiting when the upgrade commits fails
cleanly instead of landing in the wrong shape.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
import pytest

from tests.migrations.conftest import dump, execute, flask_cli, libpq_url, migrate, query

ACME = "11111111-1111-4111-8111-111111111111"
BOBS = "33333333-3333-4333-8333-333333333333"
DANA_USER = "aaaaaaaa-0000-4000-8000-000000000001"
BOB_USER = "bbbbbbbb-0000-4000-8000-000000000001"
V2_STATUS = {"pending": "new", "open": "acknowledged"}
CHECK_VIOLATION = "23514"


@dataclass(eq=False)
class V1App(threading.Thread):
    """A v1 app writing as v1 did, from its own connection, until stopped."""

    url: str
    committed: dict[str, str] = field(default_factory=dict)  # request id -> its v1 status
    signed_up: list[str] = field(default_factory=list)  # v1 users' addresses
    failures: list[tuple[str, str | None, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    pid: int = 0

    def __post_init__(self) -> None:
        super().__init__(daemon=True)

    def run(self) -> None:
        with psycopg.connect(libpq_url(self.url), autocommit=True) as conn:
            self.pid = conn.info.backend_pid
            writes: list[tuple[str, Callable[[psycopg.Connection, int], None]]] = [
                ("insert", self.insert_with_status),
                ("insert with v1's default status", self.insert_with_default_status),
                ("status update", self.acknowledge),
                ("sign-up", self.sign_up),
            ]
            n = 0
            while not self.stop.is_set():
                n += 1
                what, write = writes[n % len(writes)]
                try:
                    write(conn, n)
                except psycopg.Error as exc:
                    self.failures.append((what, exc.sqlstate, exc.diag.message_primary or ""))
                time.sleep(0.005)

    def _insert(self, conn: psycopg.Connection, sql: str, n: int) -> None:
        (request_id,) = conn.execute(
            sql, (DANA_USER, BOB_USER, f"VAN-{n}", f"v1 write {n}")
        ).fetchone()
        self.committed[str(request_id)] = "pending"

    def insert_with_status(self, conn: psycopg.Connection, n: int) -> None:
        self._insert(
            conn,
            "INSERT INTO service_requests (created_by_user_id, supplier_user_id, vehicle, title,"
            " status) VALUES (%s, %s, %s, %s, 'pending') RETURNING request_id",
            n,
        )

    def insert_with_default_status(self, conn: psycopg.Connection, n: int) -> None:
        self._insert(
            conn,
            "INSERT INTO service_requests (created_by_user_id, supplier_user_id, vehicle, title)"
            " VALUES (%s, %s, %s, %s) RETURNING request_id",
            n,
        )

    def acknowledge(self, conn: psycopg.Connection, n: int) -> None:
        pending = [rid for rid, status in self.committed.items() if status == "pending"]
        if pending:
            conn.execute(
                "UPDATE service_requests SET status = 'open', updated_at = now()"
                " WHERE request_id = %s",
                (pending[0],),
            )
            self.committed[pending[0]] = "open"

    def sign_up(self, conn: psycopg.Connection, n: int) -> None:
        address = f"v1.signup.{n}@acme-fleet.com"
        conn.execute(
            "INSERT INTO users (company_id, email, full_name) VALUES (%s, %s, 'Signed up in v1')",
            (ACME, address),
        )
        self.signed_up.append(address)


def wait_for(condition: Callable[[], object], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.02)


class InBackground:
    """Run ``func`` in a thread; calling the object waits for its result."""

    def __init__(self, func: Callable[[], subprocess.CompletedProcess[str]]) -> None:
        self.result: list[subprocess.CompletedProcess[str]] = []
        self.thread = threading.Thread(target=lambda: self.result.append(func()), daemon=True)
        self.thread.start()

    def done(self) -> bool:
        return not self.thread.is_alive()

    def __call__(self) -> subprocess.CompletedProcess[str]:
        self.thread.join(timeout=300)
        assert self.result, "still running after 300 s"
        return self.result[0]


def swap_is_waiting(url: str) -> bool:
    """The upgrade has asked for its ACCESS EXCLUSIVE lock on the v1 table (the swap)."""
    return bool(
        query(
            url,
            "SELECT 1 FROM pg_locks WHERE relation = to_regclass('service_requests')"
            " AND mode = 'AccessExclusiveLock' AND NOT granted",
        )
    )


def waiting_on_a_lock(url: str, pid: int) -> bool:
    return bool(
        query(
            url,
            "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND wait_event_type = 'Lock'",
            (pid,),
        )
    )


def timed_select(url: str) -> float:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("SET statement_timeout = '10s'")
        started = time.perf_counter()
        conn.execute(
            "SELECT title FROM service_requests WHERE request_id = %s",
            ("cccccccc-0000-4000-8000-000000000001",),
        ).fetchone()
        return time.perf_counter() - started


# Enough v1 data that the upgrade takes a moment while the v1 app writes.
MORE_V1_REQUESTS = f"""
INSERT INTO service_requests (created_by_user_id, supplier_user_id, supplier_email, vehicle, title, status)
SELECT CASE WHEN i % 2 = 0 THEN '{DANA_USER}'::uuid ELSE 'aaaaaaaa-0000-4000-8000-000000000003'::uuid END,
       CASE WHEN i % 3 = 0 THEN NULL ELSE '{BOB_USER}'::uuid END,
       CASE WHEN i % 3 = 0 THEN 'garage' || (i % 500) || '@gmail.com' END,
       'UNIT-' || i, 'older request ' || i,
       (ARRAY['pending', 'open', 'in_progress', 'closed', 'rejected'])[1 + i % 5]
  FROM generate_series(1, 30000) i;
ANALYZE;
"""


@pytest.mark.slow
def test_a_v1_app_writing_through_the_upgrade_loses_nothing(v1_database):
    execute(v1_database, MORE_V1_REQUESTS)
    app = V1App(v1_database)
    app.start()
    wait_for(lambda: len(app.committed) >= 6 and app.signed_up, "the v1 app's first writes")
    upgrade = InBackground(lambda: flask_cli(v1_database, "db", "upgrade"))
    saw_the_app_wait = False
    while app.is_alive() and not upgrade.done():
        saw_the_app_wait = saw_the_app_wait or waiting_on_a_lock(v1_database, app.pid)
        time.sleep(0.02)
    result = upgrade()
    assert result.returncode == 0, result.stderr
    wait_for(lambda: len(app.failures) >= 4, "v1 writes after the upgrade")
    app.stop.set()
    app.join(timeout=30)

    assert saw_the_app_wait  # v1 writes waited for the upgrade...
    for what, sqlstate, message in app.failures:  # ...and after it, each failed cleanly
        assert sqlstate == CHECK_VIOLATION, (what, sqlstate, message)
        assert "FleetOS v2 refused a v1 write" in message or "valid_status" in message, message
    rows = {
        rid: rest
        for rid, *rest in query(
            v1_database,
            "SELECT r.request_id::text, r.status, r.fleet_company_id::text,"
            " r.supplier_company_id::text, s.contact_value, a.contact_value"
            " FROM service_requests r"
            " LEFT JOIN contacts s ON s.contact_id = r.submitted_by_contact_id"
            " LEFT JOIN contacts a ON a.contact_id = r.assigned_to_contact_id"
            " WHERE r.title LIKE 'v1 write %'",
        )
    }
    assert set(rows) == set(app.committed)  # every committed row, and no other
    for request_id, v1_status in app.committed.items():
        assert rows[request_id] == [
            V2_STATUS[v1_status],
            ACME,
            BOBS,
            "dana.dispatch@acme-fleet.com",
            "bob@bobsrepair.com",
        ], request_id
    assert "open" in app.committed.values()  # status updates were among them
    contacts = {
        value
        for (value,) in query(
            v1_database, "SELECT contact_value FROM contacts WHERE company_id = %s", (ACME,)
        )
    }
    assert set(app.signed_up) <= contacts
    verified = flask_cli(v1_database, "fleetos", "verify")
    assert verified.returncode == 0, verified.stdout


@pytest.mark.slow
def test_readers_queued_behind_the_swap_wait_a_moment_not_the_lock_timeout(v1_database):
    report = psycopg.connect(libpq_url(v1_database))
    report.execute("SELECT count(*) FROM service_requests")  # holds the v1 table
    upgrade = InBackground(
        lambda: flask_cli(v1_database, "db", "upgrade", MIGRATION_LOCK_TIMEOUT="30s")
    )
    try:
        wait_for(lambda: swap_is_waiting(v1_database), "the upgrade to reach the swap")
        # One long lock wait would hold these readers for the whole 30 s.
        longest = max(timed_select(v1_database) for _ in range(15))
    finally:
        report.rollback()
        report.close()
    assert upgrade().returncode == 0
    assert longest < 1.0


def test_after_the_upgrade_v1_shaped_writes_fail_and_v2_writes_do_not(v1_database):
    migrate(v1_database)
    v1_request = (
        "INSERT INTO service_requests (created_by_user_id, supplier_user_id, vehicle, title)"
        f" VALUES ('{DANA_USER}', '{BOB_USER}', 'VAN-9', 'after the upgrade')"
    )
    refused = [
        v1_request,
        f"INSERT INTO users (company_id, email) VALUES ('{ACME}', 'late.v1.user@acme-fleet.com')",
        "UPDATE service_requests SET supplier_user_id = created_by_user_id"
        " WHERE title = 'Brakes squeal'",
    ]
    for sql in refused:
        with pytest.raises(psycopg.errors.CheckViolation) as caught:
            execute(v1_database, sql)
        assert "FleetOS v2 refused a v1 write" in str(caught.value)
        assert "Stop the FleetOS v1 application" in caught.value.diag.message_hint
    with pytest.raises(psycopg.errors.CheckViolation, match="valid_status"):
        execute(v1_database, "UPDATE service_requests SET status = 'open' WHERE title = 'Puncture'")
    # What v2 writes is untouched by the guard, including status changes of v1 rows.
    execute(
        v1_database,
        "INSERT INTO service_requests (fleet_company_id, supplier_company_id, vehicle, title)"
        f" VALUES ('{ACME}', '{BOBS}', 'VAN-10', 'v2 request');"
        " UPDATE service_requests SET status = 'acknowledged', updated_at = now()"
        " WHERE title = 'Brakes squeal';"
        " UPDATE users SET last_login_at = now() WHERE email = 'ops@acme-fleet.com'",
    )
    assert query(
        v1_database, "SELECT count(*) FROM service_requests WHERE title = 'after the upgrade'"
    ) == [(0,)]


@dataclass(eq=False)
class CompaniesProbe(threading.Thread):
    """Reads companies as a v1 page does, over and over, timing each read, until stopped."""

    url: str
    longest: float = 0.0
    reads: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        super().__init__(daemon=True)

    def run(self) -> None:
        with psycopg.connect(libpq_url(self.url), autocommit=True) as conn:
            conn.execute("SET statement_timeout = '30s'")
            while not self.stop.is_set():
                started = time.perf_counter()
                conn.execute("SELECT name FROM companies WHERE company_id = %s", (ACME,)).fetchone()
                self.longest = max(self.longest, time.perf_counter() - started)
                self.reads += 1
                time.sleep(0.01)


@pytest.mark.slow
def test_readers_of_companies_wait_no_longer_than_readers_of_service_requests(v1_database):
    # 0007 adds a column to companies (ACCESS EXCLUSIVE). Taken when 0007 runs,
    # that lock would hold readers of companies through everything after it,
    # here including a swap kept waiting 3 s by a report still reading the v1
    # service_requests. Taken with the swap's lock, it holds them a moment.
    execute(v1_database, MORE_V1_REQUESTS)
    probe = CompaniesProbe(v1_database)
    probe.start()
    wait_for(lambda: probe.reads > 0, "the first read of companies")
    report = psycopg.connect(libpq_url(v1_database))
    report.execute("SELECT count(*) FROM service_requests")  # holds the v1 table
    upgrade = InBackground(
        lambda: flask_cli(v1_database, "db", "upgrade", MIGRATION_LOCK_TIMEOUT="30s")
    )
    try:
        wait_for(lambda: swap_is_waiting(v1_database), "the upgrade to reach the swap")
        time.sleep(3)
    finally:
        report.rollback()
        report.close()
    result = upgrade()
    probe.stop.set()
    probe.join(timeout=60)
    assert result.returncode == 0, result.stderr
    [(emerged,)] = query(
        v1_database, "SELECT count(*) FROM companies WHERE emerged_from_address IS NOT NULL"
    )
    assert emerged >= 500  # 0007's column is filled (one supplier per new gmail.com address)
    assert probe.reads > 100  # it read throughout
    assert probe.longest < 1.0


@pytest.mark.slow
def test_a_connection_lost_mid_upgrade_changes_nothing_and_says_so(v1_database):
    """The server drops the upgrade's connection while it waits at the swap: one line, no trace."""
    before = dump(v1_database)
    report = psycopg.connect(libpq_url(v1_database))
    report.execute("SELECT count(*) FROM service_requests")  # keeps the upgrade at the swap
    upgrade = InBackground(
        lambda: flask_cli(v1_database, "db", "upgrade", MIGRATION_LOCK_TIMEOUT="30s")
    )
    try:
        wait_for(lambda: swap_is_waiting(v1_database), "the upgrade to reach the swap")
        execute(
            v1_database,
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE relation ="
            " to_regclass('service_requests') AND mode = 'AccessExclusiveLock' AND NOT granted",
        )
        result = upgrade()
    finally:
        report.rollback()
        report.close()
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert "Error: the database failed during the migration" in result.stderr, result.stderr
    assert "nothing was changed" in result.stderr
    assert dump(v1_database) == before
    migrate(v1_database)  # and it goes through once run again
