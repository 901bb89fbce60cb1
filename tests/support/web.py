"""People using FleetOS through the test client: a browser-like client, companies and
contacts to sign in as, and short looks at what the database holds."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from fleetos.extensions import Model, db
from fleetos.models import (
    Company,
    Contact,
    EventLog,
    OutboxMessage,
    ServiceRequest,
    UsedLinkToken,
    WebSession,
)
from fleetos.outbox import deliver_due
from tests.mailserver import MailServer, link_in
from tests.support.apps import database

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')
CSRF_HEADER = re.compile(r'"X-CSRFToken": "[^"]+"')


def without_csrf(page: str) -> str:
    """``page`` with its CSRF tokens blanked, in forms and in htmx's headers: each is signed
    with the second it was made in, so two renderings of one page differ there and nowhere
    else."""
    page = CSRF_INPUT.sub('name="csrf_token" value="CSRF"', page)
    return CSRF_HEADER.sub('"X-CSRFToken": "CSRF"', page)


ROW_ID = re.compile(r'id="row-([0-9a-f-]{36})"')
ACME_DOMAIN = "acme-fleet.com"


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

    def post(
        self, url: str, data: dict[str, Any] | None = None, *, page: str = "/auth/login", **kwargs
    ) -> TestResponse:
        return self.client.post(url, data={"csrf_token": self.csrf(page), **(data or {})}, **kwargs)

    def ask_for_link(self, email: str, **extra: str) -> TestResponse:
        return self.post("/auth/login", {"email": email, **extra})

    def last_link_to(self, address: str) -> str:
        with database(self.app):
            deliver_due()
        messages = self.smtp.to(address)
        assert messages, f"no mail to {address}"
        return urlsplit(link_in(messages[-1])).path

    def use_link(self, path: str) -> TestResponse:
        """Open the link (the confirmation page), then press its button."""
        page = self.client.get(path)
        match = CSRF_INPUT.search(page.text)
        assert match, page.text
        return self.client.post(path, data={"csrf_token": match.group(1)})

    def sign_in(self, email: str) -> TestResponse:
        self.ask_for_link(email)
        return self.use_link(self.last_link_to(email.strip().lower()))


def signed_in(app: Flask, smtp: MailServer, contact_id: uuid.UUID) -> Browser:
    """A client signed in as ``contact_id`` on a session of its own (sign-in itself is tested
    in tests/auth)."""
    browser = Browser(app.test_client(), smtp)
    session_id = open_session(app, contact_id)
    with browser.client.session_transaction() as session:
        session["session_id"] = str(session_id)
        session.permanent = True  # as start_session makes it
    return browser


def open_session(app: Flask, contact_id: uuid.UUID) -> uuid.UUID:
    """A session row for ``contact_id``, as a sign-in opens one; returns its id."""
    with database(app):
        web_session = WebSession(
            contact_id=contact_id,
            expires_at=datetime.now(UTC).replace(tzinfo=None) + timedelta(days=1),
        )
        db.session.add(web_session)
        db.session.commit()
        return web_session.session_id


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


# -- four companies, their people, and one request between them -----------------------------


@dataclass
class World:
    companies: dict[str, uuid.UUID]
    contacts: dict[str, uuid.UUID]
    request_id: uuid.UUID  # Acme Fleet -> Bob's Truck Repair, submitted by dana, status new


PEOPLE = {
    # name: (address, company, minutes since last seen)
    "dana": ("dana@acme-fleet.com", "acme", 5),
    "olu": ("olu@acme-fleet.com", "acme", 600),
    "nora": ("nora@northwind.example", "northwind", 30),
    "bob": ("bob@bobsrepair.com", "bobs", 10),
    "wes": ("workshop@bobsrepair.com", "bobs", 120),
    "quick": ("quicktyres@gmail.com", "quick", 15),
}
COMPANIES = {
    "acme": ("Acme Fleet", "fleet", "acme-fleet.com"),
    "northwind": ("Northwind Haulage", "fleet", None),
    "bobs": ("Bob's Truck Repair", "supplier", "bobsrepair.com"),
    "quick": ("Quick Tyres", "supplier", None),
}


@pytest.fixture
def world(app: Flask) -> World:
    return make_world(app)


def make_world(app: Flask) -> World:
    """The four companies, their people and one request, in ``app``'s database."""
    now = datetime.now(UTC).replace(tzinfo=None)
    with database(app):
        companies = {}
        for key, (name, kind, domain) in COMPANIES.items():
            company = Company(name=name, company_type=kind, email_domain=domain)
            db.session.add(company)
            db.session.flush()
            companies[key] = company.company_id
        contacts = {}
        for key, (address, company_key, minutes) in PEOPLE.items():
            contact = Contact(
                company_id=companies[company_key],
                contact_value=address,
                contact_type="email",
                display_name=key.capitalize(),
                last_seen_at=now - timedelta(minutes=minutes),
            )
            db.session.add(contact)
            db.session.flush()
            contacts[key] = contact.contact_id
        service_request = ServiceRequest(
            vehicle="Unit 14 / KX21 ABC",
            title="Brakes squeal",
            status="new",
            fleet_company_id=companies["acme"],
            supplier_company_id=companies["bobs"],
            submitted_by_contact_id=contacts["dana"],
            supplier_email="bob@bobsrepair.com",
        )
        db.session.add(service_request)
        db.session.commit()
        return World(companies, contacts, service_request.request_id)


@pytest.fixture
def as_(app: Flask, smtp: MailServer, world: World):
    """``as_("bob")``: a client signed in as one of PEOPLE."""
    return lambda name: signed_in(app, smtp, world.contacts[name])


def add_requests(
    app: Flask,
    world: World,
    n: int,
    *,
    status: str = "new",
    supplier: str = "bobs",
    fleet: str = "acme",
    start: datetime | None = None,
    **fields: Any,
) -> list[uuid.UUID]:
    """``n`` requests, one minute apart, newest last; returns their ids."""
    start = start or datetime.now(UTC).replace(tzinfo=None) - timedelta(days=2)
    ids = []
    with database(app):
        for i in range(n):
            service_request = ServiceRequest(
                vehicle=f"Unit {i}",
                title=f"Job {i}",
                status=status,
                fleet_company_id=world.companies[fleet],
                supplier_company_id=world.companies[supplier],
                created_at=start + timedelta(minutes=i),
                updated_at=start + timedelta(minutes=i),
                **fields,
            )
            db.session.add(service_request)
            db.session.flush()
            ids.append(service_request.request_id)
        db.session.commit()
    return ids


def row_ids(html: str) -> list[str]:
    """The ids of the dashboard rows in ``html``, top to bottom."""
    return ROW_ID.findall(html)


def htmx(browser: Browser, url: str) -> TestResponse:
    return browser.client.get(url, headers={"HX-Request": "true"})


# -- what the database holds ------------------------------------------------------------------


def counts(app: Flask) -> dict[str, int]:
    """Rows that using (not just opening) a link may create."""
    return _count(app, Company, Contact, EventLog, UsedLinkToken, OutboxMessage)


def row_counts(app: Flask) -> dict[str, int]:
    """Rows that acting on a request may create."""
    return _count(app, Company, Contact, ServiceRequest, EventLog, OutboxMessage)


def _count(app: Flask, *models: type[Model]) -> dict[str, int]:
    with database(app):
        return {
            model.__tablename__: db.session.scalar(select(func.count()).select_from(model))
            for model in models
        }


def events(app: Flask, event_type: str | None = None) -> list[EventLog]:
    with database(app):
        query = select(EventLog).order_by(EventLog.created_at)
        if event_type:
            query = query.where(EventLog.event_type == event_type)
        found = list(db.session.scalars(query))
        db.session.expunge_all()
        return found


def contact(app: Flask, value: str) -> Contact | None:
    with database(app):
        found = db.session.scalar(select(Contact).where(Contact.contact_value == value))
        db.session.expunge_all()
        return found


def request_events(app: Flask, request_id: uuid.UUID) -> list[EventLog]:
    with database(app):
        found = list(
            db.session.scalars(
                select(EventLog)
                .where(EventLog.target_request_id == request_id)
                .order_by(EventLog.created_at, EventLog.event_id)
            )
        )
        db.session.expunge_all()
        return found


def load_request(app: Flask, request_id: uuid.UUID) -> ServiceRequest:
    with database(app):
        found = db.session.get(ServiceRequest, request_id)
        assert found is not None, f"no request {request_id}"
        db.session.expunge_all()
        return found


def outbox_to(app: Flask, address: str) -> list[OutboxMessage]:
    with database(app):
        found = list(
            db.session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.recipient == address)
                .order_by(OutboxMessage.message_id)
            )
        )
        db.session.expunge_all()
        return found


def set_status(app: Flask, request_id: uuid.UUID, status: str) -> None:
    with database(app):
        found = db.session.get(ServiceRequest, request_id)
        assert found is not None
        found.status = status
        db.session.commit()
