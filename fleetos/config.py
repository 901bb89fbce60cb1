"""The one place that reads the environment.

Everything configurable comes through :func:`load_config`; tests and scripts
pass a mapping to ``create_app`` instead of touching ``os.environ``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from datetime import timedelta
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
    base_url = env.get("BASE_URL", "http://127.0.0.1:5000").rstrip("/")
    return {
        "FLEETOS_ENV": fleetos_env,
        "SECRET_KEY": env.get("SECRET_KEY"),
        # Older keys still accepted when verifying signatures, newest first.
        "SECRET_KEY_FALLBACKS": _split_list(env.get("SECRET_KEY_FALLBACKS", "")),
        "SQLALCHEMY_DATABASE_URI": normalise_database_url(database_url) if database_url else None,
        "BASE_URL": base_url,
        "PHONE_DEFAULT_REGION": env.get("PHONE_DEFAULT_REGION", "GB"),
        # How long `flask db upgrade` waits for a table lock before giving up.
        "MIGRATION_LOCK_TIMEOUT": env.get("MIGRATION_LOCK_TIMEOUT", "5s"),
        # Links: seconds each kind of link stays valid.
        "MAGIC_LINK_MAX_AGE": int(env.get("MAGIC_LINK_MAX_AGE", 900)),
        "INVITE_LINK_MAX_AGE": int(env.get("INVITE_LINK_MAX_AGE", 7 * 24 * 3600)),
        "DAILY_LINK_MAX_AGE": int(env.get("DAILY_LINK_MAX_AGE", 24 * 3600)),
        "NOTIFICATION_LINK_MAX_AGE": int(env.get("NOTIFICATION_LINK_MAX_AGE", 3 * 24 * 3600)),
        # Sessions: the cookie is Secure whenever the site is served over https.
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": base_url.startswith("https://"),
        "SESSION_COOKIE_NAME": "fleetos_session",
        "PERMANENT_SESSION_LIFETIME": timedelta(days=int(env.get("SESSION_LIFETIME_DAYS", 14))),
        # The cookie is written only when the session changes. Flask's default rewrites
        # it on every response: a page's poll, answered just after a form's POST, then
        # put back the cookie it was sent with, and the POST's flash message was lost.
        # (The server-side session ends SESSION_LIFETIME_DAYS after sign-in either way.)
        "SESSION_REFRESH_EACH_REQUEST": False,
        # The database: each limit turns one way of not answering into a quick
        # error (see fleetos/database.py). Seconds; a connect_timeout in
        # DATABASE_URL wins over DATABASE_CONNECT_TIMEOUT.
        "DATABASE_CONNECT_TIMEOUT": _positive(env, "DATABASE_CONNECT_TIMEOUT", 5, whole=True),
        "DATABASE_STATEMENT_TIMEOUT": _positive(env, "DATABASE_STATEMENT_TIMEOUT", 10),
        "DATABASE_POOL_TIMEOUT": _positive(env, "DATABASE_POOL_TIMEOUT", 5),
        # Request bodies larger than this are refused (413) before they are read.
        "MAX_CONTENT_LENGTH": int(_positive(env, "MAX_CONTENT_LENGTH", 1024 * 1024, whole=True)),
        # Mail: with no MAIL_SERVER, development prints messages to the console.
        "MAIL_SERVER": env.get("MAIL_SERVER") or None,
        "MAIL_PORT": int(env.get("MAIL_PORT", 587)),
        "MAIL_USERNAME": env.get("MAIL_USERNAME") or None,
        "MAIL_PASSWORD": env.get("MAIL_PASSWORD") or None,
        "MAIL_USE_TLS": _flag(env.get("MAIL_USE_TLS", "true")),
        "MAIL_USE_SSL": _flag(env.get("MAIL_USE_SSL", "false")),
        "MAIL_DEFAULT_SENDER": env.get("MAIL_DEFAULT_SENDER", "FleetOS <no-reply@fleetos.example>"),
        # Flask-Mail would otherwise stop sending whenever TESTING is on.
        "MAIL_SUPPRESS_SEND": False,
        # Seconds the delivery worker waits on each SMTP step (connect, each reply).
        "MAIL_TIMEOUT": _positive(env, "MAIL_TIMEOUT", 30),
        # First retry after this many seconds, doubling up to an hour.
        "MAIL_RETRY_BASE_SECONDS": int(env.get("MAIL_RETRY_BASE_SECONDS", 30)),
        "MAIL_MAX_ATTEMPTS": int(env.get("MAIL_MAX_ATTEMPTS", 12)),
        # The relay takes SMTPUTF8: addresses with non-ASCII letters before the @
        # (josé@...) are accepted. Off, forms refuse them with a clear message.
        "MAIL_SMTPUTF8": _flag(env.get("MAIL_SMTPUTF8", "false")),
        # The deliver worker sends everything (woken by NOTIFY). With this on, a
        # web process also hands its requests' mail to one background thread of
        # its own: for a single process without a worker. Never a request thread.
        "MAIL_DELIVER_AFTER_RESPONSE": _flag(env.get("MAIL_DELIVER_AFTER_RESPONSE", "false")),
        # Rate limits (Flask-Limiter): memory in development, Redis in production.
        "RATELIMIT_STORAGE_URI": env.get("RATELIMIT_STORAGE_URI", "memory://"),
        "RATELIMIT_HEADERS_ENABLED": True,
        # Keeps the counters of several deployments sharing one Redis apart.
        "RATELIMIT_KEY_PREFIX": env.get("RATELIMIT_KEY_PREFIX", ""),
        "LINK_REQUEST_LIMIT_PER_IP": env.get(
            "LINK_REQUEST_LIMIT_PER_IP", "10 per minute;50 per hour"
        ),
        "LINK_REQUEST_LIMIT_PER_ADDRESS": env.get(
            "LINK_REQUEST_LIMIT_PER_ADDRESS", "3 per 10 minutes;10 per day"
        ),
        # What one contact / one company may send (FleetOS is no relay for spam):
        # requests and notes per moving window, and new addresses written to per 24 hours.
        "REQUEST_LIMIT_PER_CONTACT": env.get(
            "REQUEST_LIMIT_PER_CONTACT", "10 per minute;60 per hour;200 per day"
        ),
        "REQUEST_LIMIT_PER_COMPANY": env.get(
            "REQUEST_LIMIT_PER_COMPANY", "20 per minute;200 per hour;1000 per day"
        ),
        "NOTE_LIMIT_PER_CONTACT": env.get("NOTE_LIMIT_PER_CONTACT", "10 per minute;100 per hour"),
        "NOTE_LIMIT_PER_COMPANY": env.get("NOTE_LIMIT_PER_COMPANY", "30 per minute;300 per hour"),
        "NEW_ADDRESSES_PER_DAY": int(env.get("NEW_ADDRESSES_PER_DAY", 20)),
        # Proxies in front of the app whose X-Forwarded-* headers are trusted
        # (0: none). Rate limits per IP count the address this makes visible.
        "PROXY_FIX_HOPS": _hops(env.get("PROXY_FIX_HOPS", "0")),
        # How often an open dashboard asks for changes (seconds).
        "DASHBOARD_POLL_SECONDS": int(env.get("DASHBOARD_POLL_SECONDS", 10)),
        # The resolver that domain claims are checked with (host[:port]); unset: the system's.
        "DNS_NAMESERVER": env.get("DNS_NAMESERVER") or None,
        # Seconds a domain check waits for DNS before saying "try again".
        "DNS_TIMEOUT": _positive(env, "DNS_TIMEOUT", 5),
        **_attachment_config(env),
        **_reply_config(env),
        **_sms_config(env),
    }


def _reply_config(env: Mapping[str, str]) -> dict[str, Any]:
    """Replies by mail: where they are received, and what is taken from them."""
    domain = (env.get("INBOUND_MAIL_DOMAIN") or "").strip().lower().rstrip(".")
    return {
        # Mail about a request says Reply-To: reply+<token>@this domain (unset: no Reply-To).
        "INBOUND_MAIL_DOMAIN": domain or None,
        # The largest message receive-mail and the gateway take (bytes, as it travels:
        # attachments in base64 are a third larger than the files).
        "INBOUND_MAIL_MAX_BYTES": int(
            _positive(env, "INBOUND_MAIL_MAX_BYTES", 40_000_000, whole=True)
        ),
        # Whose Authentication-Results header counts (the receiving MTA's authserv-id);
        # unset: the topmost one, which the MTA that handed the message over added.
        "INBOUND_AUTHSERV_ID": (env.get("INBOUND_AUTHSERV_ID") or "").strip().lower() or None,
        # A reply address dies this many days after its request was closed.
        "REPLY_ADDRESS_CLOSED_DAYS": int(
            _positive(env, "REPLY_ADDRESS_CLOSED_DAYS", 30, whole=True)
        ),
        # Seconds the link to accept or discard a held reply works.
        "HELD_REPLY_LINK_MAX_AGE": int(
            _positive(env, "HELD_REPLY_LINK_MAX_AGE", 7 * 24 * 3600, whole=True)
        ),
        # Replies from other addresses held for one reply address in any 24 hours; past
        # it they are recorded, not kept, and their addressee is not mailed about them.
        "HELD_REPLIES_PER_DAY": int(_positive(env, "HELD_REPLIES_PER_DAY", 5, whole=True)),
    }


SMS_BACKENDS = ("console", "webhook", "twilio")


def _sms_config(env: Mapping[str, str]) -> dict[str, Any]:
    """SMS: which gateway carries messages to phone numbers, and how replies are verified."""
    backend = env.get("SMS_BACKEND", "console").strip().lower() or "console"
    if backend not in SMS_BACKENDS:
        raise ConfigError(f"SMS_BACKEND must be console, webhook or twilio, not {backend!r}")
    needed = {
        "webhook": ("SMS_WEBHOOK_URL", "SMS_WEBHOOK_SECRET"),
        "twilio": ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM"),
    }.get(backend, ())
    missing = [name for name in needed if not env.get(name)]
    if missing:
        raise ConfigError(f"SMS_BACKEND={backend} needs " + " and ".join(missing))
    return {
        "SMS_BACKEND": backend,
        "SMS_WEBHOOK_URL": env.get("SMS_WEBHOOK_URL") or None,
        # Signs what FleetOS posts to the webhook, and verifies what the gateway posts back.
        "SMS_WEBHOOK_SECRET": env.get("SMS_WEBHOOK_SECRET") or None,
        "TWILIO_ACCOUNT_SID": env.get("TWILIO_ACCOUNT_SID") or None,
        "TWILIO_AUTH_TOKEN": env.get("TWILIO_AUTH_TOKEN") or None,
        "TWILIO_FROM": env.get("TWILIO_FROM") or None,
        "TWILIO_API_BASE": env.get("TWILIO_API_BASE", "https://api.twilio.com").rstrip("/"),
        # Seconds the worker waits for the gateway to answer one SMS.
        "SMS_TIMEOUT": _positive(env, "SMS_TIMEOUT", 10),
        # Sign-up texts (to numbers no company knows yet) sent in any 24 hours, all
        # companies together: what a pumping attack can cost at most (0: no limit).
        "SMS_SIGN_UPS_PER_DAY": int(_positive(env, "SMS_SIGN_UPS_PER_DAY", 100, whole=True)),
        # Wrong codes typed at /auth/code, per client and per address (on top of the
        # rule that a code dies after 5 wrong tries).
        "CODE_TRY_LIMIT_PER_IP": env.get("CODE_TRY_LIMIT_PER_IP", "20 per 10 minutes;100 per day"),
        "CODE_TRY_LIMIT_PER_ADDRESS": env.get(
            "CODE_TRY_LIMIT_PER_ADDRESS", "10 per 10 minutes;30 per day"
        ),
        # Replies received at /sms/inbound, per sending number.
        "SMS_INBOUND_LIMIT_PER_NUMBER": env.get(
            "SMS_INBOUND_LIMIT_PER_NUMBER", "10 per minute;200 per day"
        ),
    }


ATTACHMENT_STORAGES = ("file", "s3")


def _attachment_config(env: Mapping[str, str]) -> dict[str, Any]:
    """Photos and documents: where they are kept, and how large they may be (bytes)."""
    storage = env.get("ATTACHMENT_STORAGE", "file").strip().lower() or "file"
    if storage not in ATTACHMENT_STORAGES:
        raise ConfigError(f"ATTACHMENT_STORAGE must be file or s3, not {storage!r}")
    if storage == "s3" and not env.get("S3_BUCKET"):
        raise ConfigError("ATTACHMENT_STORAGE=s3 needs S3_BUCKET (and S3_ENDPOINT_URL off AWS)")
    return {
        "ATTACHMENT_STORAGE": storage,
        # file: the directory (default instance/attachments).
        "ATTACHMENT_DIR": env.get("ATTACHMENT_DIR") or None,
        # s3: the store (unset: AWS itself), the bucket, and how long a download link works.
        "S3_ENDPOINT_URL": env.get("S3_ENDPOINT_URL") or None,
        "S3_BUCKET": env.get("S3_BUCKET") or None,
        "S3_URL_SECONDS": int(_positive(env, "S3_URL_SECONDS", 60, whole=True)),
        # One file; one upload (a form, a mail, an MMS) in all; one request's files in all.
        "ATTACHMENT_MAX_BYTES": int(_positive(env, "ATTACHMENT_MAX_BYTES", 15_000_000, whole=True)),
        "ATTACHMENT_MAX_FILES": int(_positive(env, "ATTACHMENT_MAX_FILES", 10, whole=True)),
        "ATTACHMENT_MAX_UPLOAD_BYTES": int(
            _positive(env, "ATTACHMENT_MAX_UPLOAD_BYTES", 50_000_000, whole=True)
        ),
        "ATTACHMENT_MAX_REQUEST_BYTES": int(
            _positive(env, "ATTACHMENT_MAX_REQUEST_BYTES", 250_000_000, whole=True)
        ),
        # A refused form keeps the files it took in for this long (seconds), so they
        # need not be sent again; `attachments gc` must wait longer than this.
        "ATTACHMENT_KEEP_SECONDS": int(
            _positive(env, "ATTACHMENT_KEEP_SECONDS", 6 * 3600, whole=True)
        ),
    }


def per_process_limits(storage_uri: str) -> bool:
    """Whether rate limits in ``storage_uri`` are counted by each process on its own."""
    return storage_uri.strip().lower().startswith("memory://")


def refuse_per_process_limits(environ: Mapping[str, str], workers: int) -> None:
    """In production, refuse ``memory://`` limits when more than one process may serve.

    Each process would count alone, so every limit (sign-in links, requests,
    notes) would be multiplied by the number of processes. Called by
    gunicorn.conf.py once it knows how many workers it starts.
    """
    config = load_config(environ)
    if config["FLEETOS_ENV"] != PRODUCTION or workers <= 1:
        return
    if per_process_limits(config["RATELIMIT_STORAGE_URI"]):
        raise ConfigError(
            f"RATELIMIT_STORAGE_URI is {config['RATELIMIT_STORAGE_URI']!r}, which counts rate "
            f"limits in each process on its own: with {workers} workers every limit would be "
            f"{workers} times what it says. Set RATELIMIT_STORAGE_URI=redis://host:6379/0 "
            "(shared by every process), or run one worker (WEB_CONCURRENCY=1)."
        )


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _positive(env: Mapping[str, str], name: str, default: float, *, whole: bool = False) -> float:
    """A positive number from the environment, or a ConfigError naming the variable."""
    value = env.get(name)
    if value is None or not value.strip():
        return default
    try:
        number = int(value) if whole else float(value)
    except ValueError:
        number = -1
    if number <= 0:
        kind = "a whole number" if whole else "a number"
        raise ConfigError(f"{name} must be {kind} greater than 0, not {value!r}")
    return number


def _hops(value: str) -> int:
    try:
        hops = int(value)
    except ValueError:
        hops = -1
    if hops < 0:
        raise ConfigError(
            f"PROXY_FIX_HOPS must be a whole number of proxies (0 for none), not {value!r}"
        )
    return hops


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
