"""Benchmark: `flask db upgrade` from FleetOS v1 to head on a large v1 database, new vs old.

Run from anywhere (the repository root is found from this file's path):

    .venv/bin/python bench/migration_upgrade.py [--requests N] [--rounds R] [--keep]
        [--to REVISION]

What it does and measures:

1. Builds one v1 database (default ``fleetos_bench_migration_v1``; dropped first
   if it exists): the v1 schema with ``flask db upgrade 0001_fleetos_v1``, then,
   server-side with ``generate_series``, 1,000 fleet and 200 supplier companies,
   their v1 users (mixed case, stray spaces, case-duplicate pairs within one
   company, suppliers on public mail domains) and ``--requests`` service
   requests (one supplier gets 20 %), then VACUUM ANALYZE.
2. For each round, makes two identical copies of it (``CREATE DATABASE ...
   TEMPLATE``, then a CHECKPOINT and a sync) and upgrades one with each approach, the new
   one first in odd rounds and second in even rounds:
   - **new**: ``flask db upgrade`` (the rebuild beside the v1 table and the swap
     at the end, migrations/requests_rebuild.py), as an operator runs it;
   - **old**: ``bench/migration_upgrade_baseline.sql``, the SQL of the upgrade as
     it was before (in-place ADD COLUMN and UPDATE), run in one transaction from
     ``flask shell``, so that it pays the same start-up of the FleetOS app and
     Alembic (about 1.2 s) as ``flask db upgrade`` does.
3. During each upgrade a probe thread with its own autocommit connection
   repeats a primary-key lookup on service_requests every ``--interval-ms`` and
   records every latency: the longest is the longest a concurrent reader was
   blocked. A second probe does the same on companies (0007 adds a column to
   it: in the new upgrade at the swap, in the old one from 0007 until COMMIT).
4. Prints wall time and longest blocked read of both, the two ratios
   (new / old), and ``flask fleetos verify``'s last line for the new upgrade.
   Each upgraded copy is dropped as soon as it has been timed (and verified),
   so that autovacuum cleaning up after it does not slow the next run; with
   ``--keep`` every database is kept.

``--to REVISION`` upgrades both ways to that revision instead of head: the new
one with ``flask db upgrade REVISION``, the old one with the baseline's SQL up
to that revision's section, then COMMIT. ``--to 0005_dashboard`` measures the
upgrade as it stood when the rebuild was planned (issue 12); ``--to
0002_emergent_contacts`` the rebuild alone. ``flask fleetos verify`` checks
head's schema, so it runs only for head.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

REPO_ROOT = Path(__file__).resolve().parent.parent
FLASK = str(REPO_ROOT / ".venv" / "bin" / "flask")
DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_DB_NAME = "fleetos_bench_migration"
BASELINE_SQL = REPO_ROOT / "bench" / "migration_upgrade_baseline.sql"
HARD_CAP_SECONDS = 30 * 60

FLEETS = 1000
SUPPLIERS = 200
USERS_PER_FLEET = 5
USERS_PER_SUPPLIER = 4

# ---------------------------------------------------------------------------
# Data generation (all server-side).
#
# Company and user ids are md5-derived UUIDs, so requests can reference them
# by number without lookups. Suppliers: s % 4 <> 0 register a domain
# supplier<s>.example (s % 7 = 0 in odd case, with a stray space); s % 4 = 0
# register none, and of those s % 20 = 0 have users on public mail domains
# (supplier 20 even registered gmail.com as its domain, which the upgrade must
# ignore). Case-duplicate pairs (same address, other case) are added inside
# fleets f % 50 = 0 and suppliers s % 25 = 0, never across companies.
# ---------------------------------------------------------------------------

PUBLIC_DOMAINS_SQL = "ARRAY['gmail.com', 'yahoo.co.uk', 'hotmail.com', 'outlook.com', 'icloud.com']"

INSERT_COMPANIES = f"""
INSERT INTO companies (company_id, name, company_type, email_domain, created_at)
SELECT md5('fleet:' || f)::uuid, 'Fleet ' || f, 'fleet',
       CASE WHEN f % 3 = 0 THEN 'fleet' || f || '.example' END,
       now() - interval '3 years' + f * interval '1 hour'
  FROM generate_series(1, {FLEETS}) f;

INSERT INTO companies (company_id, name, company_type, email_domain, created_at)
SELECT md5('supplier:' || s)::uuid, 'Supplier ' || s, 'supplier',
       CASE WHEN s = 20 THEN 'gmail.com'
            WHEN s % 4 = 0 THEN NULL
            WHEN s % 7 = 0 THEN 'Supplier' || s || '.Example '
            ELSE 'supplier' || s || '.example' END,
       now() - interval '3 years' + s * interval '2 hours'
  FROM generate_series(1, {SUPPLIERS}) s;
"""

# Base address, then a variant: mixed case for some, stray spaces for others.
FLEET_USER_EMAIL = """
CASE WHEN (f + k) % 17 = 0 THEN 'User' || k || '@Fleet' || f || '.Example'
     WHEN (f * k) % 23 = 0 THEN ' user' || k || '@fleet' || f || '.example '
     ELSE 'user' || k || '@fleet' || f || '.example' END
"""

SUPPLIER_USER_EMAIL = f"""
CASE WHEN s % 20 = 0
     THEN 'supplier' || s || '.tech' || k || '@' || ({PUBLIC_DOMAINS_SQL})[1 + k % 5]
     WHEN (s + k) % 13 = 0 THEN 'Tech' || k || '@Supplier' || s || '.EXAMPLE'
     WHEN (s * k) % 19 = 0 THEN 'tech' || k || '@supplier' || s || '.example  '
     ELSE 'tech' || k || '@supplier' || s || '.example' END
"""

INSERT_USERS = f"""
INSERT INTO users (user_id, company_id, email, full_name, created_at, last_login_at)
SELECT md5('fleet-user:' || f || ':' || k)::uuid, md5('fleet:' || f)::uuid,
       {FLEET_USER_EMAIL},
       CASE WHEN k % 4 = 0 THEN NULL ELSE 'Driver ' || k || ' of Fleet ' || f END,
       now() - interval '2 years' - (f + k) * interval '1 minute',
       CASE WHEN (f + k) % 5 = 0 THEN NULL ELSE now() - (f * k) * interval '1 minute' END
  FROM generate_series(1, {FLEETS}) f, generate_series(1, {USERS_PER_FLEET}) k;

INSERT INTO users (user_id, company_id, email, full_name, created_at, last_login_at)
SELECT md5('supplier-user:' || s || ':' || k)::uuid, md5('supplier:' || s)::uuid,
       {SUPPLIER_USER_EMAIL},
       CASE WHEN k = 3 THEN '  ' ELSE 'Tech ' || k || ' of Supplier ' || s END,
       now() - interval '2 years' - (s + k) * interval '1 minute',
       CASE WHEN (s + k) % 6 = 0 THEN NULL ELSE now() - (s * k) * interval '1 minute' END
  FROM generate_series(1, {SUPPLIERS}) s, generate_series(1, {USERS_PER_SUPPLIER}) k;

-- Case-duplicates of user 1, in the same company (the upgrade merges them).
INSERT INTO users (user_id, company_id, email, full_name, created_at)
SELECT md5('fleet-user-dup:' || f)::uuid, md5('fleet:' || f)::uuid,
       upper('user1@fleet' || f || '.example'), 'Duplicate of user 1',
       now() - interval '1 year'
  FROM generate_series(50, {FLEETS}, 50) f;

INSERT INTO users (user_id, company_id, email, full_name, created_at)
SELECT md5('supplier-user-dup:' || s)::uuid, md5('supplier:' || s)::uuid,
       ' ' || upper(u.email), NULL, now() - interval '1 year'
  FROM generate_series(25, {SUPPLIERS}, 25) s
  JOIN users u ON u.user_id = md5('supplier-user:' || s || ':1')::uuid;
"""

# One row of random draws per request; OFFSET 0 keeps each draw evaluated once.
# Categories of supplier addressing:
#   user   - supplier_user_id set (half also carry the user's supplier_email)
#   domain - only supplier_email on the supplier's registered domain (an existing
#            user's address in other case, or a new address on that domain)
#   public - only supplier_email at a public mail domain: ~3,000 distinct
#            workshop addresses, plus some addresses of public-domain suppliers' users
INSERT_REQUESTS = f"""
INSERT INTO service_requests (created_by_user_id, supplier_user_id, supplier_email, vehicle,
                              title, description, priority, status, created_at, updated_at)
SELECT CASE WHEN r.i % 2000 = 0 THEN NULL
            ELSE md5('fleet-user:' || r.fleet || ':' || r.creator_k)::uuid END,
       CASE WHEN r.kind = 'user'
            THEN md5('supplier-user:' || r.supplier || ':' || r.supplier_k)::uuid END,
       CASE WHEN r.kind = 'user' THEN CASE WHEN r.i % 2 = 0 THEN su.email END
            WHEN r.kind = 'domain' AND r.r_addr < 0.5 THEN upper(btrim(su.email))
            WHEN r.kind = 'domain'
            THEN 'service' || (1 + (r.i / 5) % 5) || '@supplier' || r.supplier || '.example'
            WHEN r.r_addr < 0.1
            THEN 'supplier' || (20 * (1 + r.i % 10)) || '.tech1@'
                 || ({PUBLIC_DOMAINS_SQL})[2]
            WHEN r.i % 10 = 0
            THEN ' Workshop' || r.workshop || '@'
                 || upper(({PUBLIC_DOMAINS_SQL})[1 + r.workshop % 5])
            ELSE 'workshop' || r.workshop || '@' || ({PUBLIC_DOMAINS_SQL})[1 + r.workshop % 5]
       END,
       'VAN-' || lpad((r.fleet * 10 + r.i % 10)::text, 5, '0'),
       'Service ' || (ARRAY['brakes', 'tyres', 'oil change', 'MOT', 'bodywork'])[1 + r.i % 5],
       CASE WHEN r.i % 3 = 0 THEN NULL ELSE 'Request ' || r.i || ' from fleet ' || r.fleet END,
       (ARRAY['low', 'normal', 'normal', 'normal', 'high', 'urgent'])[1 + r.i % 6],
       CASE WHEN r.r_status < 0.10 THEN 'pending'
            WHEN r.r_status < 0.25 THEN 'open'
            WHEN r.r_status < 0.40 THEN 'in_progress'
            WHEN r.r_status < 0.90 THEN 'closed'
            ELSE 'rejected' END,
       r.created_at,
       least(now(), r.created_at + r.r_addr * interval '30 days')
  FROM (SELECT d.*,
               CASE WHEN d.r_kind < 0.80 THEN 'user'
                    WHEN d.r_kind < 0.93 AND d.supplier % 4 <> 0 THEN 'domain'
                    WHEN d.r_kind < 0.93 THEN 'user'
                    WHEN d.supplier = 1 THEN 'domain'
                    ELSE 'public' END AS kind
          FROM (SELECT i,
                       1 + floor(random() * {FLEETS})::int AS fleet,
                       1 + floor(random() * {USERS_PER_FLEET})::int AS creator_k,
                       CASE WHEN i % 5 = 0 THEN 1
                            ELSE 2 + floor(random() * {SUPPLIERS - 1})::int END AS supplier,
                       1 + floor(random() * {USERS_PER_SUPPLIER})::int AS supplier_k,
                       1 + floor(random() * 3000)::int AS workshop,
                       random() AS r_kind, random() AS r_addr, random() AS r_status,
                       now() - random() * interval '730 days' AS created_at
                  FROM generate_series(1, {{requests}}) i
                OFFSET 0) d) r
  LEFT JOIN users su
         ON su.user_id = md5('supplier-user:' || r.supplier || ':' || r.supplier_k)::uuid;
"""

COUNTS = """
SELECT (SELECT count(*) FROM companies WHERE company_type = 'fleet'),
       (SELECT count(*) FROM companies WHERE company_type = 'supplier'),
       (SELECT count(*) FROM users),
       (SELECT count(*) FROM service_requests),
       (SELECT count(*) FROM service_requests WHERE supplier_user_id IS NOT NULL),
       (SELECT count(*) FROM service_requests
         WHERE supplier_user_id IS NULL AND supplier_email IS NOT NULL),
       (SELECT count(DISTINCT lower(btrim(supplier_email))) FROM service_requests
         WHERE supplier_user_id IS NULL AND split_part(lower(supplier_email), '@', 2)
               IN ('gmail.com', 'yahoo.co.uk', 'hotmail.com', 'outlook.com', 'icloud.com')),
       (SELECT count(*) FROM service_requests WHERE created_by_user_id IS NULL)
"""

BIG_SUPPLIER_SHARE = """
SELECT count(*)::float / greatest(1, (SELECT count(*) FROM service_requests))
  FROM service_requests sr
  LEFT JOIN users u ON u.user_id = sr.supplier_user_id
 WHERE u.company_id = md5('supplier:1')::uuid
    OR (sr.supplier_user_id IS NULL
        AND split_part(lower(btrim(sr.supplier_email)), '@', 2) = 'supplier1.example')
"""


@dataclass
class ProbeResult:
    latencies: list[float] = field(default_factory=list)
    worst_at: float = 0.0  # seconds after the upgrade started
    error: str | None = None


# ---------------------------------------------------------------------------
# Database set-up
# ---------------------------------------------------------------------------


def database_url(server_url: str, name: str) -> str:
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path="/" + name))


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def recreate_database(server_url: str, name: str) -> None:
    drop_database(server_url, name)
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def flask(args: list[str], db_url: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": db_url}
    return subprocess.run(
        [FLASK, *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def load_v1_schema(db_url: str) -> None:
    result = flask(["db", "upgrade", "0001_fleetos_v1"], db_url, timeout=300)
    if result.returncode != 0:
        sys.exit(f"loading the v1 schema failed:\n{result.stderr}")


def generate_data(db_url: str, requests: int) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute("SELECT setseed(0.42)")
        conn.execute(INSERT_COMPANIES)
        conn.execute(INSERT_USERS)
        conn.execute(sql.SQL(INSERT_REQUESTS).format(requests=sql.Literal(requests)))


def vacuum_analyze(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def row_counts(db_url: str) -> dict[str, float]:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(COUNTS).fetchone()
        share = conn.execute(BIG_SUPPLIER_SHARE).fetchone()
    assert row is not None and share is not None
    keys = (
        "fleet companies",
        "supplier companies",
        "users",
        "service requests",
        "  with supplier_user_id",
        "  with only supplier_email",
        "  distinct public-domain addresses",
        "  with created_by_user_id NULL",
    )
    counts: dict[str, float] = dict(zip(keys, row, strict=True))
    counts["  share of supplier 1"] = share[0]
    return counts


def probe_company_id(db_url: str) -> str:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT company_id FROM companies ORDER BY name LIMIT 1").fetchone()
    assert row is not None
    return str(row[0])


def probe_request_id(db_url: str, requests: int) -> str:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT request_id FROM service_requests OFFSET %s LIMIT 1", (requests // 2,)
        ).fetchone()
    assert row is not None
    return str(row[0])


# ---------------------------------------------------------------------------
# The timed upgrade and the concurrent reader
# ---------------------------------------------------------------------------


REQUEST_LOOKUP = "SELECT request_id, status FROM service_requests WHERE request_id = %s"
COMPANY_LOOKUP = "SELECT company_id, name FROM companies WHERE company_id = %s"


def probe(
    db_url: str,
    query: str,
    key: str,
    stop: threading.Event,
    started: list[float],
    interval: float,
    result: ProbeResult,
) -> None:
    """Repeat a primary-key lookup until ``stop`` is set (or the hard cap), timing each."""
    deadline = time.monotonic() + HARD_CAP_SECONDS
    worst = 0.0
    try:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(f"SET statement_timeout = '{HARD_CAP_SECONDS}s'")
            while not stop.is_set() and time.monotonic() < deadline:
                t0 = time.perf_counter()
                conn.execute(query, (key,)).fetchone()
                elapsed = time.perf_counter() - t0
                if elapsed > worst:
                    worst = elapsed
                    result.worst_at = t0 - started[0] if started else 0.0
                result.latencies.append(elapsed)
                stop.wait(interval)
    except psycopg.Error as exc:
        result.error = f"{type(exc).__name__}: {exc}"


@dataclass
class UpgradeRun:
    approach: str
    exit_status: int
    wall: float
    probe: ProbeResult
    companies_probe: ProbeResult
    output: str
    load_before: float

    @property
    def longest_read(self) -> float:
        return max(self.probe.latencies, default=float("nan"))

    @property
    def longest_companies_read(self) -> float:
        return max(self.companies_probe.latencies, default=float("nan"))


def run_new(db_url: str, target: str) -> tuple[int, str]:
    result = subprocess.run(
        [FLASK, "db", "upgrade", target],
        cwd=REPO_ROOT,
        env={**os.environ, "DATABASE_URL": db_url},
        capture_output=True,
        text=True,
        timeout=HARD_CAP_SECONDS,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr


# Run by `flask shell` so that the old way, like `flask db upgrade`, starts the
# FleetOS app and Alembic before its SQL (about 1.2 s here): as it ran in v2.0.
BASELINE_RUNNER = (
    "import os, psycopg\n"
    "try:\n"
    "    with psycopg.connect(os.environ['DATABASE_URL'], autocommit=True) as conn:\n"
    "        conn.execute(os.environ['BASELINE_SQL'])\n"
    "except psycopg.Error as exc:\n"
    "    print(f'baseline failed: {type(exc).__name__}: {exc}')\n"
    "    raise SystemExit(1)\n"
    "\n"
)


def baseline_sql(target: str) -> str:
    """The baseline SQL up to ``target`` (head: all of it), in one transaction.

    The file is the old upgrade's ``--sql`` output: each revision's section
    ends with the UPDATE of alembic_version to that revision.
    """
    script = BASELINE_SQL.read_text()
    if target == "head":
        return script
    end = f"UPDATE alembic_version SET version_num='{target}' "
    at = script.find(end)
    if at < 0:
        raise SystemExit(f"--to {target}: the baseline has no revision of that name")
    return script[: script.index("\n", at) + 1] + "\nCOMMIT;\n"


def run_old(db_url: str, target: str) -> tuple[int, str]:
    """The baseline SQL in one transaction (it has its own BEGIN and COMMIT)."""
    result = subprocess.run(
        [FLASK, "shell"],
        cwd=REPO_ROOT,
        env={**os.environ, "DATABASE_URL": db_url, "BASELINE_SQL": baseline_sql(target)},
        input=BASELINE_RUNNER,
        capture_output=True,
        text=True,
        timeout=HARD_CAP_SECONDS,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr


APPROACHES: dict[str, Callable[[str, str], tuple[int, str]]] = {"new": run_new, "old": run_old}


def timed_upgrade(
    approach: str, target: str, db_url: str, request_id: str, company_id: str, interval: float
) -> UpgradeRun:
    result, companies_result = ProbeResult(), ProbeResult()
    stop = threading.Event()
    started: list[float] = []
    threads = [
        threading.Thread(
            target=probe,
            args=(db_url, query, key, stop, started, interval, into),
            daemon=True,
        )
        for query, key, into in (
            (REQUEST_LOOKUP, request_id, result),
            (COMPANY_LOOKUP, company_id, companies_result),
        )
    ]
    load = os.getloadavg()[0]
    for thread in threads:
        thread.start()
    time.sleep(0.5)  # a few unblocked probes first, as a baseline
    started.append(time.perf_counter())
    code, output = APPROACHES[approach](db_url, target)
    wall = time.perf_counter() - started[0]
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    return UpgradeRun(approach, code, wall, result, companies_result, output, load)


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


def print_counts(counts: dict[str, float]) -> None:
    print("v1 data:")
    for key, value in counts.items():
        shown = f"{value:.1%}" if isinstance(value, float) else f"{value:,}"
        print(f"  {key:<38} {shown:>12}")


def print_runs(runs: list[UpgradeRun]) -> None:
    print(
        "| round | approach | exit | wall time | longest blocked SELECT | SELECTs | SELECT p50 "
        "| longest blocked SELECT of companies | load before |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for number, run in enumerate(runs, start=1):
        p50 = statistics.median(run.probe.latencies) * 1000 if run.probe.latencies else 0
        print(
            f"| {(number + 1) // 2} | {run.approach} | {run.exit_status} | {run.wall:.2f} s "
            f"| {run.longest_read:.3f} s (at {run.probe.worst_at:.2f} s) "
            f"| {len(run.probe.latencies):,} | {p50:.2f} ms "
            f"| {run.longest_companies_read:.3f} s (at {run.companies_probe.worst_at:.2f} s) "
            f"| {run.load_before:.2f} |"
        )
    for run in runs:
        for probed in (run.probe, run.companies_probe):
            if probed.error:
                print(f"probe error ({run.approach}): {probed.error}")
        if run.exit_status != 0:
            print(f"{run.approach} upgrade output (tail):")
            print("\n".join(run.output.strip().splitlines()[-15:]))


def print_ratios(runs: list[UpgradeRun]) -> None:
    new = [run for run in runs if run.approach == "new"]
    old = [run for run in runs if run.approach == "old"]
    for label, value in (("wall time", "wall"), ("longest blocked SELECT", "longest_read")):
        ratios = [getattr(n, value) / getattr(o, value) for n, o in zip(new, old, strict=True)]
        shown = ", ".join(f"{ratio:.3f}" for ratio in ratios)
        print(f"ratio new/old, {label}: {shown}")
    worst = max(run.longest_read for run in new)
    print(f"longest blocked SELECT of the new upgrade, all rounds: {worst:.3f} s")
    worst = max(run.longest_companies_read for run in new)
    print(f"longest blocked SELECT of companies, new upgrade, all rounds: {worst:.3f} s")


def run_verify(db_url: str) -> str:
    """``flask fleetos verify``'s verdict on an upgraded database, as lines to print."""
    result = flask(["fleetos", "verify"], db_url, timeout=600)
    lines = (result.stdout + result.stderr).strip().splitlines()
    last = lines[-1] if lines else "(no output)"
    verdict = f"flask fleetos verify (exit {result.returncode}): {last}"
    if result.returncode != 0:
        verdict += "\n" + "\n".join(line for line in lines if "FAIL" in line or "Error" in line)
    return verdict


# ---------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1_000_000, help="v1 service requests")
    parser.add_argument("--rounds", type=int, default=1, help="pairs of upgrades (new and old)")
    parser.add_argument("--server-url", default=DEFAULT_SERVER_URL, help="maintenance DB URL")
    parser.add_argument("--db-name", default=DEFAULT_DB_NAME, help="prefix of the databases made")
    parser.add_argument("--interval-ms", type=float, default=5.0, help="pause between SELECTs")
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    parser.add_argument(
        "--to",
        default="head",
        metavar="REVISION",
        help="upgrade to this revision instead of head (both approaches)",
    )
    args = parser.parse_args()
    if not args.db_name.startswith("fleetos_bench"):
        parser.error("--db-name must start with fleetos_bench")
    return args


def timed(label: str, func: Callable[..., object], *args: object) -> float:
    print(f"{label}...", flush=True)
    t0 = time.perf_counter()
    func(*args)
    return time.perf_counter() - t0


def copy_database(server_url: str, template: str, name: str) -> None:
    """A copy of ``template``, then a checkpoint and a sync: no run pays for the last one's writes.

    The checkpoint writes the server's dirty pages to the operating system;
    the sync then waits until the system has written them, and the previous
    run's files, to disk (a gigabyte or more after the old upgrade), so that
    the next run's reads and writes do not queue behind them.
    """
    drop_database(server_url, name)
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
        # A role without pg_checkpoint skips it: the runs are then a little less even.
        with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
            conn.execute("CHECKPOINT")
    os.sync()


def main() -> int:
    args = parse_args()
    template = f"{args.db_name}_v1"
    template_url = database_url(args.server_url, template)
    made = [template]
    timed("creating database " + template, recreate_database, args.server_url, template)
    try:
        schema_s = timed("loading v1 schema", load_v1_schema, template_url)
        gen_s = timed(
            f"generating v1 data ({args.requests:,} requests)",
            generate_data,
            template_url,
            args.requests,
        )
        vacuum_s = timed("VACUUM ANALYZE", vacuum_analyze, template_url)
        counts = row_counts(template_url)
        request_id = probe_request_id(template_url, args.requests)
        company_id = probe_company_id(template_url)

        runs: list[UpgradeRun] = []
        verdict: str | None = None
        for round_number in range(1, args.rounds + 1):
            order = ("new", "old") if round_number % 2 else ("old", "new")
            for approach in order:
                name = f"{args.db_name}_{approach}_{round_number}"
                made.append(name)
                copy_database(args.server_url, template, name)
                print(f"round {round_number}: {approach} upgrade with a concurrent reader...")
                runs.append(
                    timed_upgrade(
                        approach,
                        args.to,
                        database_url(args.server_url, name),
                        request_id,
                        company_id,
                        args.interval_ms / 1000,
                    )
                )
                # verify checks head's schema and data: once, on the first new upgrade.
                if approach == "new" and args.to == "head" and verdict is None:
                    verdict = run_verify(database_url(args.server_url, name))
                # Dropped at once: otherwise autovacuum, cleaning up after this
                # upgrade (a million dead rows after the old one), would take a
                # core from the next runs.
                if not args.keep:
                    drop_database(args.server_url, name)
                    made.remove(name)

        print(
            f"\n=== FleetOS migration benchmark: v1 -> {args.to}, new (rebuild and swap) vs old ==="
        )
        print_counts(counts)
        print(
            f"v1 schema load: {schema_s:.2f}s; data generation: {gen_s:.2f}s; "
            f"VACUUM ANALYZE: {vacuum_s:.2f}s"
        )
        print_runs(runs)
        print_ratios(runs)
        if verdict is not None:
            print(verdict)
        return max(run.exit_status for run in runs)
    finally:
        if args.keep:
            print("kept databases: " + ", ".join(made))
        else:
            for name in made:
                drop_database(args.server_url, name)


if __name__ == "__main__":
    sys.exit(main())
