"""Benchmark: does the supplier dashboard stay fast at a million service requests?

Usage (from the repository root):

    .venv/bin/python bench/dashboard.py [--requests N] [--keep] [--seconds S]

Other options: --repeats R (measurements per endpoint, median reported; default 5),
--connections C (wrk connections; default 8), --reuse (keep and reuse already seeded
databases of the right size), --server-url URL.

What it does:

1. Seeds two databases at migration head (``flask db upgrade`` as a subprocess):
   ``fleetos_bench_dashboard`` with ``--requests`` requests (default 1,000,000) and
   ``fleetos_bench_dashboard_1k`` with 1,000. Both: 1,000 fleet and 200 supplier
   companies, 3 contacts per fleet and 4 per supplier; requests generated server-side
   with generate_series in created_at order (as an app inserts them), created_at over
   the last 2 years; supplier 1 owns every 5th request (20 %), the others are spread at
   random; statuses cycle per supplier 15 % new, 10 % acknowledged, 10 % in progress,
   55 % completed, 10 % declined (so supplier 1 has 30,000 'new' requests at 1M, 1,200
   pages of 25, and exactly 30 at 1k); half the requests are assigned to a supplier
   contact. The count trigger is disabled for the bulk load and request_status_counts is
   rebuilt with migration 0005's INSERT ... SELECT ... GROUP BY, in the same transaction.
   Then VACUUM ANALYZE.
2. Serves each database with the real app under gunicorn (``-w 2 --threads 4``, gthread,
   the project's gunicorn.conf.py otherwise) on loopback; the app comes from
   bench/dashboard_app.py, which adds two control endpoints: the same SQL and the same
   templates through a raw psycopg connection instead of Flask-SQLAlchemy.
3. Signs in as supplier 1's first contact with a session cookie made by the app's own
   session interface, and checks that the app runs exactly the SQL the control endpoints
   run and that both render the same HTML.
4. Loads each endpoint with wrk (keep-alive, --connections connections, one thread) for
   --seconds (default 10) after a 3 s warm-up and a 2 s pause (the workers finish the
   warm-up's requests), --repeats times in interleaved rounds;
   reports the median requests/s, p50 and p99 per endpoint, and the CPU time per request
   of the gunicorn workers and of the database's PostgreSQL backends (from /proc), a
   figure that a noisy machine disturbs far less than requests/s. wrk's keep-alive
   connections stay with the worker that accepted them: a measurement where one worker
   did more than 65 % of the work is made again (up to 4 times; the count is reported).
5. Prints EXPLAIN (ANALYZE, BUFFERS) of the list query (page 1 and page 400) and of the
   counts query on the big database: the custom plan (values inlined) and the generic
   plan (what a prepared statement may switch to after five executions).
6. Prints the report and writes it to bench/out/dashboard-report.md.

What the p99 comparison compares: the list partial, page 1 of status 'new', for supplier 1
(the 20 % supplier) in the big database (200,000 of its own requests, 30,000 new) against
the same supplier in the 1,000-request database (200 of its own, 30 new). Both pages hold
25 rows and a "load older" link.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.client import HTTPConnection
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
OUT_DIR = BENCH_DIR / "out"
VENV_BIN = REPO_ROOT / ".venv" / "bin"
sys.path.insert(0, str(BENCH_DIR))

DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BIG_DB = "fleetos_bench_dashboard"
SMALL_DB = "fleetos_bench_dashboard_1k"
SMALL_REQUESTS = 1000
SECRET_KEY = "bench-dashboard-secret-key"

FLEETS = 1000
SUPPLIERS = 200
CONTACTS_PER_FLEET = 3
CONTACTS_PER_SUPPLIER = 4
PAGE_SIZE = 25
DEEP_PAGE = 400
WARMUP_SECONDS = 3
SETTLE_SECONDS = 2

# ---------------------------------------------------------------------------
# Seeding (server-side). Ids are md5-derived UUIDs, so rows refer to each other
# by number without lookups.
# ---------------------------------------------------------------------------

SEED_COMPANIES_AND_CONTACTS = f"""
INSERT INTO companies (company_id, name, company_type, email_domain, created_at)
SELECT md5('fleet:' || f)::uuid, 'Fleet ' || f, 'fleet', 'fleet' || f || '.example',
       (now() AT TIME ZONE 'UTC') - interval '3 years' + f * interval '1 hour'
  FROM generate_series(1, {FLEETS}) f;

INSERT INTO companies (company_id, name, company_type, email_domain, created_at)
SELECT md5('supplier:' || s)::uuid, 'Supplier ' || s, 'supplier', 'supplier' || s || '.example',
       (now() AT TIME ZONE 'UTC') - interval '3 years' + s * interval '2 hours'
  FROM generate_series(1, {SUPPLIERS}) s;

INSERT INTO contacts (contact_id, company_id, contact_value, contact_type, display_name,
                      first_seen_at, last_seen_at)
SELECT md5('fleet-contact:' || f || ':' || k)::uuid, md5('fleet:' || f)::uuid,
       'driver' || k || '@fleet' || f || '.example', 'email',
       CASE WHEN k <> 3 THEN 'Driver ' || k || ' of Fleet ' || f END,
       (now() AT TIME ZONE 'UTC') - interval '2 years',
       (now() AT TIME ZONE 'UTC') - (f * k) * interval '1 minute'
  FROM generate_series(1, {FLEETS}) f, generate_series(1, {CONTACTS_PER_FLEET}) k;

INSERT INTO contacts (contact_id, company_id, contact_value, contact_type, display_name,
                      first_seen_at, last_seen_at)
SELECT md5('supplier-contact:' || s || ':' || k)::uuid, md5('supplier:' || s)::uuid,
       'tech' || k || '@supplier' || s || '.example', 'email',
       CASE WHEN k <> 4 THEN 'Tech ' || k || ' of Supplier ' || s END,
       (now() AT TIME ZONE 'UTC') - interval '2 years',
       (now() AT TIME ZONE 'UTC') - (s * k) * interval '1 minute'
  FROM generate_series(1, {SUPPLIERS}) s, generate_series(1, {CONTACTS_PER_SUPPLIER}) k;
"""

# Status bucket b in 0..19 cycles within each supplier's share: for supplier 1
# (i = 5m) it is 7m mod 20, so every status gets its exact share of its rows.
SEED_REQUESTS = f"""
INSERT INTO service_requests (vehicle, title, description, priority, status, created_at,
                              updated_at, fleet_company_id, supplier_company_id,
                              submitted_by_contact_id, assigned_to_contact_id, odometer, location)
SELECT 'VAN-' || lpad((d.fleet * 10 + d.i % 10)::text, 5, '0'),
       'Service ' || (ARRAY['brakes', 'tyres', 'oil change', 'MOT', 'bodywork'])[1 + d.i % 5]
           || ' for VAN-' || lpad((d.fleet * 10 + d.i % 10)::text, 5, '0'),
       CASE WHEN d.i % 3 <> 0 THEN 'Request ' || d.i || ' from fleet ' || d.fleet END,
       (ARRAY['low', 'normal', 'normal', 'normal', 'high', 'urgent'])[1 + d.i % 6],
       CASE WHEN d.b < 3 THEN 'new' WHEN d.b < 5 THEN 'acknowledged'
            WHEN d.b < 7 THEN 'in_progress' WHEN d.b < 18 THEN 'completed'
            ELSE 'declined' END,
       d.created_at,
       d.created_at + d.r_updated * interval '3 days',
       md5('fleet:' || d.fleet)::uuid,
       md5('supplier:' || d.supplier)::uuid,
       md5('fleet-contact:' || d.fleet || ':' || d.fleet_k)::uuid,
       CASE WHEN d.i % 2 = 0
            THEN md5('supplier-contact:' || d.supplier || ':' || d.supplier_k)::uuid END,
       CASE WHEN d.i % 4 <> 0 THEN 10000 + d.i % 190000 END,
       CASE WHEN d.i % 4 = 1 THEN 'Depot ' || d.fleet END
  FROM (SELECT i,
               1 + floor(random() * {FLEETS})::int AS fleet,
               1 + floor(random() * {CONTACTS_PER_FLEET})::int AS fleet_k,
               CASE WHEN i % 5 = 0 THEN 1
                    ELSE 2 + floor(random() * {SUPPLIERS - 1})::int END AS supplier,
               1 + floor(random() * {CONTACTS_PER_SUPPLIER})::int AS supplier_k,
               ((i / 5) * 7 + (i % 5) * 3) % 20 AS b,
               random() AS r_updated,
               (now() AT TIME ZONE 'UTC') - random() * interval '730 days' AS created_at
          FROM generate_series(1, {{requests}}) i
        OFFSET 0) d
 ORDER BY d.created_at;
"""

# Migration 0005's fill of request_status_counts, word for word.
REBUILD_COUNTS = """
DELETE FROM request_status_counts;
INSERT INTO request_status_counts (company_id, side, status, n)
SELECT fleet_company_id, 'fleet', status, count(*) FROM service_requests
 WHERE fleet_company_id IS NOT NULL GROUP BY fleet_company_id, status
UNION ALL
SELECT supplier_company_id, 'supplier', status, count(*) FROM service_requests
 WHERE supplier_company_id IS NOT NULL GROUP BY supplier_company_id, status;
"""

BIG_SUPPLIER_ID = "md5('supplier:1')::uuid"
BIG_CONTACT_SQL = "SELECT md5('supplier-contact:1:1')::uuid"

CHECK_SEED = f"""
SELECT (SELECT count(*) FROM service_requests),
       (SELECT count(*) FROM service_requests WHERE supplier_company_id = {BIG_SUPPLIER_ID}),
       (SELECT count(*) FROM service_requests
         WHERE supplier_company_id = {BIG_SUPPLIER_ID} AND status = 'new'),
       (SELECT n FROM request_status_counts
         WHERE company_id = {BIG_SUPPLIER_ID} AND side = 'supplier' AND status = 'new'),
       (SELECT count(*) FROM (
            SELECT company_id, side, status, n FROM request_status_counts
            EXCEPT
            SELECT supplier_company_id, 'supplier', status, count(*) FROM service_requests
             GROUP BY supplier_company_id, status
            EXCEPT
            SELECT fleet_company_id, 'fleet', status, count(*) FROM service_requests
             GROUP BY fleet_company_id, status) wrong)
"""

# The cursor of page DEEP_PAGE: the last row of the page before it (OFFSET once, only
# to build the cursor; the app then seeks by keyset).
DEEP_CURSOR_SQL = f"""
SELECT created_at, request_id FROM service_requests
 WHERE supplier_company_id = {BIG_SUPPLIER_ID} AND status = 'new'
 ORDER BY created_at DESC, request_id DESC
OFFSET %s LIMIT 1
"""


@dataclass
class Seeded:
    name: str
    url: str
    requests: int
    supplier_requests: int
    supplier_new: int
    timings: dict[str, float] = field(default_factory=dict)
    reused: bool = False


def database_url(server_url: str, name: str) -> str:
    return urlunsplit(urlsplit(server_url)._replace(path="/" + name))


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def existing_seed(url: str, requests: int) -> Seeded | None:
    """A database seeded before with ``requests`` requests and right counts, or None."""
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            total, big, big_new, counted, wrong = conn.execute(CHECK_SEED).fetchone()
    except psycopg.Error:
        return None
    if total != requests or wrong or counted != big_new:
        return None
    return Seeded(urlsplit(url).path.lstrip("/"), url, total, big, big_new, reused=True)


def seed(server_url: str, name: str, requests: int) -> Seeded:
    url = database_url(server_url, name)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    drop_database(server_url, name)
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "FLEETOS_"))}
    env.update(DATABASE_URL=url, SECRET_KEY=SECRET_KEY)
    result = subprocess.run(
        [str(VENV_BIN / "flask"), "db", "upgrade"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        sys.exit(f"flask db upgrade failed on {name}:\n{result.stderr}")
    timings["create + flask db upgrade"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    with psycopg.connect(url) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET work_mem = '256MB'")
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute("SELECT setseed(0.42)")
        conn.execute(SEED_COMPANIES_AND_CONTACTS)
        conn.execute("ALTER TABLE service_requests DISABLE TRIGGER service_requests_count_statuses")
        conn.execute(sql.SQL(SEED_REQUESTS).format(requests=sql.Literal(requests)))
        conn.execute(REBUILD_COUNTS)
        conn.execute("ALTER TABLE service_requests ENABLE TRIGGER service_requests_count_statuses")
    timings["insert (generate_series) + counts rebuild"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    timings["VACUUM ANALYZE"] = time.perf_counter() - t0

    found = existing_seed(url, requests)
    if found is None:
        sys.exit(f"seeding {name} went wrong: wrong request count or request_status_counts")
    found.timings, found.reused = timings, False
    return found


def big_contact_id(url: str) -> uuid.UUID:
    with psycopg.connect(url) as conn:
        return conn.execute(BIG_CONTACT_SQL).fetchone()[0]


def deep_cursor(url: str, page: int) -> tuple[datetime, uuid.UUID]:
    with psycopg.connect(url) as conn:
        row = conn.execute(DEEP_CURSOR_SQL, ((page - 1) * PAGE_SIZE - 1,)).fetchone()
    assert row is not None, "not enough 'new' requests for the deep page"
    return row[0], row[1]


# ---------------------------------------------------------------------------
# The app: in-process checks (SQL identical) and gunicorn servers.
# ---------------------------------------------------------------------------


@dataclass
class Endpoints:
    """The URLs measured, and what the control endpoints compile to."""

    cookie: str
    list_p1: str
    list_deep: str
    counts: str
    control_p1: str
    control_deep: str
    control_counts: str
    deep_page: int
    sql: dict[str, Any]


def make_endpoints(url: str, contact_id: uuid.UUID, deep_page: int) -> Endpoints:
    """Build the cookie and URLs, and check in-process that the app runs the control's SQL."""
    import dashboard_app
    from sqlalchemy import event

    from fleetos.dashboard.queries import Cursor
    from fleetos.extensions import db

    app = dashboard_app.create(url, SECRET_KEY)
    serializer = app.session_interface.get_signing_serializer(app)
    assert serializer is not None
    csrf_raw = hashlib.sha1(os.urandom(64)).hexdigest()  # as Flask-WTF makes it
    cookie = serializer.dumps(
        {"contact_id": str(contact_id), "csrf_token": csrf_raw, "_permanent": True}
    )
    cookie_header = f"{app.config['SESSION_COOKIE_NAME']}={cookie}"
    # Page 1 only (deep_page 1): the deep URLs then ask for page 2 and are not measured.
    after = Cursor(*deep_cursor(url, max(deep_page, 2))).encode()
    status = urlencode({"status": "new"})
    deep = urlencode({"status": "new", "after": after})
    endpoints = Endpoints(
        cookie=cookie_header,
        list_p1=f"/dashboard/rows?{status}",
        list_deep=f"/dashboard/rows?{deep}",
        counts=f"/dashboard/counts?{status}",
        control_p1=f"/bench/control/rows?{status}",
        control_deep=f"/bench/control/rows?{deep}",
        control_counts=f"/bench/control/counts?{status}",
        deep_page=deep_page,
        sql={},
    )

    captured: list[str] = []
    with app.app_context():
        queries = {"list page 1": dashboard_app.list_query(True, False)}
        if deep_page > 1:
            queries[f"list page {deep_page}"] = dashboard_app.list_query(True, True)
        queries["counts"] = dashboard_app.counts_query()

        def capture(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            captured.append(statement)

        event.listen(db.engine, "before_cursor_execute", capture)
        client = app.test_client()  # drops a Cookie header: it has a cookie jar instead
        client.set_cookie(app.config["SESSION_COOKIE_NAME"], cookie)
        headers = {"HX-Request": "true"}
        checks = [("list page 1", endpoints.list_p1), ("counts", endpoints.counts)]
        if deep_page > 1:
            checks.append((f"list page {deep_page}", endpoints.list_deep))
        for label, path in checks:
            captured.clear()
            response = client.get(path, headers=headers)
            assert response.status_code == 200, (path, response.status_code)
            if queries[label].sql not in captured:
                sys.exit(
                    f"the control SQL for {label} is not what the app ran:\n"
                    + queries[label].sql
                    + "\n--- the app ran:\n"
                    + "\n".join(captured)
                )
        event.remove(db.engine, "before_cursor_execute", capture)
        db.engine.dispose()
    endpoints.sql = {"queries": queries, "after": after}
    return endpoints


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    label: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    dbname: str


def start_server(label: str, url: str, log_dir: Path) -> Server:
    port = free_port()
    log_path = log_dir / f"gunicorn-{label}.log"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FLASK_", "FLEETOS_", "DATABASE_URL", "WEB_CONCURRENCY"))
    }
    env.update(BENCH_DATABASE_URL=url, BENCH_SECRET_KEY=SECRET_KEY)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                str(VENV_BIN / "gunicorn"),
                "-c",
                str(REPO_ROOT / "gunicorn.conf.py"),
                "-k",
                "gthread",
                "-w",
                "2",
                "--threads",
                "4",
                "-b",
                f"127.0.0.1:{port}",
                "--log-level",
                "warning",
                "--pythonpath",
                str(BENCH_DIR),
                "dashboard_app:create()",
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(label, port, proc, log_path, urlsplit(url).path.lstrip("/"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"gunicorn ({label}) exited:\n{log_path.read_text()}")
        try:
            if get(server, "/healthz", {})[0] == 200:
                return server
        except OSError:
            pass
        time.sleep(0.3)
    stop_server(server)
    sys.exit(f"gunicorn ({label}) did not answer /healthz in 60 s")


def stop_server(server: Server) -> None:
    if server.proc.poll() is None:
        server.proc.terminate()
        try:
            server.proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()


@contextmanager
def servers(specs: list[tuple[str, str]], log_dir: Path) -> Iterator[dict[str, Server]]:
    started: dict[str, Server] = {}
    try:
        for label, url in specs:
            started[label] = start_server(label, url, log_dir)
        yield started
    finally:
        for server in started.values():
            stop_server(server)


def get(server: Server, path: str, headers: dict[str, str]) -> tuple[int, str]:
    conn = HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


CSRF_VALUE = re.compile(r'(name="csrf_token" value=")[^"]*(")')
AGE = re.compile(r'(UTC">)[^<]*(</span>)')


def normalised(html: str) -> str:
    return AGE.sub(r"\1\2", CSRF_VALUE.sub(r"\1\2", html))


def check_same_html(server: Server, endpoints: Endpoints) -> None:
    """Each control endpoint must answer what its app endpoint answers (25 rows and a link)."""
    headers = {"Cookie": endpoints.cookie, "HX-Request": "true"}
    pairs = [
        (endpoints.list_p1, endpoints.control_p1, PAGE_SIZE),
        (endpoints.counts, endpoints.control_counts, 0),
    ]
    if endpoints.deep_page > 1:
        pairs.append((endpoints.list_deep, endpoints.control_deep, PAGE_SIZE))
    for app_path, control_path, rows in pairs:
        app_status, app_html = get(server, app_path, headers)
        control_status, control_html = get(server, control_path, headers)
        if (app_status, control_status) != (200, 200):
            sys.exit(
                f"{server.label}: {app_path} -> {app_status}, {control_path} -> {control_status}"
            )
        if normalised(app_html) != normalised(control_html):
            sys.exit(f"{server.label}: {control_path} renders other HTML than {app_path}")
        if rows and (
            app_html.count('class="request-card') != rows or 'id="load-more"' not in app_html
        ):
            sys.exit(f"{server.label}: {app_path} is not a full page with a 'load older' link")


# ---------------------------------------------------------------------------
# Load generation: wrk with a Lua script for the headers and a JSON summary.
# ---------------------------------------------------------------------------

WRK_SCRIPT = """
wrk.method = "GET"
wrk.headers["Cookie"] = "%(cookie)s"
wrk.headers["HX-Request"] = "true"

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %%d, "duration_us": %%d, "errors": %%d, "non2xx": %%d, '
    .. '"p50_us": %%d, "p90_us": %%d, "p99_us": %%d, "max_us": %%d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


@dataclass
class Sample:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    app_cpu_ms: float = 0.0  # CPU per request of the gunicorn workers
    db_cpu_ms: float = 0.0  # CPU per request of the PostgreSQL backends of the database
    busiest_worker: float = 0.0  # the busiest worker's share of the workers' CPU


# CPU accounting from /proc: less sensitive to a noisy machine than requests/s, since
# time spent waiting for a core someone else holds is not counted.
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def proc_stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user + system CPU seconds) of a process, or None if it is gone."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = data[data.rfind(")") + 2 :].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def cpu_snapshot(
    server: Server, admin: psycopg.Connection[Any]
) -> tuple[dict[int, float], dict[int, float]]:
    """CPU seconds so far of each of the server's workers and of each database backend."""
    workers = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = proc_stat(int(entry.name))
            if stat and stat[0] == server.proc.pid:
                workers[int(entry.name)] = stat[1]
    backends = {}
    for (pid,) in admin.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = %s", (server.dbname,)
    ):
        stat = proc_stat(pid)
        if stat:
            backends[pid] = stat[1]
    return workers, backends


def wrk(
    server: Server,
    path: str,
    script: Path,
    seconds: float,
    connections: int,
    admin: psycopg.Connection[Any] | None = None,
) -> Sample:
    before = cpu_snapshot(server, admin) if admin else None
    result = subprocess.run(
        [
            "wrk",
            "-t",
            "1",
            "-c",
            str(connections),
            "-d",
            f"{seconds:g}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            f"http://127.0.0.1:{server.port}{path}",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    )
    line = next((x for x in result.stdout.splitlines() if x.startswith("BENCH ")), None)
    if result.returncode != 0 or line is None:
        sys.exit(f"wrk failed on {path}:\n{result.stdout}\n{result.stderr}")
    data = json.loads(line[len("BENCH ") :])
    if data["errors"] or data["non2xx"]:
        sys.exit(
            f"wrk on {server.label}{path}: {data['errors']} socket errors, "
            f"{data['non2xx']} non-2xx responses; see {server.log_path}"
        )
    sample = Sample(
        rps=data["requests"] / (data["duration_us"] / 1e6),
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        requests=data["requests"],
    )
    if before and admin:
        workers, backends = cpu_snapshot(server, admin)
        per_worker = [cpu - before[0].get(pid, 0.0) for pid, cpu in workers.items()]
        db_cpu = sum(cpu - before[1].get(pid, 0.0) for pid, cpu in backends.items())
        sample.app_cpu_ms = sum(per_worker) * 1000 / data["requests"]
        sample.db_cpu_ms = db_cpu * 1000 / data["requests"]
        sample.busiest_worker = max(per_worker) / max(sum(per_worker), 1e-9)
    return sample


# wrk's keep-alive connections stay with the worker that accepted them; with a handful of
# them, one of the two workers may get most, and then one Python process (one core) does
# most of the work: req/s drops by a third or more. Such a measurement is made again.
MAX_WORKER_SHARE = 0.65
ATTEMPTS = 4


@dataclass
class Measured:
    label: str
    samples: list[Sample] = field(default_factory=list)
    unbalanced: int = 0  # measurements made again (connections on one worker)

    def median(self, attr: str) -> float:
        return statistics.median(getattr(s, attr) for s in self.samples)


def measure(
    plan: list[tuple[str, Server, str]],
    script: Path,
    seconds: float,
    repeats: int,
    connections: int,
    admin: psycopg.Connection[Any],
) -> dict[str, Measured]:
    results = {label: Measured(label) for label, _, _ in plan}
    for round_no in range(1, repeats + 1):
        # Forward, then backward: neighbours stay neighbours (pairs compared per round),
        # and neither of two neighbours always goes first.
        for label, server, path in plan if round_no % 2 else plan[::-1]:
            for attempt in range(1, ATTEMPTS + 1):
                wrk(server, path, script, WARMUP_SECONDS, connections)
                time.sleep(SETTLE_SECONDS)  # let the workers finish the warm-up's requests
                sample = wrk(server, path, script, seconds, connections, admin)
                print(
                    f"  round {round_no}/{repeats} {label:<30} {sample.rps:7.1f} req/s "
                    f"p50 {sample.p50_ms:7.2f} ms  p99 {sample.p99_ms:7.2f} ms  CPU/req app "
                    f"{sample.app_cpu_ms:5.2f} ms db {sample.db_cpu_ms:5.2f} ms  busiest "
                    f"worker {sample.busiest_worker:.0%}",
                    flush=True,
                )
                if sample.busiest_worker <= MAX_WORKER_SHARE:
                    break
                results[label].unbalanced += 1
                if attempt < ATTEMPTS:
                    print("    (connections unevenly spread over the workers: again)")
            results[label].samples.append(sample)
    return results


# ---------------------------------------------------------------------------
# EXPLAIN
# ---------------------------------------------------------------------------


def explain(
    url: str, endpoints: Endpoints, company_id: uuid.UUID, deep: tuple[datetime, uuid.UUID]
) -> dict[str, dict[str, str]]:
    queries = endpoints.sql["queries"]
    values = {
        "list page 1": {"company_id": company_id, "status": "new", "limit": PAGE_SIZE + 1},
        f"list page {endpoints.deep_page}": {
            "company_id": company_id,
            "status": "new",
            "limit": PAGE_SIZE + 1,
            "after_created_at": deep[0],
            "after_request_id": deep[1],
        },
        "counts": {"company_id": company_id, "side": "supplier"},
    }
    out: dict[str, dict[str, str]] = {}
    with psycopg.connect(url, autocommit=True, options="-c timezone=UTC") as conn:
        for label, query in queries.items():
            params = query.params(**values[label])
            conn.execute(query.sql, params).fetchall()  # warm the cache first
            custom = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + query.sql, params).fetchall()
            # The generic plan: what a prepared statement may switch to after 5 executions
            # (psycopg prepares after 5, the app's and the control's connections alike).
            names = list(query.roles)
            generic_sql = query.sql % {name: f"${i}" for i, name in enumerate(names, 1)}
            conn.execute("DEALLOCATE ALL")
            conn.execute(f"PREPARE bench_q AS {generic_sql}")
            conn.execute("SET plan_cache_mode = force_generic_plan")
            args = ", ".join(_literal(params[name]) for name in names)
            generic = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_q({args})").fetchall()
            conn.execute("RESET plan_cache_mode")
            conn.execute("DEALLOCATE bench_q")
            out[label] = {
                "sql": query.literal(**values[label]),
                "custom": "\n".join(row[0] for row in custom),
                "generic": "\n".join(row[0] for row in generic),
            }
    return out


def _literal(value: Any) -> str:
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


INDEX_USED = re.compile(
    r"(?:Index Scan (?:Backward )?using|Index Only Scan (?:Backward )?using"
    r"|Bitmap Index Scan on) (\S+)"
)
EXECUTION = re.compile(r"Execution Time: ([\d.]+) ms")


def plan_summary(plan: str) -> str:
    indexes = sorted(set(INDEX_USED.findall(plan)))
    seq = sorted(set(re.findall(r"Seq Scan on (\S+)", plan)))
    execution = EXECUTION.search(plan)
    parts = [f"indexes: {', '.join(indexes) or 'none'}"]
    if seq:
        parts.append(f"seq scans: {', '.join(seq)}")
    if execution:
        parts.append(f"execution {execution.group(1)} ms")
    return "; ".join(parts)


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


def check(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def build_report(
    args: argparse.Namespace,
    big: Seeded,
    small: Seeded,
    results: dict[str, Measured],
    plans: dict[str, dict[str, str]],
    endpoints: Endpoints,
) -> str:
    deep = f"list page {endpoints.deep_page}"
    r = {
        label: {
            "rps": m.median("rps"),
            "p50": m.median("p50_ms"),
            "p99": m.median("p99_ms"),
            "app_cpu": m.median("app_cpu_ms"),
            "db_cpu": m.median("db_cpu_ms"),
        }
        for label, m in results.items()
    }
    lines = [
        "# FleetOS dashboard benchmark",
        "",
        f"- Data: big database {big.requests:,} requests (supplier 1: {big.supplier_requests:,},"
        f" {big.supplier_new:,} new = {big.supplier_new // PAGE_SIZE:,} pages); small database"
        f" {small.requests:,} requests (supplier 1: {small.supplier_requests:,},"
        f" {small.supplier_new:,} new). Signed in as supplier 1's contact; status 'new'.",
        "- Server: gunicorn gthread `-w 2 --threads 4` (project gunicorn.conf.py otherwise),"
        " app from bench/dashboard_app.py, one server per database, loopback.",
        f"- Load: wrk, 1 thread, {args.connections} keep-alive connections, {WARMUP_SECONDS} s"
        f" warm-up + {SETTLE_SECONDS} s pause + {args.seconds:g} s per measurement,"
        f" {args.repeats} interleaved rounds;"
        " medians of the rounds. Machine: "
        f"{os.cpu_count()} cores, shared with PostgreSQL and wrk.",
        "- Control endpoints: the same SQL (checked equal to what the app ran) and the same"
        " templates, read through a per-thread raw psycopg connection instead of"
        " Flask-SQLAlchemy.",
        "- The control's autocommit connections keep psycopg's prepared statements (made"
        " after 5 executions); the app's do not, as each request ends with ROLLBACK, on which"
        " psycopg forgets them: the app parses and plans every query (see the db CPU column).",
        "- CPU/req: CPU time per request of the gunicorn workers (app) and of the database's"
        " PostgreSQL backends (db), from /proc; unlike req/s it hardly counts time spent"
        " waiting for a core other processes hold.",
        "- redone: measurements made again because one worker did more than"
        f" {MAX_WORKER_SHARE:.0%} of the work (wrk's keep-alive connections stay with the worker"
        " that accepted them).",
        "",
        "| endpoint | req/s | p50 ms | p99 ms | CPU/req app ms | CPU/req db ms |"
        " rounds (req/s) | redone |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for label, m in results.items():
        rounds = ", ".join(f"{s.rps:.0f}" for s in m.samples)
        lines.append(
            f"| {label} | {r[label]['rps']:.1f} | {r[label]['p50']:.2f} | "
            f"{r[label]['p99']:.2f} | {r[label]['app_cpu']:.2f} | "
            f"{r[label]['db_cpu']:.2f} | {rounds} | {m.unbalanced} |"
        )

    big_p1, small_p1 = r["list page 1 @big"], r["list page 1 @1k"]
    deep_r, counts_r, control = r[f"{deep} @big"], r["counts @big"], r["control list page 1 @big"]

    def cpu(row: dict[str, float]) -> float:
        return row["app_cpu"] + row["db_cpu"]

    def paired(a: str, b: str, attr: str) -> float:
        """The median over rounds of a's figure over b's, measured minutes apart at most."""
        return statistics.median(
            getattr(x, attr) / getattr(y, attr)
            for x, y in zip(results[a].samples, results[b].samples, strict=True)
        )

    throughput = big_p1["rps"] / control["rps"]
    cpu_ratio = cpu(control) / max(cpu(big_p1), 1e-9)
    p99_ratio = big_p1["p99"] / small_p1["p99"]
    deep_ratio = deep_r["p50"] / big_p1["p50"]
    counts_ratio = counts_r["p50"] / big_p1["p50"]
    lines += [
        "",
        "## Targets",
        "",
        "| target | measured | result |",
        "| --- | --- | --- |",
        f"| list throughput >= 60 % of control (page 1), by req/s | {big_p1['rps']:.1f} / "
        f"{control['rps']:.1f} req/s = {throughput:.0%} (per round: "
        f"{paired('list page 1 @big', 'control list page 1 @big', 'rps'):.0%})"
        f" | {check(throughput >= 0.6)} |",
        "| the same, by CPU per request (app + db): control / list | "
        f"{cpu(control):.2f} / {cpu(big_p1):.2f} ms = {cpu_ratio:.0%} | "
        f"{check(cpu_ratio >= 0.6)} |",
        f"| p99 list @{big.requests:,} <= 1.5 x p99 list @{small.requests:,} | "
        f"{big_p1['p99']:.2f} / {small_p1['p99']:.2f} ms = {p99_ratio:.2f}x (per round: "
        f"{paired('list page 1 @big', 'list page 1 @1k', 'p99_ms'):.2f}x) | "
        f"{check(p99_ratio <= 1.5)} |",
        f"| page {endpoints.deep_page} p50 <= 1.2 x page 1 p50 | {deep_r['p50']:.2f} / "
        f"{big_p1['p50']:.2f} ms = {deep_ratio:.2f}x (per round: "
        f"{paired(f'{deep} @big', 'list page 1 @big', 'p50_ms'):.2f}x; CPU/req: "
        f"{cpu(deep_r) / max(cpu(big_p1), 1e-9):.2f}x) | {check(deep_ratio <= 1.2)} |",
        f"| counts p50 <= 2 x list p50 | {counts_r['p50']:.2f} / {big_p1['p50']:.2f} ms = "
        f"{counts_ratio:.2f}x (per round: "
        f"{paired('counts @big', 'list page 1 @big', 'p50_ms'):.2f}x) | "
        f"{check(counts_ratio <= 2)} |",
        "",
        "Verdicts use the medians over rounds, as specified. On a shared machine they swing"
        ' with whatever else runs; "per round" is the median of the ratios within each round'
        " (both figures measured close together), and CPU per request is what limits"
        " throughput on a machine of its own, where both endpoints are CPU-bound (throughput"
        " ratio = inverse CPU ratio): where these disagree with a verdict, trust them.",
        "",
        "Also: page-" + str(endpoints.deep_page) + " throughput vs its control "
        f"{deep_r['rps'] / r[f'control {deep} @big']['rps']:.0%}; counts vs its control "
        f"{counts_r['rps'] / r['control counts @big']['rps']:.0%}.",
        "",
        "## Seeding",
        "",
    ]
    for db in (big, small):
        if db.reused:
            lines.append(f"- {db.name}: reused (seeded by an earlier run)")
        else:
            stages = ", ".join(f"{k} {v:.1f} s" for k, v in db.timings.items())
            lines.append(
                f"- {db.name} ({db.requests:,} requests): {stages}; total "
                f"{sum(db.timings.values()):.1f} s"
            )
    lines += ["", f"## EXPLAIN (ANALYZE, BUFFERS) on {big.name} (warm cache)", ""]
    for label, plan in plans.items():
        lines += [
            f"### {label}",
            "",
            f"- custom plan (values inlined): {plan_summary(plan['custom'])}",
            f"- generic plan (prepared, after 5 runs): {plan_summary(plan['generic'])}",
            "",
            "```sql",
            plan["sql"],
            "```",
            "",
            "Custom plan:",
            "",
            "```",
            plan["custom"],
            "```",
            "",
            "Generic plan:",
            "",
            "```",
            plan["generic"],
            "```",
            "",
        ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1_000_000, help="requests, big database")
    parser.add_argument("--seconds", type=float, default=10, help="seconds per measurement")
    parser.add_argument("--repeats", type=int, default=5, help="measurements per endpoint")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="reuse databases seeded by an earlier --keep run (implies --keep)",
    )
    parser.add_argument("--server-url", default=DEFAULT_SERVER_URL, help="maintenance DB URL")
    args = parser.parse_args()
    if args.requests < 5000:  # supplier 1 then has 150 new requests: 6 pages
        parser.error("--requests must be at least 5,000")
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed (Debian: apt-get install -y wrk)")
    return args


def timed(label: str, func: Callable[..., Any], *args: Any) -> Any:
    print(f"{label}...", flush=True)
    t0 = time.perf_counter()
    result = func(*args)
    print(f"  done in {time.perf_counter() - t0:.1f} s", flush=True)
    return result


def seeded(args: argparse.Namespace, name: str, requests: int) -> Seeded:
    found = args.reuse and existing_seed(database_url(args.server_url, name), requests)
    if found:
        print(f"reusing {name} ({requests:,} requests)")
        return found
    return timed(f"seeding {name} ({requests:,} requests)", seed, args.server_url, name, requests)


def main() -> int:
    args = parse_args()
    OUT_DIR.mkdir(exist_ok=True)
    big_url = database_url(args.server_url, BIG_DB)
    small_url = database_url(args.server_url, SMALL_DB)
    keep = args.keep or args.reuse
    try:
        big = seeded(args, BIG_DB, args.requests)
        small = seeded(args, SMALL_DB, SMALL_REQUESTS)
        deep_page = min(DEEP_PAGE, big.supplier_new // PAGE_SIZE - 1)
        contact = big_contact_id(big_url)
        with psycopg.connect(big_url) as conn:
            company = conn.execute(f"SELECT {BIG_SUPPLIER_ID}").fetchone()[0]
        big_ep = timed(
            "checking the control SQL against the app's (in-process)",
            make_endpoints,
            big_url,
            contact,
            deep_page,
        )
        small_ep = make_endpoints(small_url, contact, 1)
        plans = timed(
            "EXPLAIN (ANALYZE, BUFFERS)",
            explain,
            big_url,
            big_ep,
            company,
            deep_cursor(big_url, deep_page),
        )

        with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
            script = Path(tmp) / "dashboard.lua"
            script.write_text(WRK_SCRIPT % {"cookie": big_ep.cookie})
            with servers([("big", big_url), ("1k", small_url)], OUT_DIR) as srv:
                check_same_html(srv["big"], big_ep)
                check_same_html(srv["1k"], small_ep)
                deep = f"list page {deep_page}"
                # Measured in this order (then backwards): the pairs the targets compare
                # are neighbours, or nearly.
                plan = [
                    ("control list page 1 @big", srv["big"], big_ep.control_p1),
                    ("list page 1 @big", srv["big"], big_ep.list_p1),
                    (f"{deep} @big", srv["big"], big_ep.list_deep),
                    ("list page 1 @1k", srv["1k"], small_ep.list_p1),
                    ("counts @big", srv["big"], big_ep.counts),
                    ("control counts @big", srv["big"], big_ep.control_counts),
                    (f"control {deep} @big", srv["big"], big_ep.control_deep),
                    ("control list page 1 @1k", srv["1k"], small_ep.control_p1),
                ]
                print(
                    f"measuring ({len(plan)} endpoints x {args.repeats} rounds x "
                    f"{WARMUP_SECONDS + SETTLE_SECONDS + args.seconds:g} s)...",
                    flush=True,
                )
                with psycopg.connect(args.server_url, autocommit=True) as admin:
                    results = measure(
                        plan, script, args.seconds, args.repeats, args.connections, admin
                    )

        shown = [
            "list page 1 @big",
            f"{deep} @big",
            "counts @big",
            "control list page 1 @big",
            f"control {deep} @big",
            "control counts @big",
            "list page 1 @1k",
            "control list page 1 @1k",
        ]
        results = {label: results[label] for label in shown}
        report = build_report(args, big, small, results, plans, big_ep)
        print("\n" + report)
        (OUT_DIR / "dashboard-report.md").write_text(report + "\n")
        (OUT_DIR / "dashboard-results.json").write_text(
            json.dumps(
                {label: [s.__dict__ for s in m.samples] for label, m in results.items()}, indent=2
            )
        )
        print(f"\nwritten to {OUT_DIR / 'dashboard-report.md'}")
        return 0
    finally:
        if keep:
            print(f"kept databases {BIG_DB} and {SMALL_DB}")
        else:
            drop_database(args.server_url, BIG_DB)
            drop_database(args.server_url, SMALL_DB)


if __name__ == "__main__":
    sys.exit(main())
