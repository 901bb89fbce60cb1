"""Replies by SMS act on requests through the same actions as the web buttons: a verified
gateway only (403 otherwise, nothing changed), refs per number, STOP and START, never silence."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from fleetos.extensions import db
from fleetos.models import Contact, EventLog, SmsOptOut
from fleetos.sms.backends import sign
from tests.mailserver import text_body
from tests.sms.conftest import REF, deliver, last_text, texts_to
from tests.sms.test_requests_by_sms import JOE, newest_request, send_request
from tests.smsgateway import TWILIO_TOKEN, WEBHOOK_SECRET
from tests.support.apps import database
from tests.support.web import load_request, request_events, row_counts

INBOUND_URL = "http://fleetos.test/sms/inbound"


def reply(app, backend: str, sender: str, body: str, *, gateway_id: str | None = None, **extra):
    """The gateway posts a reply, signed as the configured backend signs (each reply with
    an id of its own, unless ``gateway_id`` says which)."""
    client = app.test_client()
    gateway_id = gateway_id or "SM" + uuid.uuid4().hex
    if backend == "webhook":
        payload = json.dumps({"from": sender, "body": body, "id": gateway_id}).encode()
        return client.post(
            "/sms/inbound",
            data=payload,
            headers={
                "Content-Type": "application/json",
                "X-FleetOS-Signature": sign(payload, WEBHOOK_SECRET),
            },
        )
    form = {"From": sender, "Body": body, "MessageSid": gateway_id, "NumMedia": "0", **extra}
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(INBOUND_URL, form)
    return client.post("/sms/inbound", data=form, headers={"X-Twilio-Signature": signature})


@pytest.fixture
def joes_request(app, world, as_, gateway):
    """Dana sent a request to Joe's mobile, which is no contact yet; Joe got the SMS."""
    send_request(as_("dana"), supplier_address=JOE)
    text = last_text(app, gateway, JOE)
    return newest_request(app).request_id, REF.search(text).group(1)


def test_ok_by_sms_acknowledges_joe_emerges_and_the_fleet_hears(
    app, world, backend, gateway, smtp, joes_request
):
    request_id, ref = joes_request
    answer = reply(app, backend, "07911 123459", "ok")
    assert answer.status_code == 200
    assert load_request(app, request_id).status == "acknowledged"
    with database(app):
        joe = db.session.scalar(select(Contact).where(Contact.contact_value == JOE))
        assert joe.contact_type == "phone"
        assert joe.company_id == load_request(app, request_id).supplier_company_id
    kinds = {e.event_type: e.metadata_ for e in request_events(app, request_id)}
    assert kinds["contact.created"]["via"] == "reply"
    assert kinds["contact.created"]["channel"] == kinds["request.acknowledged"]["channel"] == "sms"
    # Joe hears back; Dana (the other side) is told by mail.
    confirmation = last_text(app, gateway, JOE)
    assert confirmation.startswith("FleetOS: Acknowledged: Puncture, rear left.")
    assert f"Ref {ref}" in confirmation and "Reply START" in confirmation
    mail = smtp.to("dana@acme-fleet.com")[-1]
    assert "acknowledged" in mail["Subject"] and JOE in text_body(mail)
    # And on the timeline, the fleet sees it.
    page = app_test_page(app, world, request_id)
    assert 'acknowledged it. <small class="timeline-channel">(by SMS)</small>' in page


def app_test_page(app, world, request_id):
    from tests.support.web import signed_in

    return signed_in(app, None, world.contacts["dana"]).client.get(f"/requests/{request_id}").text


def test_anything_else_is_a_note_on_the_timeline(app, world, backend, gateway, smtp, joes_request):
    request_id, ref = joes_request
    assert (
        reply(app, backend, JOE, f"Ref {ref} I can come at 3pm, need the wheel lock").status_code
        == 200
    )
    note = [e for e in request_events(app, request_id) if e.event_type == "request.note"]
    assert [n.metadata_["body"] for n in note] == ["I can come at 3pm, need the wheel lock"]
    assert note[0].metadata_["channel"] == "sms"
    assert last_text(app, gateway, JOE).startswith("FleetOS: Note added to Puncture, rear left.")
    assert "I can come at 3pm" in text_body(smtp.to("dana@acme-fleet.com")[-1])


def test_a_refused_step_is_explained_never_silent(app, world, backend, gateway, joes_request):
    request_id, _ = joes_request
    reply(app, backend, JOE, "DONE")  # a new request cannot be completed yet
    assert load_request(app, request_id).status == "new"
    text = last_text(app, gateway, JOE)
    assert text.startswith("FleetOS: Nothing was done: A request that is new cannot be completed")
    reply(app, backend, JOE, "decline")  # no reason
    assert "Say why you decline" in last_text(app, gateway, JOE)
    reply(app, backend, JOE, "DECLINE no tyres that size in stock")
    assert load_request(app, request_id).status == "declined"


def test_a_fleet_contact_cannot_move_the_request_by_sms(app, world, backend, gateway):
    from tests.sms.conftest import add_phone_contact

    dana_mobile = "+447911123456"
    add_phone_contact(app, world.companies["acme"], dana_mobile, "Dana mobile")
    with database(app):  # Dana's mobile was texted about the request (news from the supplier)
        from fleetos.sms.refs import ref_for

        ref = ref_for(dana_mobile, world.request_id)
        db.session.commit()
    reply(app, backend, dana_mobile, f"OK {ref}")
    assert load_request(app, world.request_id).status == "new"
    assert "Only the supplier" in last_text(app, gateway, dana_mobile)


def test_several_open_requests_and_no_ref_get_the_list(app, world, as_, backend, gateway):
    send_request(as_("dana"), supplier_address=JOE, title="Puncture")
    send_request(as_("dana"), supplier_address=JOE, title="Brakes")
    refs = [REF.search(text).group(1) for text in texts_to(app, gateway, JOE)]
    reply(app, backend, JOE, "OK")
    listing = last_text(app, gateway, JOE)
    assert "Which request?" in listing and all(f"Ref {ref}" in listing for ref in refs)
    assert {newest_request(app).status} == {"new"}
    reply(app, backend, JOE, f"ok ref {refs[1]}")
    assert newest_request(app).status == "acknowledged"  # Brakes, the newer one


def test_stop_then_start(app, world, as_, backend, gateway, joes_request):
    request_id, _ = joes_request
    reply(app, backend, JOE, "STOP")
    assert last_text(app, gateway, JOE).startswith("FleetOS: You will get no more SMS")
    with database(app):
        assert db.session.get(SmsOptOut, JOE) is not None
        stopped = db.session.scalar(
            select(EventLog).where(EventLog.event_type == "contact.sms_stopped")
        )
        assert stopped.metadata_ == {"number": JOE, "channel": "sms"}
    before = len(gateway.to(JOE))
    send_request(as_("dana"), supplier_address=JOE, title="Another job")
    deliver(app)
    assert len(gateway.to(JOE)) == before  # withheld: the number said STOP
    reply(app, backend, JOE, "START")  # opted out: START re-subscribes, moves nothing
    assert last_text(app, gateway, JOE).startswith("FleetOS: You will get FleetOS SMS again")
    assert load_request(app, request_id).status == "new"
    send_request(as_("dana"), supplier_address=JOE, title="Third job")
    assert "Third job" in last_text(app, gateway, JOE)


@pytest.mark.parametrize(
    "how",
    [
        "unsigned",
        "bad signature",
        "signed for another body",
        "signed with the other secret",
        "not json",
    ],
)
def test_an_unverified_call_is_403_and_changes_nothing(
    app, world, backend, gateway, joes_request, how
):
    before = row_counts(app)
    client = app.test_client()
    payload = json.dumps({"from": JOE, "body": "OK"}).encode()
    form = {"From": JOE, "Body": "OK"}
    if backend == "webhook":
        signature = {
            "unsigned": "",
            "bad signature": "sha256=" + "0" * 64,
            "signed for another body": sign(
                b'{"from": "+447911123459", "body": "DONE"}', WEBHOOK_SECRET
            ),
            "signed with the other secret": sign(payload, TWILIO_TOKEN),
            "not json": sign(b"OK", WEBHOOK_SECRET),
        }[how]
        data = b"OK" if how == "not json" else payload
        headers = {"Content-Type": "application/json", "X-FleetOS-Signature": signature}
        answer = client.post("/sms/inbound", data=data, headers=headers)
    else:
        validator = RequestValidator(TWILIO_TOKEN)
        signature = {
            "unsigned": "",
            "bad signature": "bm90IGEgc2lnbmF0dXJl",
            "signed for another body": validator.compute_signature(
                INBOUND_URL, {**form, "Body": "DONE"}
            ),
            "signed with the other secret": RequestValidator(WEBHOOK_SECRET).compute_signature(
                INBOUND_URL, form
            ),
            "not json": validator.compute_signature("http://evil.example/sms/inbound", form),
        }[how]
        answer = client.post("/sms/inbound", data=form, headers={"X-Twilio-Signature": signature})
    assert answer.status_code == 403
    assert JOE not in answer.text and "Forbidden" in answer.text
    assert row_counts(app) == before
    with database(app):
        assert (
            db.session.scalar(
                select(func.count()).select_from(Contact).where(Contact.contact_value == JOE)
            )
            == 0
        )
    assert load_request(app, joes_request[0]).status == "new"


def test_a_number_fleetos_never_texted_is_not_answered(app, world, backend, gateway):
    """A stranger's text changes nothing and costs FleetOS no text back (no one can make it
    pay for texts to numbers of their choosing); the gateway is still told it arrived."""
    stranger = "+447911123457"
    before = row_counts(app)
    assert reply(app, backend, stranger, "OK").status_code == 200
    assert texts_to(app, gateway, stranger) == []
    with database(app):
        assert db.session.scalar(select(Contact).where(Contact.contact_value == stranger)) is None
    assert row_counts(app) == before


@pytest.mark.parametrize("backend", ["twilio"], indirect=True)
def test_an_mms_photo_becomes_an_attachment_of_the_note(app, world, backend, gateway, joes_request):
    from fleetos.models import Attachment
    from tests.support.files import phone_jpeg

    request_id, _ = joes_request
    gateway.media["tyre.jpg"] = ("image/jpeg", phone_jpeg())
    answer = reply(
        app,
        backend,
        JOE,
        "Sidewall is cut, see photo",
        NumMedia="2",
        MediaUrl0=f"{gateway.url}/media/tyre.jpg",
        MediaContentType0="image/jpeg",
        MediaUrl1=f"{gateway.url}/media/gone.jpg",  # the provider lost it: the rest still counts
        MediaContentType1="image/jpeg",
    )
    assert answer.status_code == 200
    notes = [e for e in request_events(app, request_id) if e.event_type == "request.note"]
    assert [n.metadata_["body"] for n in notes] == ["Sidewall is cut, see photo"]
    with database(app):
        files = db.session.scalars(
            select(Attachment).where(Attachment.request_id == request_id)
        ).all()
        assert [(f.content_type, f.channel, f.event_id) for f in files] == [
            ("image/jpeg", "sms", notes[0].event_id)
        ]
    assert last_text(app, gateway, JOE).startswith("FleetOS: Note added")


def test_only_verified_replies_spend_a_numbers_budget(make_app, world, gateway):
    from tests.smsgateway import webhook_config

    app = make_app(
        **webhook_config(gateway),
        RATELIMIT_ENABLED=True,
        SMS_INBOUND_LIMIT_PER_NUMBER="2 per minute",
    )
    client = app.test_client()
    for _ in range(3):  # someone without the secret, posting as Joe
        unsigned = client.post("/sms/inbound", json={"from": JOE, "body": "STOP"})
        assert unsigned.status_code == 403
    statuses = [reply(app, "webhook", JOE, "hello").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    # With Joe's budget spent, an unsigned caller still gets the 403 every unsigned call
    # gets: a 429 would tell an outsider that Joe's number texts FleetOS.
    unsigned = client.post("/sms/inbound", json={"from": JOE, "body": "hello"})
    assert unsigned.status_code == 403


@pytest.mark.parametrize(
    "body",
    [b"[1, 2]", b'"text"', b"[" * 100_000 + b"]" * 100_000, b"{" * 50_000],
    ids=["a list", "a string", "nested too deep", "broken"],
)
def test_crafted_json_is_refused_never_a_500(make_app, world, gateway, body):
    """As an attacker sent it: JSON that is no object, unsigned and signed, with the
    per-number limit on (as in production): 403, nothing changed, never a 500."""
    from tests.smsgateway import webhook_config

    app = make_app(**webhook_config(gateway), RATELIMIT_ENABLED=True)
    client = app.test_client()
    before = row_counts(app)
    for signature in ("", sign(body, WEBHOOK_SECRET)):
        answer = client.post(
            "/sms/inbound",
            data=body,
            headers={"Content-Type": "application/json", "X-FleetOS-Signature": signature},
        )
        assert answer.status_code == 403
    assert row_counts(app) == before


# Twilio's form with a NUL is refused with a 400 before any of this, like any form with one.
@pytest.mark.parametrize("backend", ["webhook"])
def test_a_gateway_id_with_a_nul_is_taken_once(app, world, backend, gateway, joes_request):
    request_id, _ = joes_request
    for _ in range(2):
        answer = reply(app, backend, JOE, "On my way", gateway_id="SM\x00nul")
        assert answer.status_code == 200
    notes = [e for e in request_events(app, request_id) if e.event_type == "request.note"]
    assert len(notes) == 1


def test_a_reply_posted_twice_is_acted_on_once(app, world, backend, gateway, joes_request):
    request_id, _ = joes_request
    for _ in range(2):  # the gateway retries after a timeout
        assert reply(app, backend, JOE, "On my way", gateway_id="SM-retried").status_code == 200
    notes = [e for e in request_events(app, request_id) if e.event_type == "request.note"]
    assert [n.metadata_["body"] for n in notes] == ["On my way"]
    assert len([t for t in texts_to(app, gateway, JOE) if "Note added" in t]) == 1
