"""Real PostgreSQL for the tests: scratch databases on one server, never a stand-in.

The server is TEST_DATABASE_URL's (CI: the machine's PostgreSQL 15), else an
embedded PostgreSQL 18 started under ``instance/test-pgdata``. Each test that
needs a database gets a scratch database of its own (``fleetos_t_*``), dropped
as soon as the test ends, so a long run (or a parallel one) never piles them up.
"""

from __future__ import annotations

import fcntl
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from fleetos import REPO_ROOT

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
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


def database_name(url: str) -> str:
    return str(conninfo_to_dict(libpq_url(url))["dbname"])


def run_sql_files(url: str, *names: str) -> None:
    """Run SQL files from tests/fixtures/ on ``url``, in order."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        for name in names:
            conn.execute((FIXTURES / name).read_text())


class ScratchDatabases:
    """Creates scratch databases on one server and drops them when told."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url

    def create(self, template: str = "template0") -> str:
        name = SCRATCH_PREFIX + secrets.token_hex(6)
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return conninfo_to_url(with_database(self.server_url, name))

    def drop(self, *urls: str) -> None:
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            for url in urls:
                # FORCE: a live server or a worker a test started may still hold a connection.
                conn.execute(f'DROP DATABASE IF EXISTS "{database_name(url)}" WITH (FORCE)')


@pytest.fixture(scope="session")
def server_url() -> str:
    """An admin URL for the PostgreSQL server the tests run against."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return libpq_url(url)
    from fleetos.embedded_db import embedded_database_url

    data_dir = REPO_ROOT / "instance" / "test-pgdata"
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    # pytest-xdist workers start at once: one of them starts the server, the others attach.
    with open(data_dir.parent / "test-pgdata.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return libpq_url(embedded_database_url(data_dir, "postgres"))


@pytest.fixture(scope="session")
def scratch_databases(server_url: str) -> ScratchDatabases:
    return ScratchDatabases(server_url)


@pytest.fixture
def make_database(scratch_databases: ScratchDatabases) -> Iterator[Callable[..., str]]:
    """A factory of fresh scratch databases (empty, or copies of ``template``), dropped
    when the test ends."""
    created: list[str] = []

    def make(template: str = "template0") -> str:
        created.append(scratch_databases.create(template))
        return created[-1]

    yield make
    scratch_databases.drop(*reversed(created))


@pytest.fixture
def v1_database(make_database: Callable[[], str]) -> str:
    """A fresh database with the v1 schema and sample data, never touched by Alembic."""
    url = make_database()
    run_sql_files(url, "v1_schema.sql", "v1_sample_data.sql")
    return url


@pytest.fixture(scope="session")
def head_template(scratch_databases: ScratchDatabases) -> Iterator[str]:
    """A database migrated to head once per run (per worker under xdist); tests get copies."""
    from flask_migrate import upgrade

    from tests.support.apps import app_for

    url = scratch_databases.create()
    with app_for(url):
        upgrade()
    yield database_name(url)
    scratch_databases.drop(url)


@pytest.fixture
def head_database(make_database: Callable[..., str], head_template: str) -> str:
    """A fresh, empty database at the newest migration (a copy of the template)."""
    return make_database(head_template)
