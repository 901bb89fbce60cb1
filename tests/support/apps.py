"""The app under test: built on a scratch database, mailing a real SMTP server on loopback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from secrets import token_hex

import pytest
import redis
from flask import Flask

from fleetos import REPO_ROOT, create_app
from fleetos.extensions import db
from tests.mailserver import MailServer
from tests.support.database import libpq_url, sqlalchemy_url

ATTACHMENTS_PREFIX = "fleetos-attachments-"


def build_app(database_url: str, **overrides: object) -> Flask:
    """A FleetOS app for tests on ``database_url``; ``overrides`` go into its config.

    Its attachments go to a directory of its own (``discard_attachments`` removes it).
    """
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "SQLALCHEMY_DATABASE_URI": sqlalchemy_url(database_url),
        "BASE_URL": "http://fleetos.test",
        # Made when the first file is stored.
        "ATTACHMENT_DIR": str(Path(tempfile.gettempdir(), f"{ATTACHMENTS_PREFIX}{token_hex(6)}")),
    }
    config.update(overrides)
    return create_app(config)


def discard_attachments(app: Flask) -> None:
    """Remove the test app's attachment directory (never the checkout's instance/)."""
    directory = app.config.get("ATTACHMENT_DIR")
    if directory and Path(directory).name.startswith(ATTACHMENTS_PREFIX):
        shutil.rmtree(directory, ignore_errors=True)


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
            discard_attachments(app)


@contextmanager
def database(app: Flask) -> Iterator[None]:
    """Look at the database from a test, in an app context of its own."""
    with app.app_context():
        try:
            yield
        finally:
            db.session.remove()


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


def mail_config(smtp: MailServer) -> dict[str, object]:
    """Mail to ``smtp``, delivered only when a test says so; no rate limits in the way."""
    return {
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": smtp.port,
        "MAIL_USE_TLS": False,
        "MAIL_TIMEOUT": 5,
        # Tests deliver explicitly, so they can look at the outbox in between.
        "MAIL_DELIVER_AFTER_RESPONSE": False,
        "RATELIMIT_ENABLED": False,
    }


@pytest.fixture
def smtp() -> Iterator[MailServer]:
    """A real SMTP server (aiosmtpd) on loopback; ``stop()`` and ``start()`` keep its port."""
    server = MailServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def app(head_database: str, smtp: MailServer) -> Iterator[Flask]:
    """The app on a fresh database at head, mailing ``smtp``.

    No app context is held: each request gets its own ``g`` and session, as in
    production. Look at the database with ``database(app)`` or ``app_context``.
    """
    app = build_app(head_database, **mail_config(smtp))
    yield app
    with app.app_context():
        db.engine.dispose()
    discard_attachments(app)


@pytest.fixture
def app_context(app: Flask) -> Iterator[Flask]:
    """The app with an app context held for the test body (for tests of services, not pages)."""
    with database(app):
        yield app


@pytest.fixture
def make_app(head_database: str, smtp: MailServer) -> Iterator[Callable[..., Flask]]:
    """Build more apps on the test's database (another key, another worker); all disposed after."""
    apps: list[Flask] = []

    def make(**overrides: object) -> Flask:
        apps.append(build_app(head_database, **{**mail_config(smtp), **overrides}))
        return apps[-1]

    yield make
    for app in apps:
        with app.app_context():
            db.engine.dispose()
        discard_attachments(app)


@pytest.fixture
def redis_uri() -> str:
    """The machine's Redis, for limits shared by every worker (CI has it: there it must run)."""
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        client.ping()
    except redis.ConnectionError:
        message = "Redis is not running on 127.0.0.1:6379 (needed for the shared-limit test)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI machines have Redis: this must run there
        pytest.skip(message)
    finally:
        client.close()
    return "redis://127.0.0.1:6379/0"
