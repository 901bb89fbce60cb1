"""Issue 11, item 6: a sign-in link that expired while SMTP was down is not sent late.

As reported: after an SMTP outage of 7.5-15 minutes (with the default 15-minute
links), retries delivered sign-in links that had already expired. Here links last
2 s: the link is asked for while SMTP is down, the outage outlasts the link, and
when SMTP is back the message is marked ``expired`` instead of sent. The person's
next try gets a fresh link that works.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from flask import Flask

from fleetos.extensions import db
from tests.faults.conftest import CSRF_INPUT, deliver, outbox, seed_contact, sql
from tests.mailserver import link_in
from tests.support.apps import build_app

DANA = "dana@acme-fleet.example"
LINK_SECONDS = 2


@pytest.fixture
def app(head_database, smtp) -> Iterator[Flask]:
    app = build_app(
        head_database,
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=smtp.port,
        MAIL_USE_TLS=False,
        MAGIC_LINK_MAX_AGE=LINK_SECONDS,
        RATELIMIT_ENABLED=False,
    )
    yield app
    with app.app_context():
        db.engine.dispose()


def ask_for_a_link(client) -> None:
    token = CSRF_INPUT.search(client.get("/auth/login").text).group(1)
    response = client.post("/auth/login", data={"csrf_token": token, "email": DANA})
    assert response.status_code == 200


def test_a_link_that_expired_during_an_outage_is_not_sent_and_the_next_try_works(
    app, head_database, smtp
):
    seed_contact(head_database, DANA)
    client = app.test_client()
    smtp.stop()
    ask_for_a_link(client)
    assert deliver(app).retrying == 1  # SMTP is down

    time.sleep(LINK_SECONDS + 0.5)  # the outage outlasts the link
    smtp.start()
    sql(head_database, "UPDATE outbox_messages SET next_attempt_at = now()")  # the retry is due
    report = deliver(app)

    assert (report.sent, report.expired) == (0, 1)
    assert smtp.messages == []
    [expired] = sql(head_database, "SELECT status, text_body, html_body FROM outbox_messages")
    assert expired == ("expired", None, None)  # the dead link is not kept either

    ask_for_a_link(client)  # the person tries again
    assert deliver(app).sent == 1
    [message] = smtp.to(DANA)
    path = re.sub(r"^https?://[^/]+", "", link_in(message))
    page = client.get(path)
    assert page.status_code == 200 and "Continue" in page.text
    token = CSRF_INPUT.search(page.text).group(1)
    assert client.post(path, data={"csrf_token": token}).status_code == 303
    assert [row["status"] for row in outbox(head_database)] == ["expired", "sent"]


def test_an_invitation_has_no_deadline(app, head_database, smtp):
    """Only answers to a person's own request for a link expire with it. An invitation
    (or a request's news) is still worth sending late: its expired link offers a fresh one."""
    from fleetos.outbox import queue_mail

    with app.test_request_context():
        queue_mail(
            "invite",
            DANA,
            "Invitation",
            link="http://fleetos.test/auth/link/x",
            inviter=None,
            company={"name": "Acme Fleet"},
            days=7,
        )
        db.session.commit()
    assert sql(head_database, "SELECT expires_at FROM outbox_messages") == [(None,)]
    time.sleep(LINK_SECONDS + 0.5)
    assert deliver(app).sent == 1
