"""Issue 15 in a real Chromium: a reply by mail shows on the other company's timeline by itself.

Dana (the fleet) has the request open. Bob (the workshop) never opens FleetOS:
he answers the mail about her note from his mail client, "ack" on the first
line and a note below, with a photo. Dana's page, without a reload, shows the
step, the note and the photo's thumbnail (the timeline polls for itself while
the tab is visible, and an unchanged timeline costs a 204).
"""

from __future__ import annotations

import time
import uuid

import pytest
from playwright.sync_api import expect

from fleetos.extensions import db
from fleetos.inbound.receive import receive_mail
from tests.browser.conftest import BOB, DANA, LiveServer, dana_sent_bob_a_request, sign_in
from tests.chromium import NewContext, shot
from tests.replies.conftest import INBOUND, reply, reply_to
from tests.support import files


@pytest.fixture
def live_overrides() -> dict[str, object]:
    return {"INBOUND_MAIL_DOMAIN": INBOUND, "DASHBOARD_POLL_SECONDS": 1}


@pytest.fixture
def request_id(live_server: LiveServer) -> uuid.UUID:
    return dana_sent_bob_a_request(live_server.app, "Brakes squeal")


# Sent by the live server's background sender as the note's response goes out:
# well under a second.
def mail_to_bob(live_server: LiveServer, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        about = [m for m in live_server.smtp.to(BOB) if "a note from" in str(m["Subject"])]
        if about:
            return about[-1]
        time.sleep(0.05)
    with live_server.app.app_context():
        from fleetos.models import OutboxMessage

        rows = [
            (m.recipient, m.status, m.attempts, m.last_error, m.next_attempt_at)
            for m in db.session.query(OutboxMessage)
        ]
        db.session.remove()
    raise AssertionError(f"no mail to Bob about Dana's note: {rows}")


def test_a_reply_by_mail_shows_on_the_fleets_timeline_without_a_reload(
    new_context: NewContext, live_server: LiveServer, request_id: uuid.UUID
):
    fleet = new_context().new_page()
    sign_in(fleet, live_server.smtp, DANA)
    fleet.goto(f"/requests/{request_id}")
    fleet.get_by_label("Add a note (both companies see it)").fill("When can you look at it?")
    fleet.get_by_role("button", name="Add note").click()
    expect(fleet.get_by_text("Note added.")).to_be_visible()
    fleet.evaluate("window.__sameDocument = true")  # gone if the page reloads

    # Bob answers from his mail client; the MTA hands the reply to FleetOS.
    address = reply_to(mail_to_bob(live_server))
    raw = reply(
        address,
        "ack\n\nPads are in stock, we fit them Thursday.",
        attachments=[("pads.jpg", "image/jpeg", files.phone_jpeg(640, 480))],
    )
    with live_server.app.app_context():
        try:
            received = receive_mail(raw)
        finally:
            db.session.remove()
    assert received.status == 0 and received.detail == "acknowledged"

    timeline = fleet.locator("#timeline")
    expect(
        timeline.get_by_text("Bob Builder (Bob's Truck Repair) acknowledged it.")
    ).to_be_visible()
    expect(timeline.get_by_text("Pads are in stock, we fit them Thursday.")).to_be_visible()
    thumbnail = timeline.locator(".attachment-photo img")
    expect(thumbnail).to_have_count(1)
    expect(thumbnail).to_have_attribute("alt", "pads.jpg")
    fleet.wait_for_function(
        "() => { const i = document.querySelector('#timeline .attachment-photo img');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )
    # The step, then the note that came below it; the status badge moved with them.
    entries = timeline.locator("li")
    expect(entries.nth(1)).to_contain_text("acknowledged it. (by mail)")
    expect(entries.nth(2)).to_contain_text("Pads are in stock")
    expect(fleet.locator("#request-badges")).to_contain_text("acknowledged")
    assert fleet.evaluate("window.__sameDocument") is True
    shot(fleet, "fleet-sees-the-reply-by-mail")
