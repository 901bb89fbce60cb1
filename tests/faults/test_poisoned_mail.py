"""Issue 10, item 1 (delivery side): one message that cannot be sent never stops the others.

The attack as reported: an address with a non-ASCII local part (``josé@…``, or a
Cyrillic homoglyph of ``dana@…``, its a being U+0430) made Flask-Mail raise
``UnicodeEncodeError``, a title with a line break made it raise ``BadHeaderError``,
both before any SMTP traffic; ``deliver_one`` survived neither, so the row stayed
pending at the head of the queue and every ``flask fleetos deliver`` died on it
(exit 1), for good.

Whatever reaches the outbox, the transport must be safe: here each poisoned row
is queued first, a good one behind it, against a real SMTP server that offers
SMTPUTF8 or does not.
"""

from __future__ import annotations

from collections.abc import Iterator
from email.header import decode_header, make_header

import pytest
from flask import Flask

from fleetos.extensions import db
from fleetos.outbox import queue_mail
from tests.faults.conftest import deliver, outbox
from tests.faults.servers import SmtpServer
from tests.support.apps import build_app, flask_cli

JOSE = "josé@nowhere.example"
HOMOGLYPH = "d\u0430na@acme-fleet.example"  # dana, with a Cyrillic a (U+0430)
GOOD = "olu@acme-fleet.example"


@pytest.fixture(params=[False, True], ids=["plain-smtp", "smtputf8"])
def server(request) -> Iterator[SmtpServer]:
    server = SmtpServer(smtputf8=request.param)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def apps() -> Iterator[list[Flask]]:
    made: list[Flask] = []
    yield made
    for app in made:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def app_mailing(apps, head_database):
    def make(server: SmtpServer | None = None) -> Flask:
        mail = {"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": server.port} if server else {}
        apps.append(build_app(head_database, MAIL_USE_TLS=False, **mail))
        return apps[-1]

    return make


def queue(app: Flask, recipient: str, subject: str = "Your FleetOS sign-in link") -> None:
    with app.test_request_context():
        queue_mail("unknown_address", recipient, subject, signup_url="http://x/auth/signup")
        db.session.commit()


def header(message, name: str) -> str:
    return str(make_header(decode_header(message[name])))


@pytest.mark.parametrize("recipient", [JOSE, HOMOGLYPH], ids=["accented", "homoglyph"])
def test_a_non_ascii_local_part_goes_out_with_smtputf8_or_fails_clearly(
    head_database, app_mailing, server, recipient
):
    app = app_mailing(server)
    queue(app, recipient)  # at the head of the queue
    queue(app, GOOD)

    report = deliver(app)

    poisoned, good = outbox(head_database)
    assert good["status"] == "sent"
    if server.smtputf8:
        assert (report.sent, report.failed) == (2, 0)
        assert poisoned["status"] == "sent"
        [envelope] = [e for e in server.envelopes if e.rcpt_tos != [GOOD]]
        assert envelope.rcpt_tos == [recipient]
        assert envelope.smtputf8
        assert header(envelope.message, "To") == recipient
    else:
        assert (report.sent, report.failed) == (1, 1)
        # Failed for good at the first try (it can never go out through this server),
        # with a reason an operator understands.
        assert (poisoned["status"], poisoned["attempts"]) == ("failed", 1)
        assert "SMTPUTF8" in poisoned["last_error"]
        assert [e.rcpt_tos for e in server.envelopes] == [[GOOD]]


def test_a_line_break_in_the_subject_fails_for_good_and_injects_nothing(
    head_database, app_mailing, server
):
    app = app_mailing(server)
    queue(app, "dana@acme-fleet.example", "Brakes squeal\r\nBcc: everyone@example.org")
    queue(app, GOOD)

    report = deliver(app)

    assert (report.sent, report.failed, report.retrying) == (1, 1, 0)
    poisoned, good = outbox(head_database)
    assert (poisoned["status"], poisoned["attempts"]) == ("failed", 1)
    assert "cannot be composed" in poisoned["last_error"]
    assert good["status"] == "sent"
    [envelope] = server.envelopes
    assert envelope.rcpt_tos == [GOOD]  # nobody else got anything
    assert envelope.message["Bcc"] is None


@pytest.mark.parametrize(
    "recipient",
    ["not an address", "dana@acme..example", "dana@acme.example, eve@evil.example"],
    ids=["no-at", "bad-domain", "two-addresses"],
)
def test_a_recipient_that_is_not_one_address_fails_for_good(
    head_database, app_mailing, server, recipient
):
    app = app_mailing(server)
    queue(app, recipient)
    queue(app, GOOD)

    assert deliver(app).sent == 1

    poisoned, good = outbox(head_database)
    assert (poisoned["status"], good["status"]) == ("failed", "sent")
    assert poisoned["last_error"]
    assert [e.rcpt_tos for e in server.envelopes] == [[GOOD]]


def test_the_deliver_command_survives_a_poisoned_head_of_the_queue(head_database, app_mailing):
    server = SmtpServer(smtputf8=False)
    server.start()
    app = app_mailing()
    queue(app, "dana@acme-fleet.example", "Line one\nLine two")
    queue(app, JOSE)
    queue(app, GOOD)

    result = flask_cli(
        head_database,
        "fleetos",
        "deliver",
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=str(server.port),
        MAIL_USE_TLS="false",
    )
    server.stop()

    assert result.returncode == 0, result.stderr
    assert "sent 1, retrying later 0, failed 2" in result.stdout
    assert "Traceback" not in result.stderr
    assert [e.rcpt_tos for e in server.envelopes] == [[GOOD]]
