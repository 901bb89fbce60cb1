"""SMS tests: the app texting a real HTTP gateway on loopback, a phone contact to text."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from flask import Flask

from fleetos.extensions import db
from fleetos.models import Contact
from fleetos.outbox import deliver_due
from fleetos.sms.gsm import fits_one_segment
from tests.mailserver import MailServer
from tests.smsgateway import SmsGateway, twilio_config, webhook_config
from tests.support.apps import build_app, database, discard_attachments, mail_config

CODE = re.compile(r"\b(\d{6})\b")
SHORT_LINK = re.compile(r"http://fleetos\.test/s/([A-Za-z0-9_-]+)")
REF = re.compile(r"Ref (\d+)")

BOB_MOBILE = "+447911123456"  # Bob's Truck Repair's mobile mechanic


@pytest.fixture
def gateway() -> Iterator[SmsGateway]:
    server = SmsGateway()
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["webhook", "twilio"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def app(head_database: str, smtp: MailServer, gateway: SmsGateway, backend: str) -> Iterator[Flask]:
    """The app at head, mailing ``smtp`` and texting ``gateway`` through ``backend``."""
    sms = webhook_config(gateway) if backend == "webhook" else twilio_config(gateway)
    app = build_app(head_database, **mail_config(smtp), **sms)
    yield app
    with app.app_context():
        db.engine.dispose()
    discard_attachments(app)


def add_phone_contact(app: Flask, company_id: uuid.UUID, number: str, name: str) -> uuid.UUID:
    with database(app):
        contact = Contact(
            company_id=company_id, contact_value=number, contact_type="phone", display_name=name
        )
        db.session.add(contact)
        db.session.commit()
        return contact.contact_id


def deliver(app: Flask) -> None:
    with database(app):
        deliver_due()


def texts_to(app: Flask, gateway: SmsGateway, number: str) -> list[str]:
    """Deliver what is due, and return the bodies of every SMS ``number`` received."""
    deliver(app)
    bodies = [message.body for message in gateway.to(number)]
    for body in bodies:
        assert fits_one_segment(body), (len(body), body)
    return bodies


def last_text(app: Flask, gateway: SmsGateway, number: str) -> str:
    bodies = texts_to(app, gateway, number)
    assert bodies, f"no SMS to {number}"
    return bodies[-1]
