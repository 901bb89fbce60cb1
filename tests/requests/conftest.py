"""Four companies and their contacts, and clients signed in as any of them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import func, select

from fleetos.extensions import db
from fleetos.models import Company, Contact, EventLog, OutboxMessage, ServiceRequest
from tests.auth.conftest import Browser, app, database, make_app  # noqa: F401 (fixtures)
from tests.mailserver import MailServer


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
    now = datetime.now(UTC).replace(tzinfo=None)
    with database(app):
        companies = {}
        for key, (name, kind, domain) in COMPANIES.items():
            company = Company(name=name, company_type=kind, email_domain=domain)
            db.session.add(company)
            db.session.flush()
            companies[key] = company.company_id
        contacts = {}
        for key, (address, company, minutes) in PEOPLE.items():
            contact = Contact(
                company_id=companies[company],
                contact_value=address,
                contact_type="email",
                display_name=key.capitalize(),
                last_seen_at=now - timedelta(minutes=minutes),
            )
            db.session.add(contact)
            db.session.flush()
            contacts[key] = contact.contact_id
        request = ServiceRequest(
            vehicle="Unit 14 / KX21 ABC",
            title="Brakes squeal",
            status="new",
            fleet_company_id=companies["acme"],
            supplier_company_id=companies["bobs"],
            submitted_by_contact_id=contacts["dana"],
            supplier_email="bob@bobsrepair.com",
        )
        db.session.add(request)
        db.session.commit()
        return World(companies, contacts, request.request_id)


def signed_in(app: Flask, smtp: MailServer, contact_id: uuid.UUID) -> Browser:
    """A client whose session is that of ``contact_id`` (sign-in itself is tested in tests/auth)."""
    browser = Browser(app.test_client(), smtp)
    with browser.client.session_transaction() as session:
        session["contact_id"] = str(contact_id)
    return browser


@pytest.fixture
def as_(app, smtp, world):
    """``as_("bob")``: a client signed in as one of PEOPLE."""
    return lambda name: signed_in(app, smtp, world.contacts[name])


def row_counts(app: Flask) -> dict[str, int]:
    with database(app):
        return {
            model.__tablename__: db.session.scalar(select(func.count()).select_from(model))
            for model in (Company, Contact, ServiceRequest, EventLog, OutboxMessage)
        }


def request_events(app: Flask, request_id: uuid.UUID) -> list[EventLog]:
    with database(app):
        events = list(
            db.session.scalars(
                select(EventLog)
                .where(EventLog.target_request_id == request_id)
                .order_by(EventLog.created_at, EventLog.event_id)
            )
        )
        db.session.expunge_all()
        return events


def load_request(app: Flask, request_id: uuid.UUID) -> ServiceRequest:
    with database(app):
        found = db.session.get(ServiceRequest, request_id)
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
        db.session.get(ServiceRequest, request_id).status = status
        db.session.commit()
