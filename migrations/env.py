"""Alembic environment for FleetOS.

Two choices here matter to operators:

* The whole ``flask db upgrade`` runs in ONE transaction (Alembic's default,
  ``transaction_per_migration=False``). PostgreSQL's DDL is transactional, so
  an upgrade that fails part-way leaves the database exactly as it was.
* ``lock_timeout`` is set first, so a deploy that cannot get a table lock
  gives up after MIGRATION_LOCK_TIMEOUT instead of queueing forever behind a
  long transaction (and, while queued, blocking every reader behind it).
* The app's own statement timeout and client-side answer timeout (see
  fleetos/database.py) are lifted: they are for web requests, and would roll
  back a slow but correct upgrade.

A migration refuses bad data by raising an SQL exception whose message starts
with ``REFUSED_PREFIX``; that (and a lock timeout) becomes a one-line
``Error: ...`` and exit status 1 instead of a traceback.
"""

import logging
import re
from logging.config import fileConfig

from alembic import context
from flask import current_app
from sqlalchemy.exc import DBAPIError

REFUSED_PREFIX = "FleetOS refused the upgrade"
LOCK_NOT_AVAILABLE = "55P03"

config = context.config
# Keep the app's own loggers (and their token filters) working when migrating in-process.
fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")

target_db = current_app.extensions["migrate"].db


def get_engine():
    return target_db.engine


def lock_timeout() -> str:
    value = str(current_app.config.get("MIGRATION_LOCK_TIMEOUT", "5s")).strip()
    if not re.fullmatch(r"\d+\s*(ms|s|min)?", value):
        raise RuntimeError(f"MIGRATION_LOCK_TIMEOUT must look like 5s or 500ms, not {value!r}")
    return value


def run_in_one_transaction() -> None:
    with context.begin_transaction():
        context.execute(f"SET LOCAL lock_timeout = '{lock_timeout()}'")
        # The app's statement timeout (DATABASE_STATEMENT_TIMEOUT) is for web
        # requests; it must not roll back a slow but correct upgrade.
        context.execute("SET LOCAL statement_timeout = 0")
        context.execute("SET LOCAL timezone = 'UTC'")
        context.run_migrations()


def run_migrations_offline() -> None:
    """Emit the SQL of the migrations (``flask db upgrade --sql``)."""
    url = get_engine().url.render_as_string(hide_password=False)
    context.configure(url=url, target_metadata=target_db.metadata, literal_binds=True)
    run_in_one_transaction()


def run_migrations_online() -> None:
    def skip_empty_autogenerate(context, revision, directives):
        if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
            directives[:] = []
            logger.info("No changes in schema detected.")

    conf_args = current_app.extensions["migrate"].configure_args
    conf_args.setdefault("process_revision_directives", skip_empty_autogenerate)

    from fleetos.database import answers_without_limit

    with get_engine().connect() as connection, answers_without_limit(connection):
        context.configure(connection=connection, target_metadata=target_db.metadata, **conf_args)
        try:
            run_in_one_transaction()
        except DBAPIError as exc:
            explained = explain(exc)
            if explained is None:
                raise
            # Flask-Migrate prints a RuntimeError as "Error: ..." and exits 1.
            raise RuntimeError(explained) from None


def explain(exc: DBAPIError) -> str | None:
    """Turn a refusal or a lock timeout into an operator's message; None for anything else."""
    diag = getattr(exc.orig, "diag", None)
    message = (getattr(diag, "message_primary", None) or str(exc.orig)).strip()
    if message.startswith(REFUSED_PREFIX):
        return message + " Nothing was changed."
    if getattr(exc.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE:
        return (
            f"could not get a table lock within lock_timeout ({lock_timeout()}): another "
            "transaction is using the tables. Nothing was changed; run the upgrade again when "
            "it has finished, or raise MIGRATION_LOCK_TIMEOUT."
        )
    return None


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
