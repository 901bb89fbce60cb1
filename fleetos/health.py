"""Health checks for load balancers and orchestrators.

``/healthz`` says the process is up: it never touches the database, so a
database outage does not get every web process restarted. ``/readyz`` says
this process can serve: the database answers, within :data:`READY_WAIT`
seconds, and its schema is the one this code was written for.

Both are answered by a WSGI middleware in front of Flask, not by views:
no session is opened or read, no before-request hook (the signed-in contact,
rate limits, CSRF) runs, and no cookie is set, so neither can be slowed or
failed by what a request normally touches. They still get a request id and
their JSON log line.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from http import HTTPStatus
from typing import Any

from alembic.script import ScriptDirectory
from alembic.util import CommandError
from flask import Flask
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from .database import DatabaseUnavailable, describe
from .extensions import db
from .logs import REQUEST_ID_HEADER, OncePerBurst, correlation_id_from, log_request_fields

log = logging.getLogger(__name__)
not_ready_log = OncePerBurst(log)

# A readiness probe that hangs is worse than one that fails: a load balancer
# gives up on a probe after a few seconds anyway.
READY_WAIT = 1.5
STATEMENT_TIMEOUT = "1500ms"

Check = tuple[dict[str, str], int]
UNREACHABLE = {"status": "not ready", "database": "unreachable", "migrations": "not checked"}


def healthz() -> Check:
    """Say the process is up."""
    return {"status": "ok"}, 200


class Readiness:
    """Whether this process can serve; one database check at a time, shared by probes.

    The check runs on a thread of its own, so a probe can stop waiting after
    READY_WAIT seconds whatever the database does; while a check is still out
    (a frozen database), later probes wait for that one instead of piling up
    more threads and connections behind it.
    """

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._pending: Future[Check] | None = None

    def __call__(self) -> Check:
        with self._lock:
            if self._pending is None or self._pending.done():
                self._pending = Future()
                threading.Thread(
                    target=self._check, args=(self._pending,), name="readyz", daemon=True
                ).start()
            pending = self._pending
        try:
            return pending.result(timeout=READY_WAIT)
        except FutureTimeout:
            not_ready_log.warning(
                "not ready: the database did not answer within %.1f s", READY_WAIT
            )
            return dict(UNREACHABLE), 503

    def _check(self, future: Future[Check]) -> None:
        try:
            with self.app.app_context():
                future.set_result(readiness(self.app))
        except BaseException as exc:  # the probe must get an answer, whatever happened
            future.set_exception(exc)


def readiness(app: Flask) -> Check:
    """Say whether the database answers and is migrated to this code's head."""
    scripts = migration_scripts(app.extensions["migrate"].migrate.directory)
    heads = tuple(sorted(scripts.get_heads()))
    try:
        current = database_revisions()
    except (SQLAlchemyError, DatabaseUnavailable) as exc:
        not_ready_log.warning("not ready: database unreachable: %s", describe(exc))
        return dict(UNREACHABLE), 503
    if current != heads:
        return {
            "status": "not ready",
            "database": "ok",
            "migrations": migration_gap(scripts, current, heads),
        }, 503
    return {"status": "ready", "database": "ok", "migrations": ",".join(heads)}, 200


def database_revisions() -> tuple[str, ...]:
    """The revisions in ``alembic_version`` (none for a database never migrated)."""
    with db.engine.connect() as connection:  # its transaction is rolled back on leaving
        connection.execute(text(f"SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}'"))
        exists = connection.scalar(text("SELECT to_regclass('alembic_version') IS NOT NULL"))
        if not exists:
            return ()
        revisions = connection.scalars(text("SELECT version_num FROM alembic_version"))
        return tuple(sorted(revisions))


@functools.cache
def migration_scripts(directory: str) -> ScriptDirectory:
    """The migration scripts, read once: they only change with a deploy (and a restart)."""
    from flask import current_app

    config = current_app.extensions["migrate"].migrate.get_config(directory)
    return ScriptDirectory.from_config(config)


def migration_gap(
    scripts: ScriptDirectory, current: tuple[str, ...], heads: tuple[str, ...]
) -> str:
    at, head = ",".join(current) or "none", ",".join(heads)
    # A revision this code does not know: newer code has migrated the database.
    if not all(is_known(scripts, revision) for revision in current):
        return f"unknown revision: at {at}, head {head}"
    return f"behind: at {at}, head {head}"


def is_known(scripts: ScriptDirectory, revision: str) -> bool:
    try:
        return scripts.get_revision(revision) is not None
    except CommandError:
        return False


WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class Probes:
    """WSGI middleware answering ``/healthz`` and ``/readyz`` before Flask sees the request."""

    def __init__(self, app: Flask, wsgi_app: WSGIApp) -> None:
        self.wsgi_app = wsgi_app
        self.checks: dict[str, Callable[[], Check]] = {
            "/healthz": healthz,
            "/readyz": Readiness(app),
        }

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        check = self.checks.get(environ.get("PATH_INFO", ""))
        if check is None:
            return self.wsgi_app(environ, start_response)
        started = time.perf_counter()
        method = environ.get("REQUEST_METHOD", "GET")
        correlation_id = correlation_id_from(environ.get("HTTP_X_REQUEST_ID"))
        if method in ("GET", "HEAD"):
            body, status = check()
        else:
            body, status = {"status": "method not allowed"}, 405
        payload = json.dumps(body).encode()
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(payload))),
            ("Cache-Control", "no-store"),
            (REQUEST_ID_HEADER, correlation_id),
        ]
        if status == 405:
            headers.append(("Allow", "GET, HEAD"))
        start_response(f"{status} {HTTPStatus(status).phrase}", headers)
        log_request_fields(
            method=method,
            path=environ["PATH_INFO"],
            status=status,
            started=started,
            contact_id=None,
            correlation_id=correlation_id,
        )
        return [b"" if method == "HEAD" else payload]


def register_probes(app: Flask) -> None:
    app.wsgi_app = Probes(app, app.wsgi_app)  # type: ignore[method-assign]
