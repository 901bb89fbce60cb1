"""A real DNS server on loopback for domain claims, and a recorder of the SQL a request runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from flask import Flask
from sqlalchemy import event

from fleetos.extensions import db
from tests.dnsserver import DnsServer


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    """dnslib serving TXT records on 127.0.0.1 (FleetOS's DNS_NAMESERVER in tests)."""
    server = DnsServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def dns_app(make_app: Callable[..., Flask], dns_server: DnsServer) -> Flask:
    """The app, resolving domains with ``dns_server``."""
    return make_app(DNS_NAMESERVER=dns_server.nameserver, DNS_TIMEOUT=2)


@contextmanager
def sql_statements(app: Flask) -> Iterator[list[str]]:
    """Every SQL statement the app sends while the block runs, as text (parameters apart)."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        seen.append(" ".join(statement.split()))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
