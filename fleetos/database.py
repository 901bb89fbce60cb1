"""How FleetOS talks to PostgreSQL when PostgreSQL is not well: fail in seconds, never hang.

A database can fail to answer in several ways, and each needs its own limit:

* **down or unreachable** (refused, reset): psycopg fails at once;
* **not answering the handshake** (frozen, a black-holed network path):
  ``connect_timeout`` (``DATABASE_CONNECT_TIMEOUT``);
* **a statement that runs too long** on a working server: ``statement_timeout``
  (``DATABASE_STATEMENT_TIMEOUT``), which the server enforces itself;
* **a server that stops answering on an open connection** (SIGSTOP, a frozen VM,
  a dead path with the TCP connection still up): ``statement_timeout`` cannot help,
  since the server is the one that would enforce it. So FleetOS waits for an answer
  at most that long plus :data:`ANSWER_GRACE` seconds, then closes the connection
  and raises :class:`DatabaseUnavailable`;
* **every pooled connection busy**: ``pool_timeout`` (``DATABASE_POOL_TIMEOUT``).

And once the database has failed to answer, a :class:`Breaker` makes the next
attempts of this process fail at once for a moment (doubling while it stays
down) instead of each one waiting for its own timeout: otherwise a few requests
stuck on a frozen database would hold every web thread, and even ``/healthz``
would wait in the queue behind them.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import psycopg.errors
from flask import Flask
from sqlalchemy import Connection, Engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

# Seconds to wait for an answer beyond statement_timeout: the server cancels a
# long statement itself at statement_timeout; past this, it is not answering at all.
ANSWER_GRACE = 2.0
IDLE = psycopg.pq.TransactionStatus.IDLE
# How long the breaker stays open after a failure, doubling while failures go on.
BREAKER_FIRST_PAUSE = 0.5
BREAKER_LONGEST_PAUSE = 5.0
# A probe that has not reported back after this long is presumed lost (its
# thread was killed): another may try.
PROBE_PATIENCE = 60.0


class DatabaseUnavailable(psycopg.OperationalError):
    """PostgreSQL did not answer (or did not a moment ago): the request cannot be served now."""


class Breaker:
    """Fail fast while the database is not answering (per process and engine).

    Closed, it costs one attribute read. After a failure it opens for a pause
    (0.5 s, doubling while failures go on, up to 5 s): new work fails at once.
    After the pause, one caller (the probe) may try; the others keep failing
    fast until the probe's answer closes the breaker or opens it again.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures = 0
        self._open_until = 0.0
        self._probe_since: float | None = None
        self._last_failure = ""

    def admit(self) -> bool:
        """Let the caller talk to the database, or raise DatabaseUnavailable at once.

        Returns whether the caller is the probe (it must then report back).
        """
        if not self._failures:
            return False
        with self._lock:
            if not self._failures:
                return False
            now = time.monotonic()
            probe_out = self._probe_since is not None and now - self._probe_since < PROBE_PATIENCE
            if now < self._open_until or probe_out:
                raise DatabaseUnavailable(
                    f"not asking the database again yet; a moment ago: {self._last_failure}"
                )
            self._probe_since = now
            return True

    def failed(self, reason: str) -> None:
        with self._lock:
            self._last_failure = reason
            self._failures += 1
            pause = min(BREAKER_FIRST_PAUSE * 2 ** (self._failures - 1), BREAKER_LONGEST_PAUSE)
            self._open_until = time.monotonic() + pause
            self._probe_since = None

    def succeeded(self) -> None:
        if self._failures:
            with self._lock:
                self._failures, self._open_until, self._probe_since = 0, 0.0, None

    def released(self, probe: bool) -> None:
        """The probe was interrupted before it learnt anything."""
        if probe:
            with self._lock:
                self._probe_since = None


class BoundedConnection(psycopg.Connection):
    """A psycopg connection that stops waiting for a server that does not answer.

    psycopg funnels every wait on an open connection (statements, fetches,
    commits, rollbacks, the pool's pre-ping) through :meth:`wait`, which takes
    a timeout; this gives it one when the caller did not, and tells the breaker
    what happened.
    """

    answer_timeout: float | None = None
    breaker: Breaker | None = None

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        breaker = self.breaker
        probe = False
        # The breaker stops new work only (a connection idle between
        # transactions: the pool's pre-ping, a first statement); a transaction
        # under way carries on, bounded by the answer timeout like any other.
        if breaker is not None and self.pgconn.transaction_status == IDLE:
            try:
                probe = breaker.admit()
            except DatabaseUnavailable:
                # It may be as frozen as the one that failed: never use it again.
                self.pgconn.finish()
                raise
        bounded_here = timeout is None
        if bounded_here:
            timeout = self.answer_timeout
        try:
            result = super().wait(gen, interval, timeout)
        except psycopg.errors._WaitTimeout:
            if not bounded_here:  # the caller's own deadline (notifies()): its own to handle
                raise
            # The conversation is cut mid-way; the connection is in an unknown
            # state, so close it (psycopg does the same when a cancel times out).
            self.pgconn.finish()
            reason = f"the database did not answer within {timeout:g} s; connection closed"
            if breaker is not None:
                breaker.failed(reason)
            raise DatabaseUnavailable(reason) from None
        except psycopg.Error as exc:
            if breaker is not None:
                if self.broken or self.closed:  # the connection broke: no answer
                    breaker.failed(first_line(exc))
                else:  # the server answered, with an error: it is there
                    breaker.succeeded()
            raise
        except BaseException:
            if breaker is not None:
                breaker.released(probe)
            raise
        if breaker is not None:
            breaker.succeeded()
        return result


@contextlib.contextmanager
def answers_without_limit(connection: Connection) -> Iterator[None]:
    """Wait as long as the server takes on this connection (``flask db upgrade``).

    The statement timeout is the caller's to lift (``SET LOCAL statement_timeout``).
    """
    dbapi_connection = connection.connection.dbapi_connection
    previous = getattr(dbapi_connection, "answer_timeout", None)
    if isinstance(dbapi_connection, BoundedConnection):
        dbapi_connection.answer_timeout = None
    try:
        yield
    finally:
        if isinstance(dbapi_connection, BoundedConnection):
            dbapi_connection.answer_timeout = previous


def engine_options(app: Flask) -> None:
    """Put the timeouts into ``SQLALCHEMY_ENGINE_OPTIONS`` (settings the caller set win)."""
    config = app.config
    options = config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {})
    connect_args = options.setdefault("connect_args", {})
    statement_ms = int(float(config["DATABASE_STATEMENT_TIMEOUT"]) * 1000)
    # Every timestamp FleetOS stores is UTC; pin the session so NOW() agrees.
    # Startup options cost no round trip, unlike a SET on every new connection.
    connect_args.setdefault("options", f"-c timezone=UTC -c statement_timeout={statement_ms}")
    # An unreachable server fails requests (and /readyz) in seconds, not after
    # the operating system's TCP timeout; a connect_timeout in the URL wins.
    if "connect_timeout" not in make_url(config["SQLALCHEMY_DATABASE_URI"]).query:
        connect_args.setdefault("connect_timeout", config["DATABASE_CONNECT_TIMEOUT"])
    options.setdefault("pool_pre_ping", True)
    options.setdefault("pool_timeout", config["DATABASE_POOL_TIMEOUT"])
    # Errors and logs never carry a statement's values: they hold addresses,
    # mail bodies and sign-in links (the statement's text itself is kept).
    options.setdefault("hide_parameters", True)


def bound_answers(engine: Engine, app: Flask) -> Breaker:
    """Make ``engine`` connect with :class:`BoundedConnection` and one breaker; return it."""
    timeout = answer_timeout(app)
    breaker = Breaker()

    @event.listens_for(engine, "do_connect")
    def connect(dialect: Any, connection_record: Any, cargs: Any, cparams: Any) -> Any:
        probe = breaker.admit()
        try:
            connection = BoundedConnection.connect(*cargs, **cparams)
        except psycopg.OperationalError as exc:
            breaker.failed(first_line(exc))
            raise
        except BaseException:
            breaker.released(probe)
            raise
        breaker.succeeded()
        connection.answer_timeout = timeout
        connection.breaker = breaker
        return connection

    return breaker


def connect_directly(engine: Engine, app: Flask, **overrides: Any) -> BoundedConnection:
    """A connection of its own (not from the pool), made and bounded like the engine's."""
    cargs, cparams = engine.dialect.create_connect_args(engine.url)
    cparams.update(app.config["SQLALCHEMY_ENGINE_OPTIONS"].get("connect_args", {}))
    cparams.update(overrides)
    connection = BoundedConnection.connect(*cargs, **cparams)
    connection.answer_timeout = answer_timeout(app)
    return connection


def answer_timeout(app: Flask) -> float | None:
    """How long to wait for a server that sends nothing: past its own statement timeout."""
    statement_seconds = float(app.config["DATABASE_STATEMENT_TIMEOUT"])
    return statement_seconds + ANSWER_GRACE if statement_seconds > 0 else None


# What a database that is down, frozen, full or restarting raises. Class 08
# (connection), 53 (insufficient resources: disk full), 57 (shutdown,
# statement timeout) and 40 (deadlocks) are all OperationalError in psycopg;
# SQLAlchemy's pool timeout is its own TimeoutError.
UNAVAILABLE = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)


# OperationalErrors too, but they come back the same however often the statement
# is tried: a value over a limit (class 54: an index row too big, a statement too
# complex), temp_file_limit (53400), an object in the wrong state or in use (55000,
# 55006). Not an outage, so not a 503, a paused worker or "run it again".
RECURRING = ("54", "53400", "55000", "55006")


def is_unavailable(error: BaseException | None) -> bool:
    """Whether ``error`` (or what caused it) says the database cannot serve right now."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, UNAVAILABLE):
            original = getattr(error, "orig", None) or error
            sqlstate = getattr(original, "sqlstate", None) or ""
            return not sqlstate.startswith(RECURRING)
        if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
            return True
        # Werkzeug wraps what failed outside a view (opening the session) in a 500.
        error = getattr(error, "original_exception", None) or error.__cause__
    return False


def first_line(error: BaseException) -> str:
    message = str(error).strip()
    return message.splitlines()[0] if message else type(error).__name__


def describe(error: BaseException) -> str:
    """The driver's own first line, without SQLAlchemy's SQL echo or a DETAIL with row values."""
    original = getattr(error, "orig", None) or error
    diag = getattr(original, "diag", None)
    message = getattr(diag, "message_primary", None) or str(original).strip()
    first = message.splitlines()[0] if message else ""
    return f"{type(original).__name__}: {first}" if first else type(original).__name__
