"""Fixtures for sign-in: an SMTP server, an app that mails to it, and a browser-like client."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from fleetos.extensions import db
from fleetos.models import Company, Contact, EventLog, OutboxMessage, UsedLinkToken
from fleetos.outbox import deliver_due
from tests.conftest import build_app
from tests.mailserver import MailServer, link_in

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')
ACME_DOMAIN = "acme-fleet.com"


def mail_config(smtp: MailServer) -> dict[str, object]:
    return {
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": smtp.port,
        "MAIL_USE_TLS": False,
        "MAIL_TIMEOUT": 5,
        # Tests deliver explicitly, so they can look at the outbox in between.
        "MAIL_DELIVER_AFTER_RESPONSE": False,
        "RATELIMIT_ENABLED": False,
    }


@pytest.fixture
def app(head_database: str, smtp: MailServer) -> Iterator[Flask]:
    """The app, with no app context held: each request must get its own ``g``, as in production."""
    app = build_app(head_database, **mail_config(smtp))
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def make_app(head_database: str, smtp: MailServer) -> Iterator:
    """Build more apps on the test's database (another key, another worker); all disposed after."""
    apps: list[Flask] = []

    def make(**overrides: object) -> Flask:
        apps.append(build_app(head_database, **{**mail_config(smtp), **overrides}))
        return apps[-1]

    yield make
    for app in apps:
        with app.app_context():
            db.engine.dispose()


@contextmanager
def database(app: Flask) -> Iterator[None]:
    """Look at the database from a test, in an app context of its own."""
    with app.app_context():
        try:
            yield
        finally:
            db.session.remove()


class Browser:
    """A test client used the way a person uses the site: pages first, then their forms."""

    def __init__(self, client: FlaskClient, smtp: MailServer) -> None:
        self.client = client
        self.app = client.application
        self.smtp = smtp

    def csrf(self, page: str = "/auth/login") -> str:
        match = CSRF_INPUT.search(self.client.get(page).text)
        assert match, f"no csrf_token on {page}"
        return match.group(1)

    def post(self, url: str, data: dict | None = None, *, page: str = "/auth/login", **kwargs):
        return self.client.post(url, data={"csrf_token": self.csrf(page), **(data or {})}, **kwargs)

    def ask_for_link(self, email: str, **extra: str):
        return self.post("/auth/login", {"email": email, **extra})

    def last_link_to(self, address: str) -> str:
        with database(self.app):
            deliver_due()
        messages = self.smtp.to(address)
        assert messages, f"no mail to {address}"
        return urlsplit(link_in(messages[-1])).path

    def use_link(self, path: str):
        """Open the link (the confirmation page), then press its button."""
        page = self.client.get(path)
        match = CSRF_INPUT.search(page.text)
        assert match, page.text
        return self.client.post(path, data={"csrf_token": match.group(1)})

    def sign_in(self, email: str):
        self.ask_for_link(email)
        return self.use_link(self.last_link_to(email.strip().lower()))


@pytest.fixture
def browser(app: Flask, smtp: MailServer) -> Browser:
    return Browser(app.test_client(), smtp)


@pytest.fixture
def acme(app: Flask) -> Company:
    """A fleet company with a registered domain and one contact, dana@acme-fleet.com."""
    with database(app):
        company = Company(name="Acme Fleet", company_type="fleet", email_domain=ACME_DOMAIN)
        db.session.add(company)
        db.session.flush()
        db.session.add(
            Contact(
                company_id=company.company_id,
                contact_value="dana@acme-fleet.com",
                contact_type="email",
                display_name="Dana Dispatch",
            )
        )
        db.session.commit()
        db.session.refresh(company)
        db.session.expunge_all()
    return company


def counts(app: Flask) -> dict[str, int]:
    """Rows that using (not just opening) a link may create."""
    with database(app):
        return {
            model.__tablename__: db.session.scalar(select(func.count()).select_from(model))
            for model in (Company, Contact, EventLog, UsedLinkToken, OutboxMessage)
        }


def events(app: Flask, event_type: str | None = None) -> list[EventLog]:
    with database(app):
        query = select(EventLog).order_by(EventLog.created_at)
        if event_type:
            query = query.where(EventLog.event_type == event_type)
        events = list(db.session.scalars(query))
        db.session.expunge_all()
        return events


def contact(app: Flask, value: str) -> Contact | None:
    with database(app):
        found = db.session.scalar(select(Contact).where(Contact.contact_value == value))
        db.session.expunge_all()
        return found
