"""Issue 11, item 5: a killed worker may send a message twice, but always with one Message-ID.

Delivery is at least once: a worker killed after the SMTP server took a message
but before it recorded that, sends it again. As reported, each attempt carried a
new Message-ID (1 kill in 5 made a duplicate; 5 in 5 when the server answered
late), so nobody could tell the copies apart. Here the server answers the DATA
3 s late, the worker is SIGKILLed in those 3 s, and another worker takes over.
"""

from __future__ import annotations

import pytest

from fleetos.extensions import db
from fleetos.outbox import queue_mail
from tests.faults.conftest import outbox, production_env
from tests.faults.servers import SmtpServer
from tests.support.apps import app_for
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow


@pytest.fixture
def late_smtp():
    server = SmtpServer(reply_delay=3)
    server.start()
    yield server
    server.stop()


def test_a_message_sent_twice_after_a_kill_keeps_its_message_id(
    head_database, late_smtp, start_worker
):
    env = production_env(head_database, MAIL_SERVER="127.0.0.1", MAIL_PORT=late_smtp.port)
    with app_for(head_database) as app, app.test_request_context():
        queue_mail("unknown_address", "dana@acme.example", "Hello", signup_url="http://x/signup")
        db.session.commit()
    [queued] = outbox(head_database)
    assert queued["email_message_id"].startswith("<") and queued["email_message_id"].endswith(">")

    first = start_worker(env)
    eventually(lambda: late_smtp.envelopes, 10, "the first worker never sent")
    first.kill()  # the server has the message; the worker never hears its 250
    [row] = outbox(head_database)
    assert row["status"] == "pending"  # not recorded as sent: it will go again

    start_worker(env)
    eventually(lambda: outbox(head_database)[0]["status"] == "sent", 15, "never sent again")

    copies = [envelope.message for envelope in late_smtp.envelopes]
    assert len(copies) == 2  # at least once: here, twice
    assert {m["Message-ID"] for m in copies} == {queued["email_message_id"]}
