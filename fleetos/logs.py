"""Logging: one JSON line per request, a request id to quote, and never a link's token."""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
import traceback
import uuid
from typing import Any

import psycopg
from flask import Flask, Response, g, request
from sqlalchemy import inspect
from sqlalchemy.exc import StatementError

TOKEN_IN_PATH = re.compile(r"(/auth/link/)[^/\s?\"']+")
REDACTED = r"\1[redacted]"

# An incoming X-Request-ID (from a proxy or load balancer) is kept only if it
# is short and plain: it is echoed in a header, the logs and the error page.
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
REQUEST_ID_HEADER = "X-Request-ID"

request_log = logging.getLogger("fleetos.request")


def redact(text: str) -> str:
    return TOKEN_IN_PATH.sub(REDACTED, text)


class RedactTokens(logging.Filter):
    """Replace link tokens in a record's message (access logs include paths)."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Redact the finished message: "/auth/link/%s" in the format string
        # would otherwise lose its placeholder and leave the token in the args.
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a broken format: let logging report it as usual
            return True
        record.msg, record.args = redact(message), ()
        return True


class LineFormatter(logging.Formatter):
    """A request record is its JSON line alone; anything else gets time, level and logger."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s [%(name)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if hasattr(record, "request_fields"):
            return record.getMessage()
        return super().format(record)

    def formatException(self, ei: Any) -> str:
        return safe_traceback(ei[1]) if ei[1] is not None else super().formatException(ei)


def safe_traceback(error: BaseException) -> str:
    """A traceback like Python's, but a database error shows its first line only.

    PostgreSQL's DETAIL can quote the row ("Failing row contains (..., <a
    sign-in link>)"), and SQLAlchemy's message would quote the parameters if
    ``hide_parameters`` were off: neither may reach the logs.
    """
    chain: list[tuple[BaseException, str]] = []
    seen: set[int] = set()
    current: BaseException | None = error
    link = ""
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append((current, link))
        if current.__cause__ is not None:
            current, link = current.__cause__, CAUSE
        elif current.__context__ is not None and not current.__suppress_context__:
            current, link = current.__context__, CONTEXT
        else:
            current = None
    parts = []
    for exc, link in reversed(chain):
        frames = "".join(traceback.format_tb(exc.__traceback__))
        heading = "Traceback (most recent call last):\n" if frames else ""
        parts.append(f"{heading}{frames}{_qualified_name(exc)}: {_safe_message(exc)}")
        if link:
            parts.append(link)
    return "\n".join(parts)


CAUSE = "\nThe above exception was the direct cause of the following exception:\n"
CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n"


def _qualified_name(exc: BaseException) -> str:
    cls = type(exc)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _safe_message(exc: BaseException) -> str:
    if isinstance(exc, psycopg.Error):
        primary = exc.diag.message_primary or str(exc).split("\n", 1)[0]
        return redact(primary)
    if isinstance(exc, StatementError):
        inner = exc.orig
        message = _safe_message(inner) if isinstance(inner, BaseException) else ""
        name = type(inner).__name__ if inner is not None else "error"
        return f"({name}) {message}\n[SQL: {exc.statement}]"
    return redact(str(exc))


class OncePerBurst:
    """A logger for faults that come in bursts (an outage): one line, not one per request.

    The first event logs; like events in the next ``every`` seconds are only
    counted, and the first one after that logs again, saying how many were not.
    Per process: each gunicorn worker says it once.
    """

    def __init__(self, logger: logging.Logger, every: float = 60.0) -> None:
        self.logger = logger
        self.every = every
        self._lock = threading.Lock()
        self._last_logged = -float("inf")
        self._unlogged = 0

    def warning(self, message: str, *args: object) -> None:
        self.log(logging.WARNING, message, *args)

    def log(self, level: int, message: str, *args: object) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._last_logged < self.every:
                self._unlogged += 1
                return
            unlogged, self._unlogged, self._last_logged = self._unlogged, 0, now
        if unlogged:
            message += f" ({unlogged} more like it since the last such line)"
        self.logger.log(level, message, *args)


LOGGERS_WITH_PATHS = ("werkzeug", "gunicorn.access", "gunicorn.error", "fleetos")


# The id that ties a request's log line, its response header and its error page
# together: its "correlation id" in code (request_id names a service request's
# key), its public names X-Request-ID and the log field request_id.
def new_correlation_id() -> str:
    return uuid.uuid4().hex[:16]


def correlation_id_from(header: str | None) -> str:
    """The caller's request id if it is a sane one, else a new one."""
    if header and SANE_REQUEST_ID.fullmatch(header):
        return header
    return new_correlation_id()


def current_correlation_id() -> str:
    """This request's id (made now if the request never got one, e.g. a hook failed first)."""
    if not g.get("correlation_id"):
        g.correlation_id = new_correlation_id()
    return str(g.correlation_id)


def start_request() -> None:
    g.correlation_id = correlation_id_from(request.headers.get(REQUEST_ID_HEADER))
    g.request_started = time.perf_counter()


def log_request(response: Response) -> Response:
    """Log the finished request as one JSON line and hand its id back to the caller."""
    correlation_id = current_correlation_id()
    response.headers[REQUEST_ID_HEADER] = correlation_id
    log_request_fields(
        method=request.method,
        path=request.path,
        status=response.status_code,
        started=g.get("request_started"),
        contact_id=contact_id(g.get("contact")),
        correlation_id=correlation_id,
    )
    return response


def log_request_fields(
    *,
    method: str,
    path: str,
    status: int,
    started: float | None,
    contact_id: str | None,
    correlation_id: str,
) -> None:
    """The request's JSON line (also for the health probes, which never reach Flask)."""
    fields = {
        "method": method,
        # The path alone: query strings may carry addresses, and links carry tokens.
        "path": redact(path),
        "status": status,
        "duration_ms": round((time.perf_counter() - started) * 1000, 1) if started else None,
        "contact_id": contact_id,
        "request_id": correlation_id,
    }
    request_log.info(json.dumps(fields), extra={"request_fields": fields})


def contact_id(contact: object | None) -> str | None:
    """The contact's id, read from its identity: after an error's rollback the
    instance is expired, and loading it again could fail the same way."""
    if contact is None:
        return None
    identity = inspect(contact).identity
    return str(identity[0]) if identity else None


def register_logging(app: Flask) -> None:
    # Handlers first: Flask adds its own default handler to app.logger when it finds none.
    if not app.debug and not app.testing:
        log_to_stderr(logging.getLogger("fleetos"))
        # SQLAlchemy's own warnings (a pool that could not reset a connection)
        # go through the same formatter, which keeps row values out of them.
        log_to_stderr(logging.getLogger("sqlalchemy"), logging.WARNING)
    token_filter = RedactTokens()
    for name in (*LOGGERS_WITH_PATHS, app.logger.name):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(token_filter)
    # Registered before every other hook, so the id and the clock start first
    # and the log line (after_request hooks run in reverse) sees the final status.
    app.before_request(start_request)
    app.after_request(log_request)


def log_to_stderr(logger: logging.Logger, level: int = logging.INFO) -> None:
    """Production logging: INFO and up to stderr, where gunicorn and systemd collect it."""
    if logger.handlers:  # configured already (another app in this process, or the operator)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LineFormatter())
    # On the handler, so records of child loggers (fleetos.errors, ...) are redacted too.
    handler.addFilter(RedactTokens())
    logger.addHandler(handler)
    logger.setLevel(level)
