"""Health checks: /healthz says the process is up, /readyz that it can serve."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from alembic.script import ScriptDirectory
from flask import Flask

from fleetos import MIGRATIONS_DIR
from fleetos.extensions import db, limiter
from tests.migrations.conftest import execute, migrate
from tests.support.apps import build_app

HEAD = ",".join(sorted(ScriptDirectory(str(MIGRATIONS_DIR)).get_heads()))
UNREACHABLE = "postgresql://x@127.0.0.1:1/x"


@pytest.fixture
def make_app() -> Iterator:
    """Apps on any database URL, each disposed after the test."""
    apps: list[Flask] = []

    def make(database_url: str, **overrides: object) -> Flask:
        apps.append(build_app(database_url, **overrides))
        return apps[-1]

    yield make
    for app in apps:
        with app.app_context():
            db.engine.dispose()


def test_healthz_answers_without_the_database(make_app):
    response = make_app(UNREACHABLE).test_client().get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_ready_at_head(make_app, head_database):
    response = make_app(head_database).test_client().get("/readyz")
    assert response.status_code == 200
    assert response.json == {"status": "ready", "database": "ok", "migrations": HEAD}


def test_not_ready_at_an_older_revision(make_app, make_database):
    url = make_database()
    migrate(url, "0001_fleetos_v1")
    response = make_app(url).test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json == {
        "status": "not ready",
        "database": "ok",
        "migrations": f"behind: at 0001_fleetos_v1, head {HEAD}",
    }


def test_not_ready_on_a_database_never_migrated(make_app, make_database):
    response = make_app(make_database()).test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["migrations"] == f"behind: at none, head {HEAD}"


def test_not_ready_when_newer_code_migrated_the_database(make_app, head_database):
    execute(head_database, "UPDATE alembic_version SET version_num = '9999_from_the_future'")
    response = make_app(head_database).test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["migrations"] == f"unknown revision: at 9999_from_the_future, head {HEAD}"


def test_not_ready_quickly_when_the_database_is_unreachable(make_app):
    client = make_app(UNREACHABLE).test_client()
    started = time.monotonic()
    response = client.get("/readyz")
    assert time.monotonic() - started < 5
    assert response.status_code == 503
    assert response.json == {
        "status": "not ready",
        "database": "unreachable",
        "migrations": "not checked",
    }
    assert "Traceback" not in response.text


def test_a_connect_timeout_is_set_unless_the_url_has_one(make_app):
    options = make_app(UNREACHABLE).config["SQLALCHEMY_ENGINE_OPTIONS"]
    assert options["connect_args"]["connect_timeout"] == 5
    options = make_app(UNREACHABLE + "?connect_timeout=2").config["SQLALCHEMY_ENGINE_OPTIONS"]
    assert "connect_timeout" not in options["connect_args"]


@pytest.fixture
def one_request_per_minute() -> Iterator[dict[str, str]]:
    """A default limit on every route, removed after: the limiter is one per process
    (and keeps an earlier app's RATELIMIT_ENABLED unless told)."""
    yield {"RATELIMIT_ENABLED": True, "RATELIMIT_DEFAULT": "1 per minute"}
    limiter.limit_manager.set_default_limits([])


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_are_not_rate_limited_and_set_no_cookie(
    make_app, head_database, one_request_per_minute, path
):
    client = make_app(head_database, **one_request_per_minute).test_client()
    statuses = [client.get(path).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    assert "Set-Cookie" not in client.get(path).headers
    # The same budget does apply to an ordinary page.
    assert [client.get("/").status_code for _ in range(2)] == [303, 429]
