"""The app bench/dashboard.py serves: FleetOS itself, plus two control endpoints.

Started by the benchmark as ``gunicorn --pythonpath bench 'dashboard_app:create()'`` with
BENCH_DATABASE_URL and BENCH_SECRET_KEY in the environment. Nothing here is part of FleetOS.

The control endpoints answer what the real partials answer, from the very same SQL and the
very same templates, but read the database through a raw psycopg connection (one per
thread, autocommit) instead of Flask-SQLAlchemy's session and pool:

* ``GET /bench/control/rows``   ~ ``GET /dashboard/rows``   (``dashboard/_rows.html``)
* ``GET /bench/control/counts`` ~ ``GET /dashboard/counts`` (``dashboard/_counts.html``)

The SQL is compiled once from the app's own query builders (``rows_query`` plus the keyset
condition and limit of ``list_page``; the select of ``counts``) with sentinel values, and
each request binds its own values in their place. The signed-in contact is loaded with one
raw query too (the app's ``load_current_contact`` is swapped for it on these endpoints only),
so everything between Flask and PostgreSQL that the app does through SQLAlchemy, the control
does with psycopg alone; routing, session cookie, CSRF token, templates are shared.

One difference comes with that and is part of what is measured: the control's autocommit
connections never roll back, so psycopg prepares its statements after five executions and
PostgreSQL reuses their plans; the app's connections end every request with ROLLBACK, on
which psycopg forgets its prepared statements, so the app parses and plans every query.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from flask import Blueprint, Flask, abort, current_app, g, request, session
from psycopg.rows import namedtuple_row
from sqlalchemy import Select, select, tuple_

from fleetos import create_app
from fleetos.auth.session import load_current_contact
from fleetos.config import normalise_database_url
from fleetos.dashboard import queries as dashboard_queries
from fleetos.dashboard.queries import PAGE_SIZE, Cursor, Filters, Page
from fleetos.extensions import db
from fleetos.htmx import fragment, is_htmx
from fleetos.models import STATUSES, Company, Contact, RequestStatusCount

CONTROL = "bench_control"

# Sentinel values: compiled into the statements, then found again among the bind
# parameters to learn which parameter carries which value.
_COMPANY = uuid.UUID("00000000-0000-4000-8000-00000000c0de")
_CONTACT = uuid.UUID("00000000-0000-4000-8000-0000000c0de5")
_AFTER_ID = uuid.UUID("00000000-0000-4000-8000-0000000af7e5")
_AFTER_AT = datetime(1999, 12, 31, 23, 59, 58, 123456)
_STATUS = "__bench_status__"
_SIDE = "__bench_side__"
_LIMIT = 987_654

CONTACT_SQL = """
SELECT c.contact_id, c.company_id, c.contact_value, c.contact_type, c.display_name,
       c.first_seen_at, c.last_seen_at,
       co.name AS company_name, co.company_type, co.email_domain,
       co.created_at AS company_created_at
  FROM contacts c JOIN companies co ON co.company_id = c.company_id
 WHERE c.contact_id = %s
"""


@dataclass(frozen=True)
class CompiledQuery:
    """An SQL string (psycopg ``%(name)s`` style) and the role each bind parameter plays."""

    sql: str
    roles: dict[str, str]

    def params(self, **values: Any) -> dict[str, Any]:
        return {name: values[role] for name, role in self.roles.items()}

    def literal(self, **values: Any) -> str:
        """The SQL with the values inlined (for EXPLAIN in psql or a report)."""
        quoted = {name: _sql_literal(value) for name, value in self.params(**values).items()}
        return self.sql % quoted


def _sql_literal(value: Any) -> str:
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def _compile(query: Select, sentinels: dict[Any, str]) -> CompiledQuery:
    compiled = query.compile(dialect=db.engine.dialect)
    if "POSTCOMPILE" in compiled.string:
        raise RuntimeError("statement has post-compile parameters: " + compiled.string)
    roles = {}
    for name, value in compiled.params.items():
        if value not in sentinels:
            raise RuntimeError(f"unexpected bind parameter {name}={value!r}")
        roles[name] = sentinels[value]
    return CompiledQuery(compiled.string, roles)


def list_query(is_supplier: bool, keyset: bool) -> CompiledQuery:
    """``list_page``'s statement for a company of this side, with or without a cursor."""
    company = Company(
        company_id=_COMPANY, name="", company_type="supplier" if is_supplier else "fleet"
    )
    contact = Contact(contact_id=_CONTACT, company_id=_COMPANY)
    contact.__dict__["company"] = company  # set without the back-reference (lazy="raise")
    query = dashboard_queries.rows_query(contact, Filters(status=_STATUS))
    if keyset:
        query = query.where(dashboard_queries._position(query) < tuple_(_AFTER_AT, _AFTER_ID))
    return _compile(
        query.limit(_LIMIT),
        {
            _COMPANY: "company_id",
            _STATUS: "status",
            _AFTER_AT: "after_created_at",
            _AFTER_ID: "after_request_id",
            _LIMIT: "limit",
        },
    )


def counts_query() -> CompiledQuery:
    """``fleetos.queries.status_counts``'s statement (written out the same way: it builds it
    inline)."""
    query = select(RequestStatusCount.status, RequestStatusCount.n).where(
        RequestStatusCount.company_id == _COMPANY, RequestStatusCount.side == _SIDE
    )
    return _compile(query, {_COMPANY: "company_id", _SIDE: "side"})


def _queries() -> dict[Any, CompiledQuery]:
    cache = current_app.extensions.setdefault(CONTROL, {})
    if not cache:
        for is_supplier in (True, False):
            for keyset in (True, False):
                cache[is_supplier, keyset] = list_query(is_supplier, keyset)
        cache["counts"] = counts_query()
    return cache


# ---------------------------------------------------------------------------
# Raw connections: one per thread and database, autocommit, UTC like the app's.
# ---------------------------------------------------------------------------

_local = threading.local()


def raw_connection() -> psycopg.Connection[Any]:
    dsn = current_app.config["BENCH_RAW_DSN"]
    conns = _local.__dict__.setdefault("conns", {})
    conn = conns.get(dsn)
    if conn is None or conn.closed:
        conn = psycopg.connect(
            dsn, autocommit=True, options="-c timezone=UTC", row_factory=namedtuple_row
        )
        conns[dsn] = conn
    return conn


def load_contact_raw() -> None:
    """``load_current_contact`` with one raw query; the objects are transient, never queried."""
    g.contact = g.company = None
    contact_id = session.get("contact_id")
    if not contact_id:
        return
    try:
        row = raw_connection().execute(CONTACT_SQL, (uuid.UUID(contact_id),)).fetchone()
    except ValueError:
        row = None
    if row is None:
        session.clear()
        return
    g.company = Company(
        company_id=row.company_id,
        name=row.company_name,
        company_type=row.company_type,
        email_domain=row.email_domain,
        created_at=row.company_created_at,
    )
    g.contact = Contact(
        contact_id=row.contact_id,
        company_id=row.company_id,
        contact_value=row.contact_value,
        contact_type=row.contact_type,
        display_name=row.display_name,
        first_seen_at=row.first_seen_at,
        last_seen_at=row.last_seen_at,
    )


def load_contact() -> None:
    if request.blueprint == CONTROL:
        load_contact_raw()
    else:
        load_current_contact()


# ---------------------------------------------------------------------------
# The control endpoints
# ---------------------------------------------------------------------------

control = Blueprint(CONTROL, __name__, url_prefix="/bench/control")


@control.before_request
def signed_in_htmx_only() -> None:
    if g.get("contact") is None:
        abort(401)
    if not is_htmx():
        abort(400)


@control.get("/rows")
def rows():
    """``dashboard.rows`` (status filter only) through psycopg."""
    filters = Filters.from_args(request.args)
    if filters.narrowed:
        abort(400)
    after = Cursor.decode(request.args.get("after"))
    query = _queries()[g.company.is_supplier, after is not None]
    params = query.params(
        company_id=g.company.company_id,
        status=filters.status,
        limit=PAGE_SIZE + 1,
        after_created_at=after and after.created_at,
        after_request_id=after and after.request_id,
    )
    found = raw_connection().execute(query.sql, params).fetchall()
    more = len(found) > PAGE_SIZE
    found = found[:PAGE_SIZE]
    page = Page(found, Cursor(found[-1].created_at, found[-1].request_id) if more else None)
    return fragment("dashboard/_rows.html", filters=filters, page=page)


@control.get("/counts")
def counts():
    """``dashboard.counts`` through psycopg."""
    filters = Filters.from_args(request.args)
    query = _queries()["counts"]
    side = "supplier" if g.company.is_supplier else "fleet"
    found = dict(
        raw_connection()
        .execute(query.sql, query.params(company_id=g.company.company_id, side=side))
        .fetchall()
    )
    return fragment(
        "dashboard/_counts.html",
        filters=filters,
        counts={status: found.get(status, 0) for status in STATUSES},
    )


# ---------------------------------------------------------------------------


def create(database_url: str | None = None, secret_key: str | None = None) -> Flask:
    """FleetOS configured for the benchmark, with the control endpoints added."""
    url = database_url or os.environ["BENCH_DATABASE_URL"]
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": normalise_database_url(url),
            "SECRET_KEY": secret_key or os.environ["BENCH_SECRET_KEY"],
            "TESTING": False,
            "DEBUG": False,
            "RATELIMIT_ENABLED": False,
            "MAIL_DELIVER_AFTER_RESPONSE": False,
            "BENCH_RAW_DSN": url.replace("postgresql+psycopg://", "postgresql://", 1),
        }
    )
    # Quiet: the request log line is still built (the app's cost), but not written.
    logging.getLogger("fleetos").setLevel(logging.WARNING)
    hooks = app.before_request_funcs[None]
    hooks[hooks.index(load_current_contact)] = load_contact
    app.register_blueprint(control)
    return app
