"""Health checks for load balancers and orchestrators.

``/healthz`` says the process is up (it never touches the database, so a
database outage does not get every web process restarted); ``/readyz`` says
this process can serve: the database answers and its schema is the one this
code was written for.
"""

from __future__ import annotations

import functools
import logging

from alembic.script import ScriptDirectory
from alembic.util import CommandError
from flask import Blueprint, current_app
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from .extensions import csrf, db, limiter

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)
# Probes come every few seconds from one address: they must never use up
# (or be refused by) the per-IP budget; they are GETs, so CSRF is moot too.
limiter.exempt(bp)
csrf.exempt(bp)

# A readiness probe that hangs is worse than one that fails: give up fast.
STATEMENT_TIMEOUT = "2s"

Check = tuple[dict[str, str], int]


@bp.get("/healthz")
def healthz() -> Check:
    """Say the process is up."""
    return {"status": "ok"}, 200


@bp.get("/readyz")
def readyz() -> Check:
    """Say whether the database answers and is migrated to this code's head."""
    scripts = migration_scripts(current_app.extensions["migrate"].migrate.directory)
    heads = tuple(sorted(scripts.get_heads()))
    try:
        current = database_revisions()
    except SQLAlchemyError as exc:
        log.warning("not ready: database unreachable: %s", first_line(exc))
        return {"status": "not ready", "database": "unreachable", "migrations": "not checked"}, 503
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
        connection.execute(text("SELECT 1"))
        exists = connection.scalar(text("SELECT to_regclass('alembic_version') IS NOT NULL"))
        if not exists:
            return ()
        revisions = connection.scalars(text("SELECT version_num FROM alembic_version"))
        return tuple(sorted(revisions))


@functools.cache
def migration_scripts(directory: str) -> ScriptDirectory:
    """The migration scripts, read once: they only change with a deploy (and a restart)."""
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


def first_line(exc: SQLAlchemyError) -> str:
    """The driver's own message, without SQLAlchemy's SQL echo and background link."""
    message = str(getattr(exc, "orig", None) or exc).strip()
    return message.splitlines()[0] if message else type(exc).__name__
