"""Issue 15, by mail: a reply to FleetOS's mail is a note or a step on its request.

Mail goes out through a real SMTP server on loopback (aiosmtpd) with its
``Reply-To``; the reply comes back as the bytes a mail client would send, to
``flask fleetos receive-mail`` (a process, as an MTA's pipe runs it) or to the
same function in-process.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from fleetos.extensions import db
from fleetos.models import EventLog, HeldReply, InboundMessage, ServiceRequest
from tests.mailserver import text_body
from tests.replies.conftest import (
    APPLE,
    BOB,
    DANA,
    GMAIL,
    INBOUND,
    OUTLOOK,
    deliver,
    mail_bob,
    receive,
    receive_mail_process,
    reply,
    reply_to,
)
from tests.support.apps import database
from tests.support.web import (
    events,
    load_request,
    outbox_to,
    request_events,
    row_counts,
    signed_in,
)


def notes(app, request_id):
    return [e for e in request_events(app, request_id) if e.event_type == "request.note"]


def reply_rows(app) -> dict[str, int]:
    with database(app):
        return {
            model.__tablename__: db.session.scalar(select(func.count()).select_from(model))
            for model in (InboundMessage, HeldReply)
        }


# -- the Reply-To ----------------------------------------------------------------------------


def test_mail_about_a_request_says_where_replies_go(app, world, smtp):
    message = mail_bob(app, world, smtp)
    address = reply_to(message)
    assert len(address.split("@")[0]) <= 64  # a mail address's local part
    # The same address on the next mail to Bob about this request.
    again = mail_bob(app, world, smtp, note="And the tyres?")
    assert reply_to(again) == address
    assert "Reply to this mail to add a note" in text_body(message)


def test_a_new_request_mailed_to_an_address_says_where_replies_go(app, world, smtp):
    from fleetos.actions import requests as act
    from fleetos.models import Contact

    with database(app):
        dana = db.session.get(Contact, world.contacts["dana"])
        act.create_request(
            dana,
            act.NewRequest(
                vehicle="Van 3", title="Oil leak", supplier_address="new@garage.example"
            ),
        )
    deliver(app)
    (message,) = smtp.to("new@garage.example")
    assert reply_to(message)


def test_no_reply_to_without_an_inbound_domain(make_app, world, smtp):
    app = make_app(INBOUND_MAIL_DOMAIN="")
    mail = mail_bob(app, world, smtp)
    assert mail["Reply-To"] is None
    assert "Reply to this mail" not in text_body(mail)


# -- a note ----------------------------------------------------------------------------------


@pytest.mark.parametrize("style", [GMAIL, OUTLOOK, APPLE], ids=["gmail", "outlook", "apple"])
def test_a_reply_is_a_note_without_its_quote_or_signature(app, world, smtp, style):
    address = reply_to(mail_bob(app, world, smtp))
    handled = receive(app, reply(address, "Pads are in stock.\nWe fit them Thursday.", style=style))
    assert handled.status == 0 and handled.detail == "noted"
    (note,) = notes(app, world.request_id)[1:]  # Dana's own note came first
    assert note.metadata_["body"] == "Pads are in stock.\nWe fit them Thursday."
    assert note.metadata_["channel"] == "mail"
    assert note.contact_id == world.contacts["bob"]
    # Dana hears of it; Bob is told it was added.
    assert "Pads are in stock." in outbox_to(app, DANA)[-1].text_body
    assert "Your note was added." in outbox_to(app, BOB)[-1].text_body


def test_receive_mail_takes_a_reply_on_stdin(app, world, smtp, head_database):
    address = reply_to(mail_bob(app, world, smtp))
    done = receive_mail_process(head_database, reply(address, "On my way."))
    assert done.returncode == 0, done.stderr
    assert notes(app, world.request_id)[-1].metadata_["body"] == "On my way."


def test_an_html_only_reply_is_read_as_text(app, world, smtp):
    address = reply_to(mail_bob(app, world, smtp))
    html = (
        "<html><body><div>Quote attached <b>tomorrow</b>.</div>"
        '<div class="gmail_quote"><div>On Tue, 1 Dec 2026 at 09:14, FleetOS'
        " &lt;no-reply@fleetos.example&gt; wrote:</div>"
        "<blockquote>Any news?</blockquote></div></body></html>"
    )
    assert receive(app, reply(address, "", html=html)).detail == "noted"
    assert notes(app, world.request_id)[-1].metadata_["body"] == "Quote attached tomorrow."


def test_an_empty_reply_does_nothing(app, world, smtp):
    address = reply_to(mail_bob(app, world, smtp))
    before = row_counts(app)
    assert receive(app, reply(address, "")).detail == "empty"
    assert row_counts(app) == before


# -- commands --------------------------------------------------------------------------------


def test_ack_by_mail_acknowledges_and_tells_the_fleet(app, world, smtp):
    address = reply_to(mail_bob(app, world, smtp))
    ack = reply(address, "ack", message_id="<ack-1@bobsrepair.com>")
    assert receive(app, ack).detail == "acknowledged"
    assert load_request(app, world.request_id).status == "acknowledged"
    (step,) = events(app, "request.acknowledged")
    assert step.metadata_["channel"] == "mail" and step.contact_id == world.contacts["bob"]
    deliver(app)
    (told,) = [m for m in smtp.to(DANA) if "acknowledged" in m["Subject"]]
    assert "acknowledged this request" in text_body(told)
    (answer,) = [m for m in smtp.to(BOB) if "done" in m["Subject"]]
    assert "You acknowledged the request." in text_body(answer)
    assert answer["Reply-To"] == address  # the answer can be replied to as well
    assert answer["In-Reply-To"] == answer["References"] == "<ack-1@bobsrepair.com>"


@pytest.mark.parametrize(
    ("first_line", "status"),
    [("Start", "in_progress"), ("done.", "completed"), ("COMPLETE", "completed")],
)
def test_the_command_words(app, world, smtp, first_line, status):
    address = reply_to(mail_bob(app, world, smtp))
    receive(app, reply(address, "acknowledge"))
    if status == "completed":
        receive(app, reply(address, "start"))
    assert receive(app, reply(address, first_line)).status == 0
    assert load_request(app, world.request_id).status == status


def test_decline_takes_its_reason_and_assign_me_assigns(app, world, smtp):
    address = reply_to(mail_bob(app, world, smtp))
    assert receive(app, reply(address, "assign me")).detail == "assigned"
    assert load_request(app, world.request_id).assigned_to_contact_id == world.contacts["bob"]
    assert (
        receive(app, reply(address, "decline No lift for a truck that size")).detail == "declined"
    )
    found = load_request(app, world.request_id)
    assert found.status == "declined"
    (step,) = events(app, "request.declined")
    assert step.metadata_["reason"] == "No lift for a truck that size"


def test_a_refused_command_is_answered_with_why(app, world, smtp):
    address = reply_to(mail_bob(app, world, smtp))
    # "done" on a new request: the buttons' rules say no.
    assert receive(app, reply(address, "done")).detail == "refused"
    assert load_request(app, world.request_id).status == "new"
    answer = outbox_to(app, BOB)[-1]
    assert "not done" in answer.subject
    assert "The request was not completed: A request that is new cannot be completed." in (
        answer.text_body
    )
    (refused,) = events(app, "reply.refused")
    assert refused.metadata_["channel"] == "mail"


def test_the_slower_of_two_is_told_who_acted_first(app, world, smtp):
    address = reply_to(mail_bob(app, world, smtp))
    receive(app, reply(address, "ack"))
    assert receive(app, reply(address, "ack")).detail == "refused"
    assert "This request was already acknowledged by Bob" in outbox_to(app, BOB)[-1].text_body


def test_the_fleet_cannot_take_a_step_by_mail(app, world, smtp):
    """Dana replies "done" to mail about her own request: not hers to take."""
    from fleetos.actions import requests as act
    from fleetos.models import Contact

    with database(app):
        bob = db.session.get(Contact, world.contacts["bob"])
        act.add_note(bob, world.request_id, "Booked in for Thursday.")
    deliver(app)
    (mail,) = smtp.to(DANA)
    assert receive(app, reply(reply_to(mail), "ack", sender=DANA)).detail == "refused"
    assert "Only the supplier" in outbox_to(app, DANA)[-1].text_body
    assert load_request(app, world.request_id).status == "new"


# -- who may reply ---------------------------------------------------------------------------


def test_a_reply_from_a_stranger_is_held_until_the_contact_accepts_it(app, world, smtp, browser):
    address = reply_to(mail_bob(app, world, smtp))
    before = len(notes(app, world.request_id))
    stranger = reply(address, "Call me about the brakes", sender="someone@elsewhere.example")
    assert receive(app, stranger).detail == "held"
    assert len(notes(app, world.request_id)) == before
    assert outbox_to(app, "someone@elsewhere.example") == []  # strangers are told nothing
    deliver(app)
    (ask,) = [m for m in smtp.to(BOB) if "is waiting for you" in m["Subject"]]
    assert "Call me about the brakes" in text_body(ask)
    link = next(w for w in text_body(ask).split() if "/replies/held/" in w)
    path = link.split("fleetos.test", 1)[1]

    page = browser.client.get(path)  # opening the link changes nothing
    assert page.status_code == 200 and "Call me about the brakes" in page.text
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["Cache-Control"] == "no-store"
    assert len(notes(app, world.request_id)) == before
    accepted = browser.post(path, {"decision": "accept"}, page=path)
    assert accepted.status_code == 200 and "Added as your note." in accepted.text
    note = notes(app, world.request_id)[-1]
    assert note.metadata_["body"] == "Call me about the brakes"
    assert note.contact_id == world.contacts["bob"] and note.metadata_["channel"] == "mail"
    # Once: the other button changes nothing now.
    again = browser.post(path, {"decision": "discard"})
    assert "already accepted" in again.text
    assert len(notes(app, world.request_id)) == before + 1


def test_strangers_cannot_flood_an_addressee_through_held_replies(make_app, world, smtp):
    """As an attacker tried it: 40 strangers' mails to Bob's reply address, each its own text.
    Past HELD_REPLIES_PER_DAY they are recorded on the audit trail, neither kept nor mailed."""
    app = make_app(INBOUND_MAIL_DOMAIN=INBOUND, HELD_REPLIES_PER_DAY=3)
    address = reply_to(mail_bob(app, world, smtp))
    outcomes = [
        receive(app, reply(address, f"Visit evil.example/{n} now", sender=f"x{n}@else.example"))
        for n in range(6)
    ]
    assert [o.detail for o in outcomes] == ["held"] * 3 + ["refused"] * 3
    deliver(app)
    asks = [m for m in smtp.to(BOB) if "is waiting for you" in m["Subject"]]
    assert len(asks) == 3
    assert len(events(app, "reply.not_held")) == 3
    with database(app):
        assert db.session.scalar(select(func.count()).select_from(HeldReply)) == 3


def test_a_held_reply_can_be_discarded(app, world, smtp, browser):
    address = reply_to(mail_bob(app, world, smtp))
    receive(app, reply(address, "spam spam", sender="someone@elsewhere.example"))
    deliver(app)
    (ask,) = [m for m in smtp.to(BOB) if "is waiting for you" in m["Subject"]]
    path = next(w for w in text_body(ask).split() if "/replies/held/" in w).split(".test", 1)[1]
    before = len(notes(app, world.request_id))
    done = browser.post(path, {"decision": "discard"}, page=path)
    assert "Discarded" in done.text
    assert len(notes(app, world.request_id)) == before
    (discarded,) = events(app, "reply.discarded")
    assert discarded.metadata_["sender"] == "someone@elsewhere.example"


def test_a_reply_whose_checks_failed_is_held(app, world, smtp):
    """Bob's address in From, but the MTA found SPF and DKIM failing: not Bob's to trust."""
    address = reply_to(mail_bob(app, world, smtp))
    forged = reply(
        address,
        "done",
        headers={
            "Authentication-Results": "mx.fleetos.test; spf=fail smtp.mailfrom=bobsrepair.com;"
            " dkim=none"
        },
    )
    assert receive(app, forged).detail == "held"
    vouched = reply(
        address,
        "ack",
        headers={
            "Authentication-Results": "mx.fleetos.test; spf=pass smtp.mailfrom=bob@bobsrepair.com;"
            " dkim=pass header.d=bobsrepair.com"
        },
    )
    assert receive(app, vouched).detail == "acknowledged"


def test_only_the_operators_mta_vouches_for_a_sender(make_app, world, smtp):
    """With INBOUND_AUTHSERV_ID, a "pass" from any other server (the sender's own, say)
    counts for nothing, and a message the operator's MTA did not check is held."""
    app = make_app(INBOUND_MAIL_DOMAIN=INBOUND, INBOUND_AUTHSERV_ID="mx.fleetos.test")
    address = reply_to(mail_bob(app, world, smtp))
    theirs = "evil.example; spf=pass smtp.mailfrom=bob@bobsrepair.com; dmarc=pass"
    ours = "mx.fleetos.test; dkim=pass header.d=bobsrepair.com"
    assert receive(app, reply(address, "ack")).detail == "held"
    claimed = reply(address, "ack", headers={"Authentication-Results": theirs})
    assert receive(app, claimed).detail == "held"
    checked = reply(address, "ack", headers={"Authentication-Results": ours})
    assert receive(app, checked).detail == "acknowledged"


def test_an_out_of_office_reply_is_recorded_and_nothing_else(app, world, smtp):
    address = reply_to(mail_bob(app, world, smtp))
    deliver(app)
    before = row_counts(app)
    auto = reply(
        address,
        "I am out of the office until Monday.",
        headers={"Auto-Submitted": "auto-replied", "X-Autoreply": "yes"},
    )
    assert receive(app, auto).detail == "auto_reply"
    after = row_counts(app)
    assert after["outbox_messages"] == before["outbox_messages"]  # answered by nothing
    assert after["event_log"] == before["event_log"] + 1
    assert len(notes(app, world.request_id)) == 1  # Dana's only: posted nowhere
    (recorded,) = events(app, "request.auto_reply")
    assert recorded.metadata_ == {"sender": BOB, "channel": "mail"}
    page = signed_in(app, smtp, world.contacts["dana"]).client.get(f"/requests/{world.request_id}")
    assert f"Auto-reply received from {BOB} (not posted, not answered)." in page.text
    assert "I am out of the office" not in page.text


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto-Submitted": "auto-generated"},
        {"X-Autorespond": "1"},
        {"Precedence": "bulk"},
        {"Precedence": "list"},
        {"Return-Path": "<>"},
    ],
)
def test_machines_are_never_answered(app, world, smtp, headers):
    address = reply_to(mail_bob(app, world, smtp))
    assert receive(app, reply(address, "ack", headers=headers)).detail == "auto_reply"
    assert load_request(app, world.request_id).status == "new"


def test_a_mailer_daemon_is_a_machine(app, world, smtp):
    address = reply_to(mail_bob(app, world, smtp))
    bounce = reply(address, "Delivery failed", sender="MAILER-DAEMON@bobsrepair.com")
    assert receive(app, bounce).detail == "auto_reply"
    assert receive(app, reply(address, "ack"), envelope_sender="").detail == "auto_reply"


def test_auto_submitted_no_is_a_person(app, world, smtp):
    address = reply_to(mail_bob(app, world, smtp))
    assert receive(app, reply(address, "ack", headers={"Auto-Submitted": "no"})).status == 0
    assert load_request(app, world.request_id).status == "acknowledged"


# -- addresses that are not, or no longer, FleetOS's -------------------------------------------


def tampered(address: str) -> str:
    local, _, domain = address.partition("@")
    last = local[-1]
    return f"{local[:-1]}{'a' if last != 'a' else 'b'}@{domain}"


@pytest.mark.parametrize("how", ["tampered", "unknown", "not a reply address"])
def test_a_bad_reply_address_exits_67_and_writes_nothing(app, world, smtp, head_database, how):
    address = reply_to(mail_bob(app, world, smtp))
    target = {
        "tampered": tampered(address),
        "unknown": f"reply+{'a' * 32}@{INBOUND}",
        "not a reply address": f"support@{INBOUND}",
    }[how]
    before = row_counts(app) | reply_rows(app)
    done = receive_mail_process(head_database, reply(target, "ack"))
    assert done.returncode == 67, done.stderr
    assert row_counts(app) | reply_rows(app) == before
    assert load_request(app, world.request_id).status == "new"


def test_a_message_that_cannot_be_read_exits_65(head_database, app):
    done = receive_mail_process(head_database, b"\r\n\r\nno headers at all\r\n")
    assert done.returncode == 65, done.stderr
    no_sender = receive_mail_process(head_database, b"Subject: hi\r\n\r\nbody\r\n")
    assert no_sender.returncode == 65


def test_a_reply_address_dies_when_its_contact_leaves(app, world, smtp):
    address = reply_to(mail_bob(app, world, smtp))
    with database(app):
        from fleetos.models import Contact

        bob = db.session.get(Contact, world.contacts["bob"])
        bob.company_id = world.companies["quick"]  # Bob now works for Quick Tyres
        db.session.commit()
    assert receive(app, reply(address, "ack")).status == 67


def test_a_reply_address_dies_a_month_after_the_request_closed(app, world, smtp):
    address = reply_to(mail_bob(app, world, smtp))
    with database(app):
        found = db.session.get(ServiceRequest, world.request_id)
        found.status = "completed"
        found.updated_at = func.now() - func.make_interval(0, 0, 0, 29)
        db.session.commit()
    assert receive(app, reply(address, "Thanks, invoice follows.")).detail == "noted"
    with database(app):
        found = db.session.get(ServiceRequest, world.request_id)
        found.updated_at = func.now() - func.make_interval(0, 0, 0, 31)
        db.session.commit()
    assert receive(app, reply(address, "One more thing")).status == 67


def test_a_revoked_reply_address_is_refused_and_the_next_mail_gets_a_new_one(app, world, smtp):
    from fleetos.actions.replies import revoke

    address = reply_to(mail_bob(app, world, smtp))
    with database(app):
        assert revoke(address.split("+", 1)[1].split("@")[0])
    assert receive(app, reply(address, "ack")).status == 67
    fresh = reply_to(mail_bob(app, world, smtp, note="Still there?"))
    assert fresh != address
    assert receive(app, reply(fresh, "ack")).detail == "acknowledged"


def test_a_reply_address_never_signs_anyone_in(app, world, smtp, browser):
    address = reply_to(mail_bob(app, world, smtp))
    token = address.split("+", 1)[1].split("@")[0]
    assert browser.client.get(f"/auth/link/{token}").status_code in (400, 404, 410)


# -- once ------------------------------------------------------------------------------------


def test_the_same_message_twice_is_one_note(app, world, smtp, head_database):
    address = reply_to(mail_bob(app, world, smtp))
    raw = reply(address, "Parts ordered.")
    assert receive(app, raw).detail == "noted"
    again = receive_mail_process(head_database, raw)
    assert again.returncode == 0, again.stderr
    assert receive(app, raw).detail == "duplicate"
    assert [n.metadata_["body"] for n in notes(app, world.request_id)].count("Parts ordered.") == 1
    assert len([m for m in outbox_to(app, BOB) if m.kind == "reply_answer"]) == 1


# -- emergence -------------------------------------------------------------------------------


def test_an_address_a_request_was_sent_to_emerges_on_its_first_reply(app, world, smtp):
    from fleetos.actions import requests as act
    from fleetos.models import Contact

    with database(app):
        dana = db.session.get(Contact, world.contacts["dana"])
        created = act.create_request(
            dana,
            act.NewRequest(
                vehicle="Van 3", title="Oil leak", supplier_address="sam@garage.example"
            ),
        )
        request_id = created.service_request.request_id
        supplier_id = created.supplier.company_id
    deliver(app)
    (message,) = smtp.to("sam@garage.example")
    raw = reply(reply_to(message), "ack", sender="sam@garage.example")
    assert receive(app, raw).detail == "acknowledged"
    with database(app):
        sam = db.session.scalar(
            select(Contact).where(Contact.contact_value == "sam@garage.example")
        )
        assert sam is not None and sam.company_id == supplier_id
        created_event = db.session.scalar(
            select(EventLog).where(
                EventLog.event_type == "contact.created", EventLog.contact_id == sam.contact_id
            )
        )
        assert created_event.metadata_["via"] == "reply"
        assert created_event.metadata_["channel"] == "mail"
    assert load_request(app, request_id).status == "acknowledged"


# -- reading the first line ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name", "argument", "rest"),
    [
        ("ack", "acknowledged", "", ""),
        ("Acknowledge!", "acknowledged", "", ""),
        ("done\n\nNew pads, both axles.", "completed", "", "New pads, both axles."),
        ("decline Not our make", "declined", "Not our make", ""),
        ("decline\nWe do not service trailers.", "declined", "We do not service trailers.", ""),
        ("Assign me.", "assigned", "", ""),
        ("Done by Friday, promise", None, "", "Done by Friday, promise"),
        ("acknowledged, thanks", None, "", "acknowledged, thanks"),
        ("assign Wes", None, "", "assign Wes"),
    ],
)
def test_only_a_first_line_that_is_a_command_is_one(text, name, argument, rest):
    from fleetos.actions.replies import interpret

    command = interpret(text)
    assert (command.name, command.argument, command.rest) == (name, argument, rest)


def test_a_flood_of_replies_is_not_answered_past_the_note_limit(make_app, world, smtp):
    app = make_app(
        INBOUND_MAIL_DOMAIN=INBOUND,
        RATELIMIT_ENABLED=True,
        NOTE_LIMIT_PER_CONTACT="2 per minute",
    )
    address = reply_to(mail_bob(app, world, smtp))
    outcomes = [receive(app, reply(address, f"Reply {n}")).detail for n in range(4)]
    assert outcomes == ["noted", "noted", "refused", "refused"]
    answers = [m for m in outbox_to(app, BOB) if m.kind == "reply_answer"]
    assert len(answers) == 2


def test_the_same_message_at_the_same_moment_is_one_note(app, world, smtp):
    """Two deliveries racing (an MTA retrying while the first is still being processed)."""
    from concurrent.futures import ThreadPoolExecutor

    address = reply_to(mail_bob(app, world, smtp))
    raw = reply(address, "Racing copies.")
    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(r.detail for r in pool.map(lambda _: receive(app, raw), range(2)))
    assert outcomes == ["duplicate", "noted"]
    bodies = [n.metadata_["body"] for n in notes(app, world.request_id)]
    assert bodies.count("Racing copies.") == 1


def test_deciding_on_a_held_reply_needs_the_form(app, world, smtp, browser):
    address = reply_to(mail_bob(app, world, smtp))
    receive(app, reply(address, "Held text", sender="someone@elsewhere.example"))
    deliver(app)
    (ask,) = [m for m in smtp.to(BOB) if "is waiting for you" in m["Subject"]]
    path = next(w for w in text_body(ask).split() if "/replies/held/" in w).split(".test", 1)[1]
    assert browser.client.post(path, data={"decision": "accept"}).status_code == 400  # no CSRF
    assert browser.client.get(path[:-3] + "xyz").status_code == 404  # a tampered link
    assert [n.metadata_["body"] for n in notes(app, world.request_id)] == ["Any news?"]


def test_mail_about_no_request_has_no_reply_to(app, browser, acme, smtp):
    browser.ask_for_link("dana@acme-fleet.com")
    deliver(app)
    (sign_in,) = smtp.to("dana@acme-fleet.com")
    assert sign_in["Reply-To"] is None
