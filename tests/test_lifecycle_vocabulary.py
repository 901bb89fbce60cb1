"""fleetos.lifecycle is the one source of the lifecycle's words: every status, step and event
label is checked here, and every step is walked through the action core and the pages.

Adding a status is lifecycle.py plus a migration: these tests fail until both agree.
"""

from __future__ import annotations

import re
from html import unescape

import pytest
from sqlalchemy import text

from fleetos import lifecycle
from fleetos.actions import requests as act
from fleetos.extensions import db
from fleetos.models import Contact, ServiceRequest
from tests.support.apps import database
from tests.support.web import load_request, outbox_to, request_events, set_status

STEP_CASES = [(seen, step) for step in lifecycle.STEPS.values() for seen in sorted(step.froms)]


def test_every_status_has_a_label_and_a_place_in_the_order():
    assert set(lifecycle.TRANSITIONS) == set(lifecycle.STATUSES)
    for status in lifecycle.STATUSES:
        assert lifecycle.status_label(status)
        if lifecycle.is_final(status):
            assert lifecycle.TRANSITIONS[status] == frozenset()
        else:  # reachable from a new request, and able to end
            assert [s.to for s in lifecycle.path_to(status)][-1:] in ([], [status])
            assert any(lifecycle.is_final(to) for to in lifecycle.TRANSITIONS[status])
    assert lifecycle.INITIAL_STATUS in lifecycle.OPEN_STATUSES


def test_every_step_has_its_words():
    for step in lifecycle.STEPS.values():
        assert step.to in lifecycle.STATUSES and step.froms <= set(lifecycle.OPEN_STATUSES)
        assert step.button and step.verb and step.activity and "{who}" in step.timeline
        assert lifecycle.event_label(step.event_type).timeline == step.timeline
        assert step.taken_by in (lifecycle.SUPPLIER, lifecycle.FLEET)


def test_replies_by_mail_and_by_sms_take_steps_with_the_same_words():
    from fleetos.actions.replies import interpret
    from fleetos.sms.inbound import STEP_WORDS, parse

    step_targets = {step.to for step in lifecycle.STEPS.values()}
    assert set(lifecycle.REPLY_WORDS.values()) == step_targets  # every step has a word
    for word, to in lifecycle.REPLY_WORDS.items():
        argument = " Not our make" if to == "declined" else ""
        assert interpret(word + argument).name == to
        assert STEP_WORDS[parse(word.upper() + argument).word] == to
    assert STEP_WORDS["OK"] == "acknowledged"  # the usual answer to a text
    assert interpret("OK").name is None  # by mail, a note


@pytest.mark.parametrize(
    "event_type",
    [
        "request.created",
        "request.viewed",
        "request.assigned",
        "request.note",
        *(step.event_type for step in lifecycle.STEPS.values()),
        "contact.created",
        "contact.signed_in",
        "contact.signed_out",
        "contact.signed_out_everywhere",
        "contact.invited",
        "invitation.revoked",
        "company.created",
        "attachment.viewed",
        "attachment.downloaded",
    ],
)
def test_every_event_shown_on_a_timeline_or_feed_has_a_label(event_type):
    label = lifecycle.EVENTS[event_type]
    assert label.activity
    if event_type.startswith("request."):
        assert label.timeline and "{who}" in label.timeline


def test_the_database_accepts_exactly_the_lifecycles_statuses(app_context):
    constraint = db.session.scalar(
        text(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conname = 'valid_status' AND conrelid = 'service_requests'::regclass"
        )
    )
    assert set(re.findall(r"'(\w+)'", constraint)) == set(lifecycle.STATUSES)
    model_check = next(c for c in ServiceRequest.__table__.constraints if c.name == "valid_status")
    assert set(re.findall(r"'(\w+)'", str(model_check.sqltext))) == set(lifecycle.STATUSES)


@pytest.mark.parametrize(("seen", "step"), STEP_CASES, ids=lambda v: getattr(v, "to", v))
def test_every_step_from_every_status_reads_the_same_everywhere(app, world, as_, seen, step):
    """The button, the move, the event, the timeline, the activity feed and the mail."""
    set_status(app, world.request_id, seen)
    bob, dana = as_("bob"), as_("dana")
    page = bob.client.get(f"/requests/{world.request_id}").text
    assert f">{step.button}</" in page or f"<summary>{step.button} this request</summary>" in page
    assert (
        step.button
        not in dana.client.get(f"/requests/{world.request_id}").text.split('id="timeline"')[0]
    )

    response = bob.post(
        f"/requests/{world.request_id}/transition",
        {"from": seen, "to": step.to, "reason": "No parts"},
        page="/dashboard",
    )
    assert response.status_code == 303
    assert load_request(app, world.request_id).status == step.to
    [event] = [e for e in request_events(app, world.request_id) if e.event_type == step.event_type]
    assert event.metadata_["from"] == seen and event.metadata_["channel"] == "web"

    timeline = unescape(dana.client.get(f"/requests/{world.request_id}").text)
    assert step.timeline.format(who="<strong>Bob</strong> (Bob's Truck Repair)") in timeline
    activity = unescape(dana.client.get("/dashboard/company").text)
    assert f"<strong>Bob</strong> {step.activity}" in activity
    [mail] = outbox_to(app, "dana@acme-fleet.com")
    assert mail.subject == f"Brakes squeal: {step.verb} by Bob's Truck Repair"
    assert f"Bob {step.verb} this request" in (mail.text_body or "")


def test_other_channels_call_the_same_action_and_are_recorded(app, world):
    with database(app):
        bob = db.session.get(Contact, world.contacts["bob"])
        moved = act.acknowledge(bob, world.request_id, channel="sms")
        assert (moved.seen, moved.step.to) == ("new", "acknowledged")
        noted = act.add_note(bob, world.request_id, "On our way", channel="mail")
        assert noted.event.metadata_["channel"] == "mail"
    [ack] = [
        e for e in request_events(app, world.request_id) if e.event_type == "request.acknowledged"
    ]
    assert ack.metadata_["channel"] == "sms"
