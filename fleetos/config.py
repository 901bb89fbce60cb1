"""The one place that reads the environment.

Everything configurable comes through :func:`load_config`; tests and scripts
pass a mapping to ``create_app`` instead of touching ``os.environ``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class ConfigError(RuntimeError):
    """The environment cannot run FleetOS; the message says what to set."""


PRODUCTION = "production"


def normalise_database_url(url: str) -> str:
    """Return ``url`` with the psycopg 3 driver, whichever PostgreSQL form it came in."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ConfigError(
        "DATABASE_URL must be a PostgreSQL URL (postgresql://user@host/db), "
        f"not {url.split(':', 1)[0]}://..."
    )


def load_config(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Build the app configuration from environment variables."""
    env = os.environ if environ is None else environ
    fleetos_env = env.get("FLEETOS_ENV", "development").strip().lower()

    if fleetos_env == PRODUCTION:
        missing = [name for name in ("SECRET_KEY", "DATABASE_URL") if not env.get(name)]
        if missing:
            raise ConfigError(
                "FLEETOS_ENV=production refuses to start without " + " and ".join(missing)
            )

    database_url = env.get("DATABASE_URL")
    return {
        "FLEETOS_ENV": fleetos_env,
        "SECRET_KEY": env.get("SECRET_KEY"),
        # Older keys still accepted when verifying signatures, newest first.
        "SECRET_KEY_FALLBACKS": _split_list(env.get("SECRET_KEY_FALLBACKS", "")),
        "SQLALCHEMY_DATABASE_URI": normalise_database_url(database_url) if database_url else None,
        "BASE_URL": env.get("BASE_URL", "http://127.0.0.1:5000").rstrip("/"),
        "PHONE_DEFAULT_REGION": env.get("PHONE_DEFAULT_REGION", "GB"),
        # How long `flask db upgrade` waits for a table lock before giving up.
        "MIGRATION_LOCK_TIMEOUT": env.get("MIGRATION_LOCK_TIMEOUT", "5s"),
    }


def _split_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def development_secret_key(instance_path: Path) -> str:
    """Return a per-checkout random key, kept in ``instance/`` so sessions survive restarts."""
    key_file = instance_path / "secret_key"
    if not key_file.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_urlsafe(48))
        key_file.chmod(0o600)
    return key_file.read_text().strip()
