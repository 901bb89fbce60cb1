"""The whole journey, as production runs it: sign-up, a request, a supplier new to FleetOS.

gunicorn serves FleetOS with three worker processes (any request may land on any of
them), ``flask fleetos deliver --loop`` sends what the web processes could not, and
mail goes to a real SMTP server. Two people in two browser contexts:

1. Dana signs Acme Fleet up (the mailed link creates the company and her contact) and
   sends a request to a workshop address FleetOS has never seen.
2. Bob, at that workshop, opens the mailed link: his supplier company and contact emerge
   and he lands on the request; he acknowledges it, starts work, adds a note, completes it.
3. Meanwhile Dana's dashboard, never reloaded, shows each step by polling; her mailbox
   gets one notification per step; the request's timeline shows who did what and when,
   including that Bob saw it.
4. The same journey through SMTP outages: the server is down while Dana asks for her
   sign-up link, and again while Bob works. Nothing is lost (the messages wait in the
   outbox), and once SMTP is back every message arrives exactly once.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from email.header import decode_header, make_header
from email.message import Message
from typing import TypeVar

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.chromium import NewContext, shot
from tests.e2e.conftest import Production, rate_limit_keys
from tests.mailserver import MailServer, link_in, text_body
from tests.support.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FLEET = "Acme Fleet"
DANA = "dana@acme-fleet.com"
DANA_NAME = "Dana Dispatch"
BOB = "bob@bobsrepair.com"  # a workshop FleetOS has never heard of
TITLE = "Brakes squeal at low speed"
VEHICLE = "Unit 14 · KX21 ABC"
NOTE = "Front pads worn to 2 mm: replacing pads and discs, back on the road by 4 pm."
MAIL_TIMEOUT = 15  # seconds: the mail worker polls every second
QUIET = 2.5  # seconds of a few more worker polls, in which no late duplicate may arrive

# Every message of the journey, exactly once each: (recipient, subject).
# A new supplier company is named after the address it was first reached at.
SIGN_UP = (DANA, f"Confirm {FLEET} on FleetOS")
NEW_REQUEST = (BOB, f"New service request from {FLEET}: {TITLE}")
ACKNOWLEDGED = (DANA, f"{TITLE}: acknowledged by {BOB}")
STARTED = (DANA, f"{TITLE}: started by {BOB}")
NOTED = (DANA, f"{TITLE}: a note from {BOB}")
COMPLETED = (DANA, f"{TITLE}: completed by {BOB}")
EVERY_MESSAGE = [SIGN_UP, NEW_REQUEST, ACKNOWLEDGED, STARTED, NOTED, COMPLETED]

T = TypeVar("T")


# -- mail ---------------------------------------------------------------------------------------


def header(message: Message, name: str) -> str:
    """A header as a person reads it: decoded, folding undone."""
    return " ".join(str(make_header(decode_header(message[name] or ""))).split())


def mailbox(smtp: MailServer) -> Counter[tuple[str, str]]:
    """How many messages arrived per (recipient, subject)."""
    return Counter((header(m, "To"), header(m, "Subject")) for m in smtp.messages)


def mail(smtp: MailServer, recipient: str, subject: str, timeout: float = MAIL_TIMEOUT) -> Message:
    """Wait for the message to ``recipient`` with ``subject``, and return it."""
    return eventually(
        lambda: next((m for m in smtp.to(recipient) if header(m, "Subject") == subject), None),
        timeout,
        f"no mail to {recipient} with subject {subject!r}",
    )


@contextmanager
def smtp_down(production: Production, expected: list[tuple[str, str]], *, active: bool) -> Iterator:
    """With ``active``, stop SMTP for the block, then show its mail waited and bring SMTP back.

    Every message the block queued must be in the outbox, pending, after a failed
    first attempt (after the response, or by the worker), and nothing may reach the
    mailbox meanwhile. Then SMTP starts again on the same port.
    """
    if not active:
        yield
        return
    smtp = production.smtp
    known = {row["message_id"] for row in production.outbox()}
    arrived = len(smtp.messages)
    # Down before the block's first click: stopped just after it, SMTP would race the
    # web worker, which sends a request's mail right after the response.
    smtp.stop()
    yield

    def queued_and_tried() -> list[dict]:
        rows = [row for row in production.outbox() if row["message_id"] not in known]
        return rows if len(rows) >= len(expected) and all(r["attempts"] for r in rows) else []

    rows = eventually(queued_and_tried, MAIL_TIMEOUT, "the outbox never tried the queued mail")
    time.sleep(QUIET)  # a few worker polls: nothing is retried early, sent, or given up
    again = [row for row in production.outbox() if row["message_id"] not in known]
    assert again == rows, "the outbox changed while SMTP was down and the retry was not due"
    assert sorted((r["recipient"], r["subject"]) for r in rows) == sorted(expected)
    for row in rows:
        assert row["status"] == "pending", row
        assert row["attempts"] == 1, row
        assert "ConnectionRefusedError" in row["last_error"], row
    assert len(smtp.messages) == arrived, "mail arrived while SMTP was down"

    smtp.start()
    # The first retry comes MAIL_RETRY_BASE_SECONDS (30 s) after a failure; the quiet
    # check above needs it that far away. To keep the test fast, make the waiting rows
    # due now, as if those 30 s had passed: the deliver --loop worker sends them next.
    production.sql("UPDATE outbox_messages SET next_attempt_at = now() WHERE status = 'pending'")


# -- what people see --------------------------------------------------------------------------


def mark(page: Page) -> None:
    """Leave a mark in the window: a page load wipes it."""
    page.evaluate("window.__marker = 'still here'")


def expect_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__marker") == "still here", "the dashboard was reloaded"


def count(page: Page, status: str) -> Locator:
    """The number on a dashboard's status tab."""
    return page.locator(f'#counts a[data-status="{status}"] .count')


def expect_counts(page: Page, **expected: int) -> None:
    for status, n in expected.items():
        expect(count(page, status)).to_have_text(str(n))


def expect_flash(page: Page, text: str) -> None:
    expect(page.locator("#flashes").get_by_text(text)).to_be_visible()


def fill_in_sign_up(page: Page) -> None:
    """Dana fills in the form that starts Acme Fleet."""
    page.goto("/auth/signup")
    page.get_by_label("Company name").fill(FLEET)
    page.get_by_label("runs a fleet of vehicles").check()
    page.get_by_label("E-mail or mobile number").fill(DANA)
    page.get_by_label("Your name (optional)").fill(DANA_NAME)


def use_link(page: Page, link: str, heading: str) -> None:
    """Open a mailed link: the page says who it signs in, and Continue does it."""
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)


# -- the journey --------------------------------------------------------------------------------


@pytest.mark.parametrize("outage", [False, True], ids=["smtp-up", "smtp-outage"])
def test_the_whole_journey(production: Production, new_context: NewContext, outage: bool):
    smtp = production.smtp
    began = production.sql("SELECT now()")[0][0]
    fleet = new_context().new_page()
    supplier = new_context().new_page()
    assert len(production.worker_pids()) == 3  # several workers, behaving as one

    # 1. Dana starts Acme Fleet: the form, the mail, the link, Continue.
    fill_in_sign_up(fleet)
    shot(fleet, "01-fleet-signup")
    with smtp_down(production, [SIGN_UP], active=outage):
        fleet.get_by_role("button", name="Send me the link").click()
        expect(fleet.get_by_role("heading", name="Check your messages")).to_be_visible()
        shot(fleet, "02-fleet-check-email")
    # The link requests were counted in the shared Redis, under this test's prefix.
    assert rate_limit_keys(production.env["RATELIMIT_KEY_PREFIX"])

    link = link_in(mail(smtp, *SIGN_UP))
    assert link.startswith(production("/auth/link/"))  # BASE_URL is gunicorn's address
    assert production.sql("SELECT count(*) FROM companies")[0][0] == 0  # nothing until used
    use_link(fleet, link, f"Continue as {DANA} ({FLEET})")
    shot(fleet, "03-fleet-confirm-link")
    fleet.get_by_role("button", name="Continue").click()
    fleet.wait_for_url("**/dashboard")
    expect_flash(fleet, f"Welcome to FleetOS, {DANA_NAME}.")
    expect(fleet.get_by_role("heading", level=1)).to_have_text(FLEET)
    shot(fleet, "04-fleet-dashboard-first-visit")
    assert production.sql(
        "SELECT co.name, co.company_type, c.display_name FROM contacts c "
        "JOIN companies co USING (company_id) WHERE c.contact_value = %s",
        DANA,
    ) == [(FLEET, "fleet", DANA_NAME)]

    # ... and sends a request to a workshop address FleetOS has never seen.
    assert production.sql("SELECT count(*) FROM contacts WHERE contact_value = %s", BOB) == [(0,)]
    fleet.get_by_role("navigation", name="Main").get_by_role("link", name="New request").click()
    fleet.get_by_label("Supplier's e-mail").fill(BOB)
    fleet.get_by_label("Vehicle", exact=True).fill(VEHICLE)
    fleet.get_by_label("What needs doing").fill(TITLE)
    fleet.get_by_label("Priority").select_option("high")
    shot(fleet, "05-fleet-new-request")
    fleet.get_by_role("button", name="Send request").click()
    fleet.wait_for_url(re.compile(r"/requests/[0-9a-f-]{36}$"))
    request_id = fleet.url.rsplit("/", 1)[1]
    expect_flash(fleet, f"Request sent to {BOB}.")
    expect(fleet.get_by_role("heading", level=1)).to_have_text(TITLE)
    expect(fleet.get_by_text(f"Waiting for {BOB}.")).to_be_visible()
    shot(fleet, "06-fleet-request-sent")

    # Dana's dashboard: the new request at the top of "New"; then she keeps the
    # "Completed" tab open, where it will end up, and never reloads it. (She opens that
    # tab by URL: clicking the tab while a poll is on its way hits the known race of
    # tests/browser/test_dashboard_browser.py::test_switching_tabs_while_a_poll_...)
    fleet.goto("/dashboard")
    row = fleet.locator(f"#row-{request_id}")
    expect(row.locator(".status")).to_have_text("new")
    expect(row.locator(".priority")).to_have_text("high")
    expect(row.locator(".request-party")).to_have_text(BOB)
    expect_counts(fleet, new=1, acknowledged=0, in_progress=0, completed=0)
    shot(fleet, "07-fleet-dashboard-new")
    fleet.goto("/dashboard?status=completed")
    expect(fleet.locator("#empty-state")).to_contain_text("No completed requests")
    expect(row).to_have_count(0)
    mark(fleet)
    shot(fleet, "08-fleet-dashboard-completed-empty")

    # 2. Bob's mail arrives; his link page, Continue, and he is on the request.
    request_mail = mail(smtp, *NEW_REQUEST)
    assert f"{DANA_NAME} ({FLEET}) sent you a service request" in text_body(request_mail)
    use_link(supplier, link_in(request_mail), f"Continue as {BOB} ({BOB})")
    shot(supplier, "09-supplier-confirm-link")
    supplier.get_by_role("button", name="Continue").click()
    supplier.wait_for_url(f"**/requests/{request_id}")
    expect(supplier.get_by_role("heading", level=1)).to_have_text(TITLE)
    expect_flash(supplier, f"Welcome to FleetOS, {BOB}.")
    shot(supplier, "10-supplier-request")
    # His company and his contact emerged from the link (named after his address).
    assert production.sql(
        "SELECT co.name, co.company_type FROM contacts c JOIN companies co USING (company_id) "
        "WHERE c.contact_value = %s",
        BOB,
    ) == [(BOB, "supplier")]
    assert production.sql(
        "SELECT co.name FROM service_requests r JOIN companies co "
        "ON co.company_id = r.supplier_company_id WHERE r.request_id = %s",
        request_id,
    ) == [(BOB,)]

    # Bob works through the request with the page's buttons (and SMTP down, in the outage).
    with smtp_down(production, [ACKNOWLEDGED, STARTED, NOTED, COMPLETED], active=outage):
        supplier.get_by_role("button", name="Acknowledge").click()
        expect_flash(supplier, "Request acknowledged.")
        expect(supplier.locator(".request-badges .status")).to_have_text("acknowledged")
        shot(supplier, "11-supplier-acknowledged")
        # 3. Dana's counts follow by themselves, the page never reloaded.
        expect_counts(fleet, new=0, acknowledged=1, in_progress=0, completed=0)
        expect_not_reloaded(fleet)
        shot(fleet, "12-fleet-dashboard-sees-acknowledged")

        supplier.get_by_role("button", name="Start work").click()
        expect_flash(supplier, "Request started.")
        expect(supplier.locator(".request-badges .status")).to_have_text("in progress")
        expect_counts(fleet, new=0, acknowledged=0, in_progress=1, completed=0)
        expect_not_reloaded(fleet)

        supplier.get_by_label("Add a note (both companies see it)").fill(NOTE)
        supplier.get_by_role("button", name="Add note").click()
        expect_flash(supplier, "Note added.")
        expect(supplier.locator("#timeline blockquote")).to_have_text(NOTE)
        shot(supplier, "13-supplier-note-added")

        supplier.get_by_role("button", name="Complete").click()
        expect_flash(supplier, "Request completed.")
        expect(supplier.get_by_text("This request is completed.")).to_be_visible()
        shot(supplier, "14-supplier-completed")
        # The request arrives in Dana's open "Completed" tab by polling.
        expect(row.locator(".status")).to_have_text("completed")
        expect(fleet.locator("#empty-state")).to_have_count(0)
        expect_counts(fleet, new=0, acknowledged=0, in_progress=0, completed=1)
        expect_not_reloaded(fleet)
        shot(fleet, "15-fleet-dashboard-sees-completed")

    # Dana's mailbox: one message per step, each with a link that signs her in.
    for recipient, subject, says in [
        (*ACKNOWLEDGED, f"{BOB} acknowledged this request"),
        (*STARTED, f"{BOB} started this request"),
        (*NOTED, NOTE),
        (*COMPLETED, f"{BOB} completed this request"),
    ]:
        body = text_body(mail(smtp, recipient, subject))
        assert says in body, body
        assert f'"{TITLE}"' in body
        assert production("/auth/link/") in body

    # The timeline, as Dana sees it: every step, who, and when, and that Bob saw it.
    timeline = fleet.context.new_page()  # a second tab: the dashboard stays open
    timeline.goto(f"/requests/{request_id}")
    expect(timeline.get_by_text(f"Waiting for {BOB}.")).to_have_count(0)
    expect(timeline.get_by_text("This request is completed.")).to_be_visible()
    steps = timeline.locator("#timeline li")
    expect(steps).to_have_count(6)
    notified = f"Notified {DANA} (submitting contact)."
    typed = f"Notified {BOB} (the address the fleet typed)."
    expected = [
        (f"{DANA_NAME} ({FLEET}) sent this request.", typed),
        (f"Seen by {BOB} ({BOB}).", None),
        (f"{BOB} ({BOB}) acknowledged it.", notified),
        (f"{BOB} ({BOB}) started work.", notified),
        (f"{BOB} ({BOB}) wrote: {NOTE}", notified),
        (f"{BOB} ({BOB}) completed it.", notified),
    ]
    shot(timeline, "16-fleet-timeline")
    now = production.sql("SELECT now()")[0][0]
    moments = []
    for index, (says, routed) in enumerate(expected):
        step = steps.nth(index)
        text = " ".join(step.inner_text().split())
        assert says in text, text
        if routed:
            assert routed in text, text
        when = step.locator("time")
        moment = datetime.fromisoformat(when.get_attribute("datetime").replace("Z", "+00:00"))
        assert began <= moment <= now, (says, moment)
        expect(when).to_have_text(moment.strftime("%d %b %Y, %H:%M UTC"))
        moments.append(moment)
    assert moments == sorted(moments)
    expect(timeline.locator("#timeline").get_by_text("Seen by")).to_have_count(1)

    # Exactly once: every message arrived, none twice, and none arrives late.
    eventually(lambda: set(mailbox(smtp)) >= set(EVERY_MESSAGE), MAIL_TIMEOUT, "mail missing")
    time.sleep(QUIET)
    assert mailbox(smtp) == Counter(EVERY_MESSAGE)
    outbox = production.outbox()
    assert sorted((r["recipient"], r["subject"]) for r in outbox) == sorted(EVERY_MESSAGE)
    assert {r["status"] for r in outbox} == {"sent"}
    retried = {(r["recipient"], r["subject"]) for r in outbox if r["attempts"]}
    assert retried == ({SIGN_UP, ACKNOWLEDGED, STARTED, NOTED, COMPLETED} if outage else set())

    # Both processes are still up, and no request failed in any of them.
    for name, process in production.processes.items():
        assert process.poll() is None, f"{name} exited:\n{production.log(name)}"
    for name in production.logs:
        assert "Traceback" not in production.log(name), production.log(name)
