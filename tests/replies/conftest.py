"""Replies by mail: the app with a reply domain, the world's request, and replies to send.

``app`` here gives mail about a request a ``Reply-To`` on INBOUND; the helpers
write replies as mail clients do (quoting, signatures, HTML, attachments) and
hand them to FleetOS the ways an MTA does: ``receive-mail`` as a process, or
the same function in-process, or the gateway over SMTP/LMTP.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from email.message import EmailMessage, Message
from email.utils import make_msgid
from pathlib import Path

import pytest
from flask import Flask

from fleetos import REPO_ROOT
from fleetos.actions import requests as act
from fleetos.extensions import db
from fleetos.inbound.receive import Received, receive_mail
from fleetos.models import Contact
from fleetos.outbox import deliver_due
from tests.mailserver import MailServer
from tests.support.apps import build_app, database, discard_attachments, mail_config
from tests.support.database import libpq_url
from tests.support.web import World

INBOUND = "replies.fleetos.test"
BOB = "bob@bobsrepair.com"
DANA = "dana@acme-fleet.com"


@pytest.fixture
def app(head_database: str, smtp: MailServer) -> Iterator[Flask]:
    """The app on a fresh database, mailing ``smtp``, with replies received at INBOUND."""
    app = build_app(head_database, **mail_config(smtp), INBOUND_MAIL_DOMAIN=INBOUND)
    yield app
    with app.app_context():
        db.engine.dispose()
    discard_attachments(app)


def deliver(app: Flask) -> None:
    with database(app):
        deliver_due()


def mail_bob(app: Flask, world: World, smtp: MailServer, note: str = "Any news?") -> Message:
    """Dana (the fleet) writes a note on the world's request; Bob gets the mail about it."""
    with database(app):
        dana = db.session.get(Contact, world.contacts["dana"])
        act.add_note(dana, world.request_id, note)
    deliver(app)
    (message,) = [m for m in smtp.to(BOB) if note in str(m)]
    return message


def reply_to(message: Message) -> str:
    value = message["Reply-To"]
    assert value and value.startswith("reply+") and value.endswith("@" + INBOUND), value
    return str(value)


GMAIL = """{text}

Thanks,
Bob
--
Bob's Truck Repair | 01234 567890

On Tue, 1 Dec 2026 at 09:14, FleetOS <no-reply@fleetos.example> wrote:
> Dana Dispatch added a note: "Brakes squeal" (Unit 14 / KX21 ABC).
> Any news?
"""

OUTLOOK = """{text}

Kind regards,
Bob

________________________________
From: FleetOS <no-reply@fleetos.example>
Sent: Tuesday, December 1, 2026 9:14 AM
To: bob@bobsrepair.com
Subject: Brakes squeal: a note from Acme Fleet

Dana Dispatch added a note: "Brakes squeal" (Unit 14 / KX21 ABC).
"""

APPLE = """{text}

Sent from my iPhone

> On 1 Dec 2026, at 09:14, FleetOS <no-reply@fleetos.example> wrote:
>
> Dana Dispatch added a note: "Brakes squeal" (Unit 14 / KX21 ABC).
"""


def reply(
    to: str,
    text: str,
    *,
    sender: str = BOB,
    style: str = GMAIL,
    message_id: str | None = None,
    headers: dict[str, str] | None = None,
    html: str | None = None,
    attachments: list[tuple[str, str, bytes]] = (),  # type: ignore[assignment]
) -> bytes:
    """A reply as a mail client sends it: ``text`` above the client's quote and signature."""
    message = EmailMessage()
    message["From"] = f"Bob Builder <{sender}>"
    message["To"] = to
    message["Subject"] = "Re: Brakes squeal: a note from Acme Fleet"
    message["Message-ID"] = message_id or make_msgid(domain="bobsrepair.com")
    message["Date"] = "Tue, 01 Dec 2026 10:00:00 +0000"
    for name, value in (headers or {}).items():
        message[name] = value
    if html is not None:
        message.set_content(html, subtype="html")
    else:
        message.set_content(style.format(text=text))
    for name, content_type, data in attachments:
        maintype, subtype = content_type.split("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return bytes(message)


def receive(app: Flask, raw: bytes, **envelope: object) -> Received:
    """What ``receive-mail`` does, in-process."""
    with database(app):
        return receive_mail(raw, **envelope)  # type: ignore[arg-type]


def receive_mail_process(
    database_url: str, raw: bytes, *args: str, **env: str
) -> subprocess.CompletedProcess[bytes]:
    """``flask fleetos receive-mail`` as an MTA's pipe runs it: the message on stdin."""
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("FLASK_", "FLEETOS_", "DATABASE_URL", "INBOUND_"))
    }
    environ.update(
        DATABASE_URL=libpq_url(database_url),
        SECRET_KEY="test-secret-key",
        INBOUND_MAIL_DOMAIN=INBOUND,
        **env,
    )
    flask = shutil.which("flask", path=str(Path(sys.executable).parent)) or "flask"
    return subprocess.run(
        [flask, "fleetos", "receive-mail", *args],
        cwd=REPO_ROOT,
        env=environ,
        input=raw,
        capture_output=True,
        timeout=120,
    )
