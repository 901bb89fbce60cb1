"""A v1 upgrade rebuilds service_requests beside the v1 table and swaps it in at the very end.

Why: an in-place upgrade (``ADD COLUMN``, then ``UPDATE`` every row) holds an
ACCESS EXCLUSIVE lock on service_requests from the ``ADD COLUMN`` until COMMIT,
so every reader waits for the whole rewrite (about 40 s per million requests
on a small server). Built beside it, the v2 table costs readers nothing: the
v1 table stays readable until the two names are swapped, just before COMMIT.

How the revisions share the rebuild (all in the upgrade's one transaction):

* ``0002_emergent_contacts`` locks the v1 tables in SHARE mode before it reads
  anything (v1 writers wait, readers go on), creates and fills ``NEW_TABLE``
  with one ``CREATE TABLE ... AS SELECT`` (which may use parallel workers),
  adds its NOT NULLs, defaults, checks, keys and indexes, and calls
  :func:`begin`.
* A later revision that says ``REBUILD_AWARE = True`` runs before the swap:
  it changes service_requests only through :func:`table` and names its
  indexes with :func:`index_name` (or does not touch service_requests at all).
  While a rebuild is pending, :func:`table` is ``NEW_TABLE``: created in this
  transaction, so no other session can see it, and ALTERs and index builds on
  it block no one. On a database that is already v2 it is service_requests
  itself, changed the ordinary way.
* ``migrations/env.py`` runs :func:`swap_sql` after the last revision of the
  run, or before the first revision that does not say ``REBUILD_AWARE``: that
  one, and every one after it, then finds the new table under its own name,
  but runs while the swap's lock holds readers until COMMIT. So a revision
  written without the rebuild in mind is correct, only not free for readers.

A REBUILD_AWARE revision that must take ACCESS EXCLUSIVE on another table
(``ALTER TABLE companies ADD COLUMN``) would hold that table's readers from
there until COMMIT, through every later revision and the swap. During a
rebuild it hands such statements to :func:`at_swap` instead: the swap locks
their tables together with service_requests, in the same short attempts, and
runs them just before it swaps, so their readers wait no longer than readers
of service_requests. Until then the change does not exist: a later revision
of the same run must not need it (it fails loudly if it does). On a database
that is already v2, nothing is pending and the revision runs them itself.

The swap is the only moment readers of service_requests wait. A revision
that says ``REBUILD_AWARE`` but changes service_requests by name would change
the v1 table, which the swap drops: the swap then refuses the upgrade, naming
what the new table lacks, rather than lose it.

The pending state lives in this module for the length of one migration run
(env.py resets it first), so ``flask db upgrade --sql`` emits the same SQL as
an online upgrade of a v1 database.
"""

from __future__ import annotations

from typing import ClassVar

NEW_TABLE = "fleetos_new_service_requests"
# Index names are unique per schema, so the new table's indexes (its primary
# key included) carry this prefix until the swap renames them.
NEW_NAME_PREFIX = "fleetos_new_"
# The swap's lock is tried in attempts this long, so that a reader queued
# behind the attempt waits no longer than this, however long the operator's
# MIGRATION_LOCK_TIMEOUT.
SWAP_LOCK_ATTEMPT = "200ms"
SWAP_LOCK_PAUSE_SECONDS = 0.2


class _Run:
    pending = False
    # (table, statements) handed to at_swap in this run, in order.
    at_swap: ClassVar[list[tuple[str, tuple[str, ...]]]] = []


def reset() -> None:
    """Forget any rebuild: env.py calls this before each migration run."""
    _Run.pending = False
    _Run.at_swap = []


def begin() -> None:
    """0002 has built NEW_TABLE: later revisions of this run change it, then env.py swaps it in."""
    _Run.pending = True


def rebuilding() -> bool:
    return _Run.pending


def table() -> str:
    """The service_requests a revision should change in this run."""
    return NEW_TABLE if _Run.pending else "service_requests"


def at_swap(table_name: str, *statements: str) -> None:
    """Run ``statements``, which lock ``table_name`` ACCESS EXCLUSIVE, at the swap (rebuild only).

    The swap locks ``table_name`` with service_requests, in short attempts,
    and runs them, in the order given, right before it swaps: readers of
    ``table_name`` then wait only as long as readers of service_requests.
    Only while :func:`rebuilding`; a revision runs them itself otherwise.
    """
    if not _Run.pending:
        raise RuntimeError("at_swap is only for a run that is rebuilding service_requests")
    _Run.at_swap.append((table_name, statements))


def runs_while_rebuilding(revision_module: object) -> bool:
    """Whether a revision may run before the swap (it says ``REBUILD_AWARE = True``)."""
    return getattr(revision_module, "REBUILD_AWARE", False) is True


def index_name(name: str) -> str:
    """The name to build index ``name`` under in this run (the swap gives it its own name)."""
    return NEW_NAME_PREFIX + name if _Run.pending else name


def lock_in_short_attempts_sql(table_name: str, mode: str = "ACCESS EXCLUSIVE") -> str:
    """SQL that locks ``table_name`` in attempts of SWAP_LOCK_ATTEMPT, within lock_timeout in all.

    ``table_name`` may list several tables (``service_requests, companies``):
    each attempt locks them in that order, and one that fails gives back
    those it got, so no reader of any of them waits longer than an attempt.

    A lock request that waits (behind a long transaction still reading the
    table) makes every reader that comes after it wait too. Tried in short
    attempts with pauses between them, no reader queues behind it longer than
    one attempt. The attempts stop after lock_timeout (MIGRATION_LOCK_TIMEOUT)
    in all, with the usual lock_not_available error, and the upgrade changes
    nothing.
    """
    return f"""
DO $$
DECLARE
    configured text := current_setting('lock_timeout');
    budget interval := current_setting('lock_timeout')::interval;
    deadline timestamptz := clock_timestamp() + current_setting('lock_timeout')::interval;
BEGIN
    PERFORM set_config('lock_timeout', '{SWAP_LOCK_ATTEMPT}', true);
    LOOP
        BEGIN
            LOCK TABLE {table_name} IN {mode} MODE;
            EXIT;
        EXCEPTION WHEN lock_not_available THEN
            IF budget > interval '0' AND clock_timestamp() >= deadline THEN
                RAISE;
            END IF;
        END;
        PERFORM pg_sleep({SWAP_LOCK_PAUSE_SECONDS});
    END LOOP;
    PERFORM set_config('lock_timeout', configured, true);
END
$$;
"""


def _at_swap_sql() -> str:
    return "".join(
        f"\n-- Handed to the swap by a revision of this run (requests_rebuild.at_swap).\n"
        f"{statement.strip().rstrip(';')};\n"
        for _, statements in _Run.at_swap
        for statement in statements
    )


def swap_sql() -> str:
    """SQL that replaces the v1 service_requests by NEW_TABLE (env.py, before COMMIT)."""
    # service_requests first: an attempt waiting on it (behind a long reader)
    # holds none of the others.
    locked = ["service_requests"]
    locked += [name for name, _ in _Run.at_swap if name not in locked]
    return f"""
-- The swap. NEW_TABLE is complete. It is not analyzed here (half a second
-- per million requests): its index builds have set its size, which is what
-- the first queries after COMMIT are planned with, and autovacuum analyzes
-- it soon after, as it does any table that has just had this many inserts.

-- From this lock until COMMIT, which follows at once, readers of
-- {", ".join(locked)} wait. The lock is tried in {SWAP_LOCK_ATTEMPT} attempts, pausing
-- between them, so a reader queued behind an attempt (behind a long
-- transaction still reading the v1 table) waits at most that long. The
-- attempts stop after lock_timeout (MIGRATION_LOCK_TIMEOUT) in all, with the
-- usual lock_not_available error, and the upgrade changes nothing.
{lock_in_short_attempts_sql(", ".join(locked))}{_at_swap_sql()}
-- Everything of the v1 table must be on the new one before the v1 table goes.
DO $$
DECLARE
    missing text;
BEGIN
    SELECT string_agg(gap, ', ' ORDER BY gap) INTO missing
      FROM (SELECT 'column ' || a.attname AS gap
              FROM pg_attribute a
             WHERE a.attrelid = 'service_requests'::regclass AND a.attnum > 0 AND NOT a.attisdropped
               AND NOT EXISTS (SELECT 1 FROM pg_attribute n
                                WHERE n.attrelid = '{NEW_TABLE}'::regclass AND n.attname = a.attname
                                  AND n.atttypid = a.atttypid AND NOT n.attisdropped
                                  AND (n.attnotnull OR NOT a.attnotnull))
            UNION ALL
            SELECT 'index ' || i.relname
              FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
             WHERE x.indrelid = 'service_requests'::regclass
               AND NOT EXISTS (SELECT 1 FROM pg_index nx JOIN pg_class ni ON ni.oid = nx.indexrelid
                                WHERE nx.indrelid = '{NEW_TABLE}'::regclass
                                  AND ni.relname = '{NEW_NAME_PREFIX}' || i.relname)
            UNION ALL
            SELECT 'constraint ' || c.conname
              FROM pg_constraint c
             WHERE c.conrelid = 'service_requests'::regclass AND c.contype IN ('c', 'f')
               AND NOT EXISTS (SELECT 1 FROM pg_constraint n
                                WHERE n.conrelid = '{NEW_TABLE}'::regclass AND n.conname = c.conname)
            UNION ALL
            SELECT 'trigger ' || t.tgname
              FROM pg_trigger t
             WHERE t.tgrelid = 'service_requests'::regclass AND NOT t.tgisinternal
               AND NOT EXISTS (SELECT 1 FROM pg_trigger n
                                WHERE n.tgrelid = '{NEW_TABLE}'::regclass AND n.tgname = t.tgname)) gaps;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION USING MESSAGE =
            'FleetOS refused the upgrade: a revision changed the v1 service_requests after '
            || '0002_emergent_contacts began rebuilding it, and the rebuilt table lacks '
            || missing || '. A revision must change requests_rebuild.table() instead.';
    END IF;
END
$$;

-- Foreign keys of other tables (event_log) point at the v1 table by its oid:
-- noted here, dropped, and added again once the new table has the name.
CREATE TEMP TABLE fleetos_swap_foreign_keys ON COMMIT DROP AS
SELECT c.conrelid::regclass::text AS child, c.conname, pg_get_constraintdef(c.oid) AS definition
  FROM pg_constraint c
 WHERE c.contype = 'f' AND c.confrelid = 'service_requests'::regclass
   AND c.conrelid <> 'service_requests'::regclass;

DO $$
DECLARE
    fk record;
BEGIN
    FOR fk IN SELECT child, conname FROM fleetos_swap_foreign_keys LOOP
        EXECUTE 'ALTER TABLE ' || fk.child || ' DROP CONSTRAINT ' || quote_ident(fk.conname);
    END LOOP;
END
$$;

-- The v1 table, every row of which is in the new one, goes now: its space is
-- freed at COMMIT. A downgrade rebuilds v1 from the v2 table.
-- squawk-ignore ban-drop-table
DROP TABLE service_requests;
-- squawk-ignore renaming-table
ALTER TABLE {NEW_TABLE} RENAME TO service_requests;

DO $$
DECLARE
    item record;
BEGIN
    FOR item IN SELECT i.relname
                  FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
                 WHERE x.indrelid = 'service_requests'::regclass
                   AND starts_with(i.relname, '{NEW_NAME_PREFIX}') LOOP
        -- Renaming the primary key's index renames the constraint too.
        EXECUTE 'ALTER INDEX ' || quote_ident(item.relname) || ' RENAME TO '
                || quote_ident(substr(item.relname, length('{NEW_NAME_PREFIX}') + 1));
    END LOOP;
    -- NOT NULL constraints have names of their own from PostgreSQL 18 on,
    -- made from the table's name when it was created.
    FOR item IN SELECT conname FROM pg_constraint
                 WHERE conrelid = 'service_requests'::regclass AND contype = 'n'
                   AND starts_with(conname, '{NEW_TABLE}_') LOOP
        EXECUTE 'ALTER TABLE service_requests RENAME CONSTRAINT ' || quote_ident(item.conname)
                || ' TO ' || quote_ident('service_requests_'
                                         || substr(item.conname, length('{NEW_TABLE}_') + 1));
    END LOOP;
    FOR item IN SELECT child, conname, definition FROM fleetos_swap_foreign_keys LOOP
        EXECUTE 'ALTER TABLE ' || item.child || ' ADD CONSTRAINT ' || quote_ident(item.conname)
                || ' ' || item.definition;
    END LOOP;
END
$$;
"""
