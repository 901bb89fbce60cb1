"""Requests reach mobile numbers: the supplier emerges from the number, is texted one segment
with a short link, a reply hint and a ref, and signs in by code the first time."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from fleetos.extensions import db
from fleetos.models import Company, Contact, OutboxMessage, ServiceRequest
from fleetos.sms.compose import render_sms
from fleetos.sms.gsm import SEGMENT, fits_one_segment, septets
from tests.sms.conftest import CODE, REF, SHORT_LINK, deliver, last_text, texts_to
from tests.support.apps import database
from tests.support.web import Browser

JOE = "+447911123459"
REFUSED_NUMBER = "+15005550001"  # the gateway refuses it for good (Twilio's "invalid number")
GOOD = {"vehicle": "Unit 7 / AB12 CDE", "title": "Puncture, rear left", "priority": "high"}


def send_request(browser: Browser, **fields):
    return browser.post("/requests", {**GOOD, **fields}, page="/requests/new")


def newest_request(app) -> ServiceRequest:
    with database(app):
        found = db.session.scalars(
            select(ServiceRequest).order_by(ServiceRequest.created_at.desc())
        ).first()
        db.session.expunge_all()
        return found


def test_a_request_to_a_new_mobile_number_and_the_suppliers_first_sign_in_by_code(
    app, world, as_, gateway, smtp
):
    dana = as_("dana")
    answer = send_request(dana, supplier_address="07911 123459")
    assert answer.status_code == 303
    created = newest_request(app)
    assert created.supplier_email == JOE
    with database(app):
        supplier = db.session.get(Company, created.supplier_company_id)
        assert (supplier.emerged_from_address, supplier.company_type) == (JOE, "supplier")

    text = last_text(app, gateway, JOE)
    assert text.startswith("New request from Acme Fleet")
    assert "Puncture, rear left" in text and SHORT_LINK.search(text)
    assert "Reply OK to acknowledge" in text and REF.search(text)

    # Joe signs in by code (no link clicked): he emerges, a phone contact, in that supplier.
    joe = Browser(app.test_client(), smtp)
    joe.post("/auth/login", {"address": "07911 123459"})
    sign_in = last_text(app, gateway, JOE)
    code = CODE.search(sign_in).group(1)
    answer = joe.post("/auth/code", {"address": JOE, "code": code}, page="/auth/code")
    assert answer.status_code == 303
    with database(app):
        contact = db.session.scalar(select(Contact).where(Contact.contact_value == JOE))
        assert contact.contact_type == "phone"
        assert contact.company_id == created.supplier_company_id
    assert "Puncture, rear left" in joe.client.get(f"/requests/{created.request_id}").text


def test_one_number_one_supplier(app, world, as_, gateway):
    send_request(as_("dana"), supplier_address="07911 123459")
    send_request(as_("nora"), supplier_address="+44 7911 123459", title="Tyres")
    with database(app):
        suppliers = db.session.scalars(
            select(ServiceRequest.supplier_company_id).where(ServiceRequest.supplier_email == JOE)
        ).all()
    assert len(suppliers) == 2 and len(set(suppliers)) == 1


def test_the_old_supplier_field_name_still_sends(app, world, as_, gateway):
    assert send_request(as_("dana"), supplier_email="07911 123459").status_code == 303
    assert newest_request(app).supplier_email == JOE


def test_news_reaches_a_phone_contact_with_its_ref(app, world, as_, gateway):
    send_request(as_("dana"), supplier_address=JOE)
    first = last_text(app, gateway, JOE)
    created = newest_request(app)
    dana = as_("dana")
    dana.post(
        f"/requests/{created.request_id}/notes",
        {"body": "Gate code is 4411 \u2014 ask for Sam at the depot\u2019s front desk"},
        page=f"/requests/{created.request_id}",
    )
    note = last_text(app, gateway, JOE)
    assert note.startswith('Dana added a note: Puncture, rear left. "Gate code is 4411')
    assert REF.search(note).group(1) == REF.search(first).group(1)  # one ref per request


@pytest.mark.parametrize("kind", ["request_new", "request_update"])
def test_every_sms_fits_one_segment_whatever_was_typed(app, world, kind):
    long_text = "Ünïcødé 🚚 “quotes” and {braces} [brackets] € " * 20
    with app.test_request_context():
        db.session.execute(
            update(ServiceRequest)
            .where(ServiceRequest.request_id == world.request_id)
            .values(title=long_text, vehicle=long_text)
        )
        service_request = db.session.get(ServiceRequest, world.request_id)
        fleet = service_request.fleet_company
        actor = service_request.submitted_by
        from fleetos.messaging.links import Purpose, link_url, make_token

        link = link_url(make_token(Purpose.NOTIFICATION, JOE))
        body = render_sms(
            kind,
            JOE,
            {
                "service_request": service_request,
                "link": link,
                "fleet": fleet,
                "submitter": actor,
                "actor": actor,
                "headline": f"{long_text} added a note",
                "reason": long_text,
                "attached": "2 photos attached",
            },
        )
        db.session.rollback()
    assert fits_one_segment(body) and septets(body) <= SEGMENT
    assert SHORT_LINK.search(body) and REF.search(body)


def test_the_gateway_down_for_a_while_then_every_sms_arrives_once(app, world, as_, gateway):
    gateway.stop()
    for n in range(3):
        send_request(as_("dana"), supplier_address=f"+4479111234{50 + n}", title=f"Job {n}")
    numbers = [f"+4479111234{50 + n}" for n in range(3)]
    # A poisoned message (a number the gateway refuses for good) among them.
    send_request(as_("dana"), supplier_address=REFUSED_NUMBER, title="Refused")
    deliver(app)  # the gateway is down: nothing goes, nothing is lost
    gateway.start()
    gateway.failing = 503  # up, but failing
    _retry_now(app)
    deliver(app)
    assert gateway.received == []
    gateway.failing = None
    _retry_now(app)
    for number in numbers:
        assert len(texts_to(app, gateway, number)) == 1
    _retry_now(app)
    deliver(app)  # nothing is sent twice
    assert sorted(message.to for message in gateway.received) == sorted(numbers)
    with database(app):
        rows = db.session.execute(
            select(OutboxMessage.recipient, OutboxMessage.status, OutboxMessage.attempts)
        ).all()
    assert {recipient: status for recipient, status, _ in rows if recipient in numbers} == {
        number: "sent" for number in numbers
    }
    assert all(attempts >= 2 for recipient, _, attempts in rows if recipient in numbers)
    # The refused one failed for good at its first real answer, and held nothing up.
    assert [
        (status, attempts) for recipient, status, attempts in rows if recipient == REFUSED_NUMBER
    ] == [("failed", 3)]


def _retry_now(app) -> None:
    """Time passes: every message waiting for its next attempt is due."""
    with database(app):
        db.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.status == "pending")
            .values(next_attempt_at=OutboxMessage.created_at)
        )
        db.session.commit()


def test_the_daily_link_reaches_a_phone_contact_as_one_sms(app, world, gateway):
    from fleetos.actions.digest import send_daily_links
    from tests.sms.conftest import add_phone_contact

    add_phone_contact(app, world.companies["bobs"], JOE, "Joe")
    with app.test_request_context():
        assert send_daily_links() >= 1
    text = last_text(app, gateway, JOE)
    assert text.startswith("FleetOS today: 1 open requests for Bob's Truck Repair.")
    assert SHORT_LINK.search(text)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"SMS_BACKEND": "carrier-pigeon"}, "SMS_BACKEND must be console, webhook or twilio"),
        ({"SMS_BACKEND": "webhook"}, "needs SMS_WEBHOOK_URL and SMS_WEBHOOK_SECRET"),
        ({"SMS_BACKEND": "twilio", "TWILIO_FROM": "+15005550006"}, "needs TWILIO_ACCOUNT_SID"),
    ],
)
def test_an_sms_backend_without_its_settings_refuses_to_start(environ, message):
    from fleetos.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=message):
        load_config(environ)


def test_news_reaches_the_assignee_on_their_phone(app, world, as_, gateway):
    """Routing picks the assignee, whatever kind of contact it is: a mechanic known by a
    mobile number gets Dana's note by SMS."""
    from fleetos.actions import requests as act
    from tests.sms.conftest import BOB_MOBILE, add_phone_contact

    mechanic = add_phone_contact(app, world.companies["bobs"], BOB_MOBILE, "Mo the mechanic")
    with database(app):
        bob = db.session.get(Contact, world.contacts["bob"])
        act.assign(bob, world.request_id, mechanic)
    deliver(app)
    before = len(texts_to(app, gateway, BOB_MOBILE))
    as_("dana").post(
        f"/requests/{world.request_id}/notes",
        {"body": "Keys are at reception"},
        page=f"/requests/{world.request_id}",
    )
    texts = texts_to(app, gateway, BOB_MOBILE)
    assert len(texts) == before + 1
    assert "Keys are at reception" in texts[-1]
