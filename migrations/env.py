"""Alembic environment for FleetOS.

What here matters to operators:

* The whole ``flask db upgrade`` runs in ONE transaction (Alembic's default,
  ``transaction_per_migration=False``). PostgreSQL's DDL is transactional, so
  an upgrade that fails part-way leaves the database exactly as it was.
* ``lock_timeout`` is set first, so a deploy that cannot get a table lock
  gives up after MIGRATION_LOCK_TIMEOUT instead of queueing forever behind a
  long transaction (and, while queued, blocking every reader behind it).
* The app's own statement timeout and client-side answer timeout (see
  fleetos/database.py) are lifted: they are for web requests, and would roll
  back a slow but correct upgrade.
* A v1 upgrade rebuilds service_requests beside the v1 table
  (``migrations/requests_rebuild.py``); the swap that puts it in place runs
  here: after the last revision, just before COMMIT, or before the first
  revision that was not written to run during a rebuild (no ``REBUILD_AWARE``).
* A downgrade that would discard v2 data refuses before it changes anything,
  printing what each revision it undoes would lose, unless the operator
  passes ``-x discard-v2-data=yes``. A revision says what its downgrade
  loses with a ``data_a_downgrade_discards(connection)`` function.

A migration refuses bad data by raising an SQL exception whose message starts
with ``REFUSED_PREFIX``; that (and a lock timeout, a deadlock, a lost
database) becomes a one-line ``Error: ...`` and exit status 1 instead of a
traceback. Any other database error does too, saying where the run was and
what the database said (``unexpected``).
"""

import itertools
import logging
import re
from logging.config import fileConfig
from typing import ClassVar

from alembic import context
from flask import current_app
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from fleetos.database import answers_without_limit, describe, first_line, is_unavailable
from migrations import requests_rebuild

REFUSED_PREFIX = "FleetOS refused the upgrade"
LOCK_NOT_AVAILABLE = "55P03"
DEADLOCK_DETECTED = "40P01"
DISCARD_OPTION = "discard-v2-data"

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


# An upgrade is a few big statements, each run once, over every request: set
# for this transaction only, like a maintenance job.
# * jit off: compiling a statement costs up to 0.4 s (measured on 0007's
#   record of merged companies, which finds no row), more than it saves on
#   scans this simple.
# * work_mem and maintenance_work_mem at least 256MB: an index build sorts a
#   million rows or so (about 15 percent faster than with the default 64MB),
#   and 0008's GROUP BY of 400,000 addresses spills to disk in 21 batches with
#   the default 4MB. A server set higher keeps its own value.
BULK_WORK_SETTINGS = """
SET LOCAL jit = off;
DO $$
BEGIN
    IF pg_size_bytes(current_setting('work_mem')) < pg_size_bytes('256MB') THEN
        PERFORM set_config('work_mem', '256MB', true);
    END IF;
    IF pg_size_bytes(current_setting('maintenance_work_mem')) < pg_size_bytes('256MB') THEN
        PERFORM set_config('maintenance_work_mem', '256MB', true);
    END IF;
END
$$;
"""


def run_in_one_transaction() -> None:
    requests_rebuild.reset()
    try:
        with context.begin_transaction():
            # The app's statement timeout (DATABASE_STATEMENT_TIMEOUT) is for web
            # requests; it must not roll back a slow but correct upgrade.
            context.execute("SET LOCAL statement_timeout = 0")
            # Nor a lock_timeout the role or database sets: the wait below is for
            # another run, however long that takes; table locks get one after it.
            context.execute("SET LOCAL lock_timeout = 0")
            wait_for_other_migration_runs()
            # Planned only now: a run this one waited for may have done part of it.
            plan_the_run()
            context.execute(f"SET LOCAL lock_timeout = '{lock_timeout()}'")
            context.execute("SET LOCAL timezone = 'UTC'")
            context.execute(BULK_WORK_SETTINGS)
            context.run_migrations()
            swap_if_rebuilding(context)
    finally:
        requests_rebuild.reset()


# Two deploys may run `flask db upgrade` at once. Each takes this lock first,
# held until its COMMIT or ROLLBACK, so they run one after the other: the
# second then reads the version the first left (head: nothing to do) instead
# of racing it (both creating alembic_version, or a deadlock between them).
# It waits as long as the first takes, not lock_timeout (set after it).
MIGRATION_RUN_LOCK = "hashtext('fleetos: flask db upgrade')"


def wait_for_other_migration_runs() -> None:
    if context.is_offline_mode():
        context.execute(f"SELECT pg_advisory_xact_lock({MIGRATION_RUN_LOCK})")
        return
    connection = context.get_bind()
    if not connection.exec_driver_sql(
        f"SELECT pg_try_advisory_xact_lock({MIGRATION_RUN_LOCK})"
    ).scalar():
        logger.info("Another migration run is under way on this database: waiting for it to end.")
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_RUN_LOCK})")


def plan_the_run() -> None:
    steps = planned_steps()
    _Progress.start(steps)
    upgrades = [
        step.revision for step in steps if step.is_upgrade and hasattr(step, "revision")
    ]  # a stamp step has no revision script, and runs none
    _next_revision.clear()
    _next_revision.update(
        (script.revision, following.module) for script, following in itertools.pairwise(upgrades)
    )


# The functions alembic.command passes to compute the steps of an upgrade, a
# downgrade or a stamp. Other commands pass one that does their work instead
# (prints the current version, runs autogenerate) and returns no steps:
# calling it here would do that work again.
STEP_FUNCTIONS = {"upgrade", "downgrade", "do_stamp"}


def planned_steps() -> list:
    """The steps Alembic is about to run (computed by the function its command passed in)."""
    migration_context = context.get_context()
    steps_for = migration_context._migrations_fn
    if getattr(steps_for, "__name__", None) not in STEP_FUNCTIONS:
        return []
    return list(steps_for(migration_context.get_current_heads(), migration_context))


# Each upgrade's next revision module in this run, for swap_before_unaware_revisions.
_next_revision: dict[str, object] = {}


class _Progress:
    """How far this run got, so that an unexpected error can say where it came."""

    planned: ClassVar[list[str]] = []
    finished = 0
    swapping = False

    @classmethod
    def start(cls, steps: list) -> None:
        cls.planned = [
            f"{'in' if step.is_upgrade else 'undoing'} revision {step.revision.revision}"
            if getattr(step, "revision", None) is not None  # a stamp has none
            else "stamping the version"
            for step in steps
        ]
        cls.finished = 0
        cls.swapping = False


def swap_if_rebuilding(ctx) -> None:
    if requests_rebuild.rebuilding():
        _Progress.swapping = True
        ctx.execute(requests_rebuild.swap_sql())
        _Progress.swapping = False
        requests_rebuild.reset()


def swap_before_unaware_revisions(ctx, step, heads, run_args) -> None:
    """After each revision: swap now if the next one was not written to run during a rebuild."""
    _Progress.finished += 1
    following = _next_revision.get(step.up_revision_id) if step.is_upgrade else None
    if following is not None and not requests_rebuild.runs_while_rebuilding(following):
        swap_if_rebuilding(ctx)


def run_migrations_offline() -> None:
    """Emit the SQL of the migrations (``flask db upgrade --sql``)."""
    url = get_engine().url.render_as_string(hide_password=False)
    context.configure(
        url=url,
        target_metadata=target_db.metadata,
        literal_binds=True,
        on_version_apply=swap_before_unaware_revisions,
    )
    run_in_one_transaction()


def run_migrations_online() -> None:
    def skip_empty_autogenerate(context, revision, directives):
        if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
            directives[:] = []
            logger.info("No changes in schema detected.")

    conf_args = current_app.extensions["migrate"].configure_args
    conf_args.setdefault("process_revision_directives", skip_empty_autogenerate)

    _Progress.start([])  # a run before this one, in this process, is no guide
    try:
        connection = get_engine().connect()
    except DBAPIError as exc:
        raise RuntimeError(
            f"could not connect to the database ({describe(exc)}). Check DATABASE_URL and "
            "that the database is up. Nothing was changed."
        ) from None
    try:
        with connection, answers_without_limit(connection):
            context.configure(
                connection=connection,
                target_metadata=target_db.metadata,
                on_version_apply=swap_before_unaware_revisions,
                **conf_args,
            )
            refuse_to_discard_v2_data(connection)
            run_in_one_transaction()
    except DBAPIError as exc:
        explained = explain(exc)
        if explained is None and is_unavailable(exc):
            # Lost, shut down, out of disk: the transaction is gone with it. (An
            # error that comes back on every run is not this: see RECURRING.)
            explained = (
                f"the database failed during the migration ({describe(exc)}). It runs in "
                "one transaction, so nothing was changed; run it again once the database "
                "is back."
            )
        if explained is None:
            explained = unexpected(exc)
        # Flask-Migrate prints a RuntimeError as "Error: ..." and exits 1.
        raise RuntimeError(explained) from None


def explain(exc: DBAPIError) -> str | None:
    """Turn a refusal or a lock timeout into an operator's message; None for anything else."""
    diag = getattr(exc.orig, "diag", None)
    message = (getattr(diag, "message_primary", None) or str(exc.orig)).strip()
    if message.startswith(REFUSED_PREFIX):
        return message + " Nothing was changed."
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate == LOCK_NOT_AVAILABLE:
        return (
            f"could not get a table lock within lock_timeout ({lock_timeout()}): another "
            "transaction is using the tables. Nothing was changed; run the upgrade again when "
            "it has finished, or raise MIGRATION_LOCK_TIMEOUT."
        )
    if sqlstate == DEADLOCK_DETECTED:
        return (
            "another transaction was writing to the tables the upgrade locks, in an order that "
            "would have made each wait for the other (a deadlock). Nothing was changed; run "
            "the upgrade again, best with the old application stopped."
        )
    return None


def unexpected(exc: DBAPIError) -> str:
    """An error no revision foresaw (a v1 schema a DBA changed in a way no refusal checks
    for, or a fault in a revision): what the database said and where, in a few lines the
    operator can act on or report, instead of a traceback."""
    orig = exc.orig
    diag = getattr(orig, "diag", None)
    # Not its DETAIL: that may quote a row ("Failing row contains ..."), which
    # stays in the database's log, as in the app's own log lines (describe).
    said = [
        getattr(diag, "message_primary", None) or first_line(orig),
        getattr(diag, "message_hint", None),
        getattr(diag, "context", None),
    ]
    sqlstate = getattr(orig, "sqlstate", None) or "no SQLSTATE"
    lines = [line.strip() for text in said if text for line in text.strip().splitlines()]
    return (
        f"the migration stopped on an error it does not expect ({where_it_stopped()}).\n"
        f"  The database said ({sqlstate}): "
        + "\n  ".join(lines)
        + "\nIt runs in one transaction, so nothing was changed. Please report this message "
        "with the database's log from that moment."
    )


def where_it_stopped() -> str:
    """Where in the run an error came: the revision Alembic was in, or the swap."""
    if _Progress.swapping:
        return "at the swap of the rebuilt service_requests"
    if _Progress.finished >= len(_Progress.planned):
        return "after the last revision" if _Progress.planned else "before any revision ran"
    running = _Progress.planned[_Progress.finished]
    # Before the first revision Alembic may create its version table.
    return running if _Progress.finished else f"at the start, before or {running}"


def refuse_to_discard_v2_data(connection: Connection) -> None:
    """Refuse a downgrade that would discard v2 data, saying what, unless told to discard it.

    Runs before the migration transaction: each revision the downgrade would
    undo counts what its own downgrade deletes (``data_a_downgrade_discards``),
    on the database as it is now, so the message covers the whole downgrade.
    """
    if context.get_x_argument(as_dictionary=True).get(DISCARD_OPTION) == "yes":
        return
    lost: list[str] = []
    # Counted as the migration runs: no statement timeout (the app's is for web
    # requests), and a table lock that does not come within lock_timeout is
    # reported as such.
    connection.exec_driver_sql("SET LOCAL statement_timeout = 0")
    connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{lock_timeout()}'")
    for step in planned_steps():  # upgrade steps discard nothing, downgrade steps may
        script = getattr(step, "revision", None)  # None for a stamp, which changes no data
        if step.is_downgrade and script is not None:
            counter = getattr(script.module, "data_a_downgrade_discards", None)
            if counter is not None:
                lost.extend(counter(connection))
    connection.rollback()  # counted in a transaction of its own; the migration starts afresh
    if lost:
        target = str(context.get_revision_argument())
        if target.startswith("-"):  # relative (-1): after --, or click takes it for an option
            target = f"-- {target}"
        raise RuntimeError(
            "FleetOS refused the downgrade: it would discard v2 data that v1 has no place for:\n"
            + "".join(f"  {line}\n" for line in lost)
            + "Nothing was changed. Take a backup (pg_dump) first if you may want it back, "
            f"then run `flask db downgrade -x {DISCARD_OPTION}=yes {target}` to discard it."
        )


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
