"""Issue 15: ``flask fleetos mail-gateway``, a real SMTP and LMTP server (aiosmtpd) on loopback.

Replies are sent to it with smtplib, as an MTA relaying to it would: an unknown
or tampered reply address is refused at RCPT TO (550) with nothing written, a
message over the size limit is refused (552), the database away is a 451 (the
sender retries), and an accepted message does what ``receive-mail`` does, once,
whichever way it arrives.
"""

from __future__ import annotations

import os
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from fleetos import REPO_ROOT
from fleetos.extensions import db
from fleetos.inbound.gateway import gateway
from tests.faults.conftest import database_proxy  # noqa: F401  (a fixture)
from tests.mailserver import free_port
from tests.replies.conftest import (
    BOB,
    INBOUND,
    mail_bob,
    receive,
    receive_mail_process,
    reply,
    reply_to,
)
from tests.replies.test_mail_replies import notes, reply_rows, tampered
from tests.support.apps import build_app
from tests.support.database import libpq_url
from tests.support.web import load_request, row_counts


class Gateway:
    def __init__(self, app: Flask, *, lmtp: bool = False) -> None:
        self.port = free_port()
        self.server = gateway(app, "127.0.0.1", self.port, lmtp=lmtp)

    def __enter__(self) -> Gateway:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    def client(self) -> smtplib.SMTP:
        return smtplib.SMTP("127.0.0.1", self.port, timeout=30)


@pytest.fixture
def smtp_gateway(app: Flask) -> Iterator[Gateway]:
    with Gateway(app) as running:
        yield running


def send(gateway: Gateway, to: str, raw: bytes, sender: str = BOB) -> dict:
    with gateway.client() as client:
        return client.sendmail(sender, [to], raw)


def test_a_reply_over_smtp_acts_on_its_request(app, world, smtp, smtp_gateway):
    address = reply_to(mail_bob(app, world, smtp))
    assert send(smtp_gateway, address, reply(address, "ack")) == {}
    assert load_request(app, world.request_id).status == "acknowledged"


def test_an_unknown_or_tampered_address_is_refused_at_rcpt_to(app, world, smtp, smtp_gateway):
    address = reply_to(mail_bob(app, world, smtp))
    before = row_counts(app) | reply_rows(app)
    for wrong in (tampered(address), f"reply+{'b' * 32}@{INBOUND}", f"sales@{INBOUND}"):
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            send(smtp_gateway, wrong, reply(wrong, "ack"))
        ((code, _),) = refused.value.recipients.values()
        assert code == 550
    assert row_counts(app) | reply_rows(app) == before


def test_the_same_message_by_gateway_and_by_receive_mail_is_one_note(
    app, world, smtp, smtp_gateway, head_database
):
    address = reply_to(mail_bob(app, world, smtp))
    raw = reply(address, "Brake pads fitted.")
    send(smtp_gateway, address, raw)
    send(smtp_gateway, address, raw)
    assert receive_mail_process(head_database, raw).returncode == 0
    bodies = [n.metadata_["body"] for n in notes(app, world.request_id)]
    assert bodies.count("Brake pads fitted.") == 1


def test_a_message_over_the_size_limit_is_refused(make_app, world, smtp):
    app = make_app(INBOUND_MAIL_DOMAIN=INBOUND, INBOUND_MAIL_MAX_BYTES=20_000)
    address = reply_to(mail_bob(app, world, smtp))
    big = reply(address, "x" * 60 + "\n" + ("y" * 70 + "\n") * 400)
    with Gateway(app) as running, running.client() as client:
        client.ehlo()
        assert client.has_extn("size") and int(client.esmtp_features["size"]) == 20_000
        with pytest.raises((smtplib.SMTPSenderRefused, smtplib.SMTPDataError)) as refused:
            client.sendmail(BOB, [address], big)
        assert refused.value.smtp_code == 552
    assert len(notes(app, world.request_id)) == 1  # Dana's only


def test_lmtp_answers_for_each_recipient(app, world, smtp):
    address = reply_to(mail_bob(app, world, smtp))
    with Gateway(app, lmtp=True) as running:
        client = smtplib.LMTP("127.0.0.1", running.port)
        try:
            assert client.sendmail(BOB, [address], reply(address, "start")) == {}
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                client.sendmail(BOB, [tampered(address)], reply(address, "done"))
        finally:
            client.quit()
    # "start" on a new request is refused (acknowledge first), and answered.
    assert load_request(app, world.request_id).status == "new"
    assert receive(app, reply(address, "ack")).detail == "acknowledged"


def test_the_database_away_is_a_451_and_the_message_is_taken_after(
    head_database,
    smtp,
    world,
    app,
    database_proxy,  # noqa: F811
):
    address = reply_to(mail_bob(app, world, smtp))
    raw = reply(address, "Parts ordered.")
    behind_proxy = build_app(
        database_proxy.url_for(head_database),
        INBOUND_MAIL_DOMAIN=INBOUND,
        DATABASE_CONNECT_TIMEOUT=2,
    )
    with Gateway(behind_proxy) as running:
        database_proxy.cut()
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            send(running, address, raw)
        ((code, _),) = refused.value.recipients.values()
        assert code == 451
        database_proxy.restore()
        # The sender tries again later, as it does after a 451; FleetOS waits a moment
        # (its breaker's pause, 5 s at most) before it asks the database again.
        deadline = time.monotonic() + 20
        while True:
            try:
                assert send(running, address, raw) == {}
                break
            except smtplib.SMTPRecipientsRefused as later:
                ((code, _),) = later.recipients.values()
                assert code == 451 and time.monotonic() < deadline
                time.sleep(0.5)
    with behind_proxy.app_context():
        db.engine.dispose()
    assert notes(app, world.request_id)[-1].metadata_["body"] == "Parts ordered."


def test_the_mail_gateway_command_serves_until_sigterm(app, world, smtp, head_database):
    address = reply_to(mail_bob(app, world, smtp))
    port = free_port()
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("FLASK_", "FLEETOS_", "DATABASE_URL", "INBOUND_"))
    }
    environ.update(
        DATABASE_URL=libpq_url(head_database),
        SECRET_KEY="test-secret-key",
        INBOUND_MAIL_DOMAIN=INBOUND,
    )
    flask = shutil.which("flask", path=str(Path(sys.executable).parent)) or "flask"
    process = subprocess.Popen(
        [flask, "fleetos", "mail-gateway", "--bind", f"127.0.0.1:{port}"],
        cwd=REPO_ROOT,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, process.stdout.read()
                assert time.monotonic() < deadline, "the gateway did not start"
                time.sleep(0.1)
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            assert client.sendmail(BOB, [address], reply(address, "Parts ordered.")) == {}
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
    assert notes(app, world.request_id)[-1].metadata_["body"] == "Parts ordered."
