"""Rate limits (memory and Redis), and logs that never show a token."""

from __future__ import annotations

import logging
import secrets
import threading
import urllib.request

import pytest
from werkzeug.serving import make_server

from fleetos.logs import redact
from tests.support.web import Browser, counts

LIMITS = {
    "RATELIMIT_ENABLED": True,
    "LINK_REQUEST_LIMIT_PER_IP": "6 per minute",
    "LINK_REQUEST_LIMIT_PER_ADDRESS": "3 per 10 minutes",
}


def test_too_many_links_for_one_address_get_a_readable_429(make_app, smtp, acme):
    app = make_app(**LIMITS)
    browser = Browser(app.test_client(), smtp)
    statuses = [browser.ask_for_link("Dana@acme-fleet.com ").status_code for _ in range(3)]
    limited = browser.ask_for_link("dana@ACME-fleet.com")
    assert statuses == [200, 200, 200]
    assert limited.status_code == 429
    assert "Too many requests" in limited.text and "Wait a few minutes" in limited.text
    assert "Retry-After" in limited.headers
    assert counts(app)["outbox_messages"] == 3
    # Another address from the same client is still served.
    assert browser.ask_for_link("olu@acme-fleet.com").status_code == 200


def test_too_many_link_requests_from_one_client_get_429(make_app, smtp, acme):
    app = make_app(**LIMITS)
    browser = Browser(app.test_client(), smtp)
    statuses = [browser.ask_for_link(f"person{i}@acme-fleet.com").status_code for i in range(7)]
    assert statuses == [200] * 6 + [429]
    assert (
        browser.post("/auth/signup", {"email": "x@y.example"}, page="/auth/signup").status_code
        == 429
    )


def test_limits_in_redis_are_shared_by_every_worker(make_app, smtp, acme, redis_uri):
    """Two app instances (two web workers) count against one limit."""
    shared = {
        **LIMITS,
        "RATELIMIT_STORAGE_URI": redis_uri,
        "RATELIMIT_KEY_PREFIX": f"fleetos-test-{secrets.token_hex(4)}",
    }
    workers = [Browser(make_app(**shared).test_client(), smtp) for _ in range(2)]
    statuses = [workers[i % 2].ask_for_link("dana@acme-fleet.com").status_code for i in range(4)]
    assert statuses == [200, 200, 200, 429]


@pytest.mark.parametrize(
    "line",
    [
        '"GET /auth/link/eyJhIjoxfQ.abc.def HTTP/1.1" 200 -',
        '"POST /auth/link/eyJhIjoxfQ.abc.def/fresh HTTP/1.1" 200 -',
        "next=/auth/link/eyJhIjoxfQ.abc.def?x=1",
    ],
)
def test_redaction(line):
    assert "eyJhIjoxfQ" not in redact(line)
    assert "/auth/link/[redacted]" in redact(line)


def test_access_log_of_a_real_server_shows_no_token(make_app, acme, caplog):
    app = make_app()
    server = make_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    token = "eyJzZWNyZXQiOiJ0b2tlbiJ9.secret-part.more-secret"
    with caplog.at_level(logging.INFO, logger="werkzeug"):
        try:
            url = f"http://127.0.0.1:{server.server_port}/auth/link/{token}"
            try:
                urllib.request.urlopen(url, timeout=10)
            except urllib.error.HTTPError as exc:
                assert exc.code == 400
        finally:
            server.shutdown()  # the request is logged once it is handled
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "/auth/link/[redacted]" in logged
    assert "secret-part" not in logged
