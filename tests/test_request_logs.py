"""One JSON log line per request, a request id to quote, and the client's real address."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator

import pytest
from flask import Flask, request

from fleetos.config import ConfigError, load_config
from fleetos.extensions import db
from fleetos.logs import log_to_stderr
from fleetos.models import Company, Contact
from tests.support.apps import build_app
from tests.support.web import signed_in

FIELDS = {"method", "path", "status", "duration_ms", "contact_id", "request_id"}
TOKEN = "eyJzZWNyZXQiOiJ0b2tlbiJ9.secret-part.more-secret"


@pytest.fixture
def make_app(head_database: str) -> Iterator:
    """Apps with two throwaway routes; no app context held, so each request gets its own ``g``."""
    apps: list[Flask] = []

    def make(**overrides: object) -> Flask:
        app = build_app(head_database, **overrides)

        @app.get("/test/whoami")
        def whoami() -> str:
            return request.remote_addr or ""

        @app.get("/test/boom")
        def boom() -> str:
            raise RuntimeError("kaboom: a detail no visitor should see")

        apps.append(app)
        return app

    yield make
    for app in apps:
        with app.app_context():
            db.engine.dispose()


def request_lines(caplog) -> list[dict]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "fleetos.request"]


def test_one_line_per_request_without_query_or_token(make_app, caplog):
    client = make_app().test_client()
    with caplog.at_level(logging.INFO, logger="fleetos.request"):
        response = client.get(f"/auth/link/{TOKEN}?next=/dashboard&email=dana@acme-fleet.com")
    [line] = request_lines(caplog)
    assert set(line) == FIELDS
    assert line["method"] == "GET"
    assert line["path"] == "/auth/link/[redacted]"
    assert line["status"] == response.status_code
    assert line["contact_id"] is None
    assert line["request_id"] == response.headers["X-Request-ID"]
    assert isinstance(line["duration_ms"], float)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "secret-part" not in logged
    assert "dana@" not in logged


def test_the_signed_in_contact_is_logged(make_app, caplog):
    app = make_app()
    with app.app_context():
        company = Company(name="Acme Fleet", company_type="fleet")
        db.session.add(company)
        db.session.flush()
        contact = Contact(
            company_id=company.company_id, contact_value="dana@acme-fleet.com", contact_type="email"
        )
        db.session.add(contact)
        db.session.commit()
        contact_id = str(contact.contact_id)
        db.session.remove()
    client = signed_in(app, None, uuid.UUID(contact_id)).client
    with caplog.at_level(logging.INFO, logger="fleetos.request"):
        client.get("/test/whoami")
        client.get("/test/boom")  # its rollback expires g.contact
    assert [line["contact_id"] for line in request_lines(caplog)] == [contact_id, contact_id]


def test_a_sane_request_id_round_trips(make_app, caplog):
    client = make_app().test_client()
    with caplog.at_level(logging.INFO, logger="fleetos.request"):
        response = client.get("/healthz", headers={"X-Request-ID": "lb-7f3a.2_x"})
    assert response.headers["X-Request-ID"] == "lb-7f3a.2_x"
    assert request_lines(caplog)[0]["request_id"] == "lb-7f3a.2_x"


@pytest.mark.parametrize("incoming", ["", "has space", "<script>", "x" * 65, "a\u00e9b"])
def test_other_request_ids_are_replaced(make_app, incoming):
    client = make_app().test_client()
    request_id = client.get("/healthz", headers={"X-Request-ID": incoming}).headers["X-Request-ID"]
    assert request_id != incoming
    assert len(request_id) == 16
    assert int(request_id, 16) >= 0


def test_each_request_gets_its_own_id(make_app):
    client = make_app().test_client()
    assert (
        client.get("/healthz").headers["X-Request-ID"]
        != client.get("/healthz").headers["X-Request-ID"]
    )


def test_an_unhandled_error_shows_the_request_id_and_no_traceback(make_app, caplog):
    client = make_app().test_client()
    with caplog.at_level(logging.INFO, logger="fleetos"):
        response = client.get("/test/boom")
    request_id = response.headers["X-Request-ID"]
    assert response.status_code == 500
    assert request_id in response.text
    assert "Traceback" not in response.text
    assert "kaboom" not in response.text
    [error] = [r for r in caplog.records if r.name == "fleetos.errors"]
    assert request_id in error.getMessage()
    assert error.exc_info is not None
    assert request_lines(caplog)[0]["status"] == 500
    assert request_lines(caplog)[0]["request_id"] == request_id


@pytest.mark.parametrize(("hops", "seen"), [(1, "203.0.113.7"), (0, "10.0.0.1")])
def test_proxy_fix_trusts_x_forwarded_for_only_when_configured(make_app, hops, seen):
    client = make_app(PROXY_FIX_HOPS=hops).test_client()
    response = client.get(
        "/test/whoami",
        headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"},
        environ_base={"REMOTE_ADDR": "10.0.0.1"},
    )
    assert response.text == seen


def test_proxy_fix_hops_is_read_from_the_environment():
    assert load_config({})["PROXY_FIX_HOPS"] == 0
    assert load_config({"PROXY_FIX_HOPS": "2"})["PROXY_FIX_HOPS"] == 2
    with pytest.raises(ConfigError, match="PROXY_FIX_HOPS"):
        load_config({"PROXY_FIX_HOPS": "-1"})


def test_production_logging_writes_request_lines_as_bare_json():
    logger = logging.Logger("fleetos-under-test")
    log_to_stderr(logger)
    log_to_stderr(logger)  # a second app in the process adds no second handler
    [handler] = logger.handlers
    handler.stream = stream = io.StringIO()
    fields = {"path": "/healthz", "status": 200}
    logger.info(json.dumps(fields), extra={"request_fields": fields})
    logger.warning("mail to /auth/link/%s failed", TOKEN)
    request_line, other_line = stream.getvalue().splitlines()
    assert json.loads(request_line) == fields
    assert other_line.endswith("WARNING [fleetos-under-test] mail to /auth/link/[redacted] failed")
