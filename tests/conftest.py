"""Fixtures shared by the whole suite: a real PostgreSQL, never a stand-in.

The server is TEST_DATABASE_URL's (CI: the machine's PostgreSQL 15), else an
embedded PostgreSQL 18 started under ``instance/test-pgdata``. Each test that
needs a database of its own gets a fresh scratch database on that server.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from flask import Flask
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from fleetos import REPO_ROOT, create_app
from fleetos.extensions import db
from tests.mailserver import MailServer

# Chromium for tests/browser and tests/e2e: one session-wide launch both can see.
pytest_plugins = ["tests.chromium"]

FIXTURES = Path(__file__).parent / "fixtures"
SCRATCH_PREFIX = "fleetos_t_"


def libpq_url(url: str) -> str:
    """A URL psycopg/libpq accept (without SQLAlchemy's +driver)."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def sqlalchemy_url(url: str) -> str:
    return libpq_url(url).replace("postgresql://", "postgresql+psycopg://", 1)


def with_database(url: str, database: str) -> str:
    """``url`` pointing at another database on the same server (as a libpq conninfo)."""
    params = conninfo_to_dict(libpq_url(url))
    params["dbname"] = database
    return make_conninfo(**params)


def conninfo_to_url(conninfo: str) -> str:
    params = conninfo_to_dict(conninfo)
    host = params.pop("host", "")
    user = params.pop("user", "postgres")
    port = params.pop("port", None)
    dbname = params.pop("dbname")
    if host.startswith("/"):  # a Unix socket directory goes in the query string
        params["host"] = host
        netloc = f"{user}@"
    else:
        netloc = f"{user}@{host}" + (f":{port}" if port else "")
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return f"postgresql://{netloc}/{dbname}" + (f"?{query}" if query else "")


@pytest.fixture(scope="session")
def server_url() -> str:
    """An admin URL for the PostgreSQL server the tests run against."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return libpq_url(url)
    from fleetos.embedded_db import embedded_database_url

    return libpq_url(embedded_database_url(REPO_ROOT / "instance" / "test-pgdata", "postgres"))


@pytest.fixture(scope="session")
def make_database(server_url: str) -> Iterator[Callable[..., str]]:
    """Return a factory of fresh scratch databases (empty, or copies of ``template``)."""
    created: list[str] = []

    def make(template: str = "template0") -> str:
        name = SCRATCH_PREFIX + secrets.token_hex(6)
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        created.append(name)
        return conninfo_to_url(with_database(server_url, name))

    yield make
    with psycopg.connect(server_url, autocommit=True) as conn:
        for name in reversed(created):
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_name(url: str) -> str:
    return conninfo_to_dict(libpq_url(url))["dbname"]


def run_sql_files(url: str, *names: str) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        for name in names:
            conn.execute((FIXTURES / name).read_text())


def build_app(database_url: str, **overrides: object) -> Flask:
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "SQLALCHEMY_DATABASE_URI": sqlalchemy_url(database_url),
        "BASE_URL": "http://fleetos.test",
    }
    config.update(overrides)
    return create_app(config)


@contextmanager
def app_for(database_url: str, **overrides: object) -> Iterator[Flask]:
    """An app bound to ``database_url`` inside an app context; its engine is disposed after."""
    app = build_app(database_url, **overrides)
    with app.app_context():
        try:
            yield app
        finally:
            db.session.remove()
            db.engine.dispose()


def flask_cli(database_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``flask ARGS`` from the repo root as an operator would, against ``database_url``."""
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("FLASK_", "FLEETOS_", "DATABASE_URL"))
    }
    environ.update({"DATABASE_URL": libpq_url(database_url), "SECRET_KEY": "cli-test"}, **env)
    flask = shutil.which("flask", path=str(Path(sys.executable).parent)) or "flask"
    return subprocess.run(
        [flask, *args], cwd=REPO_ROOT, env=environ, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def v1_database(make_database: Callable[[], str]) -> str:
    """A fresh database with the v1 schema and sample data, never touched by Alembic."""
    url = make_database()
    run_sql_files(url, "v1_schema.sql", "v1_sample_data.sql")
    return url


@pytest.fixture(scope="session")
def head_template(make_database: Callable[..., str]) -> str:
    """A database migrated to head once per run; tests get copies of it."""
    from flask_migrate import upgrade

    url = make_database()
    with app_for(url):
        upgrade()
    return database_name(url)


@pytest.fixture
def head_database(make_database: Callable[..., str], head_template: str) -> str:
    """A fresh, empty database at the newest migration (a copy of the template)."""
    return make_database(head_template)


@pytest.fixture
def app(head_database: str) -> Iterator[Flask]:
    with app_for(head_database) as app:
        yield app


@pytest.fixture
def smtp() -> Iterator[MailServer]:
    """A real SMTP server (aiosmtpd) on loopback; ``stop()`` and ``start()`` keep its port."""
    server = MailServer()
    server.start()
    yield server
    server.stop()
