"""Issue 11, item 2: a hung SMTP server never freezes the web tier.

The fault as reported: web workers sent mail on their own request threads after
the response, with a 30 s timeout; 8 sign-in attempts against an SMTP server that
accepts and never answers held all 8 threads, and every page, ``/healthz``
included, took 25-30 s. Here gunicorn (one worker, four threads) and the delivery
worker mail such a server; 20 sign-in requests are fired at once, and then every
other page must answer in its normal time. With MAIL_DELIVER_AFTER_RESPONSE on,
the web process also tries to send, on its background thread, which hangs too:
the pages must not notice.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.faults.conftest import Client, outbox, production_env
from tests.faults.servers import HungSmtpServer
from tests.support.waiting import eventually

SIGN_INS = 20
# Normal answers take milliseconds; the fault made them 25-30 s (MAIL_TIMEOUT).
NORMAL = 1.0

pytestmark = pytest.mark.slow


@pytest.fixture
def hung_smtp():
    server = HungSmtpServer().start()
    yield server
    server.stop()


@pytest.mark.parametrize("after_response", ["false", "true"])
def test_a_hung_smtp_server_does_not_slow_any_page(
    head_database, hung_smtp, start_web, start_worker, after_response
):
    env = production_env(
        head_database,
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=hung_smtp.port,
        MAIL_TIMEOUT=30,
        MAIL_DELIVER_AFTER_RESPONSE=after_response,
    )
    web = start_web(env)
    worker = start_worker(env, interval=1)
    client = Client(web)

    def sign_in_attempt(n: int):  # 20 people, each in a browser of their own
        return Client(web).post("/auth/login", {"email": f"person{n}@example.org"})

    with ThreadPoolExecutor(SIGN_INS) as pool:
        answers = list(pool.map(sign_in_attempt, range(SIGN_INS)))
    assert [a.status for a in answers] == [200] * SIGN_INS
    assert all("Check your messages" in a.text for a in answers)
    # Each of those requests, too, answered without waiting on SMTP.
    assert max(a.seconds for a in answers) < NORMAL * 5

    # Mail is being tried against the hung server, and is stuck there.
    eventually(lambda: hung_smtp.connections, 10, "nothing ever tried to send")
    assert len(outbox(head_database)) == SIGN_INS

    for _ in range(5):
        for path in ("/healthz", "/readyz", "/auth/login", "/auth/signup"):
            page = client.get(path)
            assert page.status == 200, (path, page.status)
            assert page.seconds < NORMAL, (path, page.seconds)
        time.sleep(0.2)
    assert worker.alive()
    assert "Traceback" not in web.process.log()
    # The worker finishes the message in hand before it stops (SIGTERM): let it fail now.
    hung_smtp.stop()
