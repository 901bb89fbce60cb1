"""The supplier's dashboard in a real Chromium: row actions, live updates, races, no JavaScript.

The dashboard is htmx on top of plain links and forms. These tests drive it the
way a workshop would (sign in by link, click the buttons) and check what the
person sees: rows changing in place without a reload, new work arriving by
itself, a clear word when a colleague was faster, the same journey with
JavaScript turned off, older pages, and the layout on a desktop and a phone.

The live app polls every second here (DASHBOARD_POLL_SECONDS=1) so "by itself"
happens within a test's patience. Where a test looks at a row that a poll would
take off the list (it left the "new" tab), it pauses that page's poller the way
a background tab does: the poller only polls while ``document.visibilityState``
is "visible".
"""

from __future__ import annotations

import contextlib
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from playwright.sync_api import Error, Locator, Page, expect

from fleetos.extensions import db
from fleetos.models import Company, Contact, ServiceRequest
from tests.browser.conftest import LiveServer, sign_in
from tests.chromium import TIMEOUT_MS, NewContext, shot, wait_until

FLEET_NAME = "Acme Fleet"
SHOP_NAME = "Bob's Truck Repair"
DANA = "dana@acme-fleet.com"  # the fleet's dispatcher
BOB = "bob@bobsrepair.com"  # the workshop's owner
WES = "wes@bobsrepair.com"  # his colleague
NAMES = {DANA: "Dana Dispatch", BOB: "Bob Builder", WES: "Wes Wrench"}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def live_overrides() -> dict[str, object]:
    """Poll every second, so changes made elsewhere show up within a test's patience."""
    return {"DASHBOARD_POLL_SECONDS": 1}


# -- the world: one fleet, one workshop, their people, and work between them ----------------


@dataclass
class World:
    app: Flask
    fleet_id: uuid.UUID
    shop_id: uuid.UUID
    people: dict[str, uuid.UUID]  # address -> contact_id

    def add_requests(self, *specs: dict[str, object], same_time: bool = False) -> list[str]:
        """Insert requests from the fleet to the shop, newest first; returns their ids.

        Each spec may give title, vehicle, priority, status, assigned_to (an address).
        Requests get created_at one minute apart (the first the newest), or all the
        same time with ``same_time`` (one transaction's now()), which only the
        request_id tie-break orders. The status counts follow by trigger.
        """
        now = datetime.now(UTC).replace(tzinfo=None)
        with self.app.app_context():
            try:
                rows = []
                for index, spec in enumerate(specs):
                    spec = dict(spec)
                    assignee = spec.pop("assigned_to", None)
                    row = ServiceRequest(
                        fleet_company_id=self.fleet_id,
                        supplier_company_id=self.shop_id,
                        submitted_by_contact_id=self.people[DANA],
                        supplier_email=BOB,
                        assigned_to_contact_id=self.people[assignee] if assignee else None,
                        **({} if same_time else {"created_at": now - timedelta(minutes=5 + index)}),
                        **{
                            "vehicle": f"Unit {index + 1}",
                            "title": f"Request {index + 1}",
                            "status": "new",
                            "priority": "normal",
                            **spec,
                        },
                    )
                    db.session.add(row)
                    rows.append(row)
                db.session.commit()
                return [str(row.request_id) for row in rows]
            finally:
                db.session.remove()


@pytest.fixture
def world(live_server: LiveServer) -> World:
    """Acme Fleet (Dana) and Bob's Truck Repair (Bob, Wes; domain bobsrepair.com)."""
    app = live_server.app
    with app.app_context():
        try:
            fleet = Company(name=FLEET_NAME, company_type="fleet", email_domain="acme-fleet.com")
            shop = Company(name=SHOP_NAME, company_type="supplier", email_domain="bobsrepair.com")
            db.session.add_all([fleet, shop])
            db.session.flush()
            people = {}
            for address, company in ((DANA, fleet), (BOB, shop), (WES, shop)):
                contact = Contact(
                    company_id=company.company_id,
                    contact_value=address,
                    contact_type="email",
                    display_name=NAMES[address],
                )
                db.session.add(contact)
                db.session.flush()
                people[address] = contact.contact_id
            db.session.commit()
            return World(app, fleet.company_id, shop.company_id, people)
        finally:
            db.session.remove()


# -- what the person sees ---------------------------------------------------------------------


def row(page: Page, request_id: str) -> Locator:
    return page.locator(f"#row-{request_id}")


def rows(page: Page) -> Locator:
    return page.locator("#request-list > li.request-card")


def count(page: Page, status: str) -> Locator:
    """The number on a status tab."""
    return page.locator(f'#counts a[data-status="{status}"] .count')


def expect_counts(page: Page, **expected: int) -> None:
    for status, n in expected.items():
        expect(count(page, status)).to_have_text(str(n))


def mark(page: Page) -> None:
    """Leave a mark in the window: a page load wipes it."""
    page.evaluate("window.__marker = 1")


def expect_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__marker") == 1, "the page was reloaded"


def view(page: Page, anchor: str | None = None) -> dict[str, object]:
    """The scroll position, and where a row (by default the first one in view) is on screen."""
    return page.evaluate(
        """anchor => {
        const rows = [...document.querySelectorAll('#request-list > li.request-card')];
        const row = anchor ? document.getElementById(anchor)
                           : rows.find(r => r.getBoundingClientRect().top >= 0);
        return {anchor: row.id, top: row.getBoundingClientRect().top, scrollY: window.scrollY};
    }""",
        anchor,
    )


def pause_polling(page: Page, *, settle: bool = True) -> None:
    """Make the tab report itself hidden (the poller skips hidden tabs).

    With ``settle``, also wait until a poll already on its way has landed.
    """
    page.evaluate(
        "Object.defineProperty(document, 'visibilityState', "
        "{configurable: true, get: () => 'hidden'})"
    )
    if settle:
        wait_until(page, "!document.querySelector('#poller.htmx-request')")


def resume_polling(page: Page) -> None:
    page.evaluate("delete document.visibilityState")  # back to the prototype's real getter


def open_dashboard(page: Page, live_server: LiveServer, address: str) -> None:
    """Sign in through the real link page; the person lands on the shop's "new" tab."""
    sign_in(page, live_server.smtp, address)
    expect(page.get_by_role("heading", level=1)).to_have_text(SHOP_NAME)
    expect(page.locator("#counts a[aria-current=page]")).to_have_attribute("data-status", "new")


# -- 1. a row action updates the row and the counts in place ---------------------------------


def test_acknowledging_a_row_updates_it_and_the_counts_without_a_reload(page, live_server, world):
    brakes, lights, tyres = world.add_requests(
        {
            "title": "Brakes squeal at low speed",
            "vehicle": "Unit 14 · KX21 ABC",
            "priority": "urgent",
        },
        {"title": "Left headlight out", "vehicle": "Unit 3 · LD19 XYZ"},
        {"title": "Tyre pressure warning", "vehicle": "Unit 7 · MN70 QRS", "priority": "low"},
    )
    open_dashboard(page, live_server, BOB)
    expect(rows(page)).to_have_count(3)
    expect(rows(page).first).to_have_id(f"row-{brakes}")  # newest first
    expect(row(page, brakes).locator(".status")).to_have_text("new")
    expect_counts(page, new=3, acknowledged=0)
    shot(page, "1-before")

    mark(page)
    pause_polling(page)  # keep the row in view: a poll takes it off the "new" list
    row(page, brakes).get_by_role("button", name="Acknowledge").click()

    expect(row(page, brakes).locator(".status")).to_have_text("acknowledged")
    expect(row(page, brakes).get_by_role("button", name="Start work")).to_be_visible()
    expect(row(page, brakes).get_by_role("button", name="Acknowledge")).to_have_count(0)
    expect_counts(page, new=2, acknowledged=1)
    expect(row(page, lights).locator(".status")).to_have_text("new")  # the others untouched
    expect(row(page, tyres).locator(".status")).to_have_text("new")
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect_not_reloaded(page)
    shot(page, "2-after")

    # The next poll takes the row off the "new" list; the Acknowledged tab has it.
    resume_polling(page)
    expect(row(page, brakes)).to_have_count(0, timeout=TIMEOUT_MS)
    expect(rows(page)).to_have_count(2)
    page.locator('#counts a[data-status="acknowledged"]').click()
    expect(page).to_have_url(re.compile(r"/dashboard\?status=acknowledged$"))
    expect(rows(page)).to_have_count(1)
    expect(row(page, brakes).locator(".status")).to_have_text("acknowledged")
    expect_not_reloaded(page)


# -- 2. new work shows up by itself ------------------------------------------------------------


def test_a_new_request_appears_at_the_top_by_itself(new_context: NewContext, live_server, world):
    world.add_requests(*({"title": f"Older job {n}"} for n in range(1, 13)))
    shop = new_context().new_page()
    open_dashboard(shop, live_server, BOB)
    expect(rows(shop)).to_have_count(12)
    expect_counts(shop, new=12)

    mark(shop)
    shop.evaluate("window.scrollTo(0, 400)")
    before = view(shop)
    assert before["scrollY"] == 400, "the list should be long enough to scroll"

    fleet = new_context().new_page()  # Dana, at the fleet, sends new work to Bob's address
    sign_in(fleet, live_server.smtp, DANA)
    fleet.goto("/requests/new")
    fleet.get_by_label("Supplier's e-mail").fill(BOB)
    fleet.get_by_label("Vehicle", exact=True).fill("Unit 22 · PX68 LMN")
    fleet.get_by_label("What needs doing").fill("Coolant leak under the cab")
    fleet.get_by_label("Priority").select_option("high")
    fleet.get_by_role("button", name="Send request").click()
    # The address typed, not the company behind it (issue 10: nothing tells who uses FleetOS).
    expect(fleet.get_by_role("status")).to_have_text(f"Request sent to {BOB}.")

    newest = rows(shop).first
    expect(newest.locator(".request-title")).to_have_text(
        "Coolant leak under the cab", timeout=TIMEOUT_MS
    )
    expect(newest.locator(".priority")).to_have_text("high")
    expect(newest.locator(".request-party")).to_have_text(f"{FLEET_NAME} (acme-fleet.com)")
    expect(rows(shop)).to_have_count(13)
    expect_counts(shop, new=13)
    expect_not_reloaded(shop)
    # What the person was reading stays where it was on screen. scrollY itself grows
    # by the height of the row added above (Chromium's scroll anchoring compensates);
    # a reload or a re-rendered list would have sent it back to the top instead.
    after = view(shop, before["anchor"])
    assert after["top"] == pytest.approx(before["top"], abs=1), "the list jumped"
    added = newest.evaluate("li => li.getBoundingClientRect().height")
    assert after["scrollY"] >= before["scrollY"] + added - 1
    shot(shop, "new-row-arrived")


# -- 3. two people, one request ----------------------------------------------------------------


def test_the_slower_of_two_colleagues_is_told_who_acted_first(
    new_context: NewContext, live_server, world
):
    (brakes,) = world.add_requests({"title": "Brakes squeal at low speed", "priority": "urgent"})
    bob = new_context().new_page()
    wes = new_context().new_page()
    open_dashboard(bob, live_server, BOB)
    open_dashboard(wes, live_server, WES)
    for page in (bob, wes):
        expect(row(page, brakes).locator(".status")).to_have_text("new")
        pause_polling(page)  # both still see the request as new, as between two polls

    row(bob, brakes).get_by_role("button", name="Acknowledge").click()
    expect(row(bob, brakes).locator(".status")).to_have_text("acknowledged")

    mark(wes)
    stale = row(wes, brakes)
    expect(stale.locator(".status")).to_have_text("new")  # Wes's page does not know yet
    stale.get_by_role("button", name="Acknowledge").click()

    expect(stale.get_by_role("alert")).to_contain_text(
        f"This request was already acknowledged by {NAMES[BOB]}"
    )
    expect(stale.locator(".status")).to_have_text("acknowledged")  # where it stands now
    expect(stale.get_by_role("button", name="Start work")).to_be_visible()
    expect_counts(wes, new=0, acknowledged=1)
    expect_not_reloaded(wes)
    shot(wes, "already-acknowledged")


# -- 4. the same journey without JavaScript ------------------------------------------------------


def test_the_dashboard_works_without_javascript(new_context: NewContext, live_server, world):
    brakes, _lights, tyres, mirror = world.add_requests(
        {"title": "Brakes squeal at low speed", "priority": "high"},
        {"title": "Left headlight out"},
        {"title": "Tyre pressure warning", "priority": "high"},
        {"title": "Cracked mirror", "assigned_to": BOB},
    )
    page = new_context(javascript=False).new_page()
    open_dashboard(page, live_server, BOB)
    assert page.evaluate("typeof window.htmx") == "undefined"  # the page's scripts never ran
    expect(rows(page)).to_have_count(4)
    expect_counts(page, new=4, acknowledged=0)

    # Filters: a plain GET form, sent by its <noscript> button.
    page.get_by_label("Priority").select_option("high")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"/dashboard\?.*priority=high"))
    expect(rows(page)).to_have_count(2)
    expect(row(page, brakes)).to_be_visible()
    expect(row(page, tyres)).to_be_visible()
    shot(page, "1-filtered")

    # Acknowledge: a full page load that lands back on the same filtered list.
    row(page, brakes).get_by_role("button", name="Acknowledge").click()
    expect(page.get_by_role("status")).to_have_text("Request acknowledged.")
    expect(page).to_have_url(re.compile(r"/dashboard\?(?=.*status=new)(?=.*priority=high)"))
    expect(page.get_by_label("Priority")).to_have_value("high")
    expect_counts(page, new=3, acknowledged=1)
    expect(rows(page)).to_have_count(1)
    expect(row(page, tyres)).to_be_visible()
    shot(page, "2-acknowledged")

    # Tabs are plain links that keep the filters.
    page.locator('#counts a[data-status="acknowledged"]').click()
    expect(page).to_have_url(
        re.compile(r"/dashboard\?(?=.*status=acknowledged)(?=.*priority=high)")
    )
    expect(rows(page)).to_have_count(1)
    expect(row(page, brakes).locator(".status")).to_have_text("acknowledged")

    # "Assigned to me" and "Clear filters" work the same way.
    page.locator('#counts a[data-status="new"]').click()
    page.get_by_label("Priority").select_option("")
    page.get_by_label("Assigned to me").check()
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"mine=1"))
    expect(rows(page)).to_have_count(1)
    expect(row(page, mirror)).to_be_visible()
    page.get_by_role("link", name="Clear filters").click()
    expect(page).to_have_url(re.compile(r"/dashboard\?status=new$"))
    expect(rows(page)).to_have_count(3)
    expect(page.get_by_label("Assigned to me")).not_to_be_checked()
    shot(page, "3-cleared")


# -- 5. older pages --------------------------------------------------------------------------


def test_load_older_appends_the_next_pages_without_duplicates(page, live_server, world):
    # 60 requests from one transaction share created_at: only request_id orders them.
    seeded = world.add_requests(*({"title": f"Job {n:02d}"} for n in range(60)), same_time=True)
    open_dashboard(page, live_server, BOB)
    expect(rows(page)).to_have_count(25)
    expect_counts(page, new=60)
    mark(page)

    more = page.get_by_role("button", name="Load older requests")
    more.scroll_into_view_if_needed()
    shot(page, "1-load-more", full_page=False)
    more.click()
    expect(rows(page)).to_have_count(50)
    more.scroll_into_view_if_needed()
    shot(page, "2-one-more-page", full_page=False)
    more.click()
    expect(rows(page)).to_have_count(60)
    expect(more).to_have_count(0)  # nothing older left

    ids = rows(page).evaluate_all("rows => rows.map(row => row.id)")
    assert len(set(ids)) == len(ids) == 60
    assert set(ids) == {f"row-{rid}" for rid in seeded}
    expect_not_reloaded(page)


# -- 6. the pages fit a desktop and a phone ---------------------------------------------------


def no_sideways_scroll(page: Page) -> None:
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"the page scrolls sideways: {width}"


def top_of(locator: Locator) -> float:
    box = locator.bounding_box()
    assert box is not None
    return box["y"]


def test_the_pages_fit_a_desktop_and_a_phone(page, live_server, world):
    """Screenshots for a look (test-artifacts/screenshots), and the layout rules they rely on."""
    brakes, *_ = world.add_requests(
        {
            "title": "Brakes squeal at low speed",
            "vehicle": "Unit 14 · KX21 ABC",
            "priority": "urgent",
        },
        {
            "title": (
                "Annual inspection due, also check the tail lift hydraulics and the cab heater"
            ),
            "vehicle": "Unit 3 · LD19 XYZ · VIN WDB9634031L123456",
            "priority": "high",
        },
        {"title": "Left headlight out", "vehicle": "Unit 8 · MN70 QRS", "assigned_to": WES},
        {"title": "Tyre pressure warning", "vehicle": "Unit 7 · PX68 LMN", "priority": "low"},
        {
            "title": "Wipers smear",
            "vehicle": "Unit 2",
            "status": "acknowledged",
            "assigned_to": BOB,
        },
    )
    page.set_viewport_size({"width": 1280, "height": 800})
    open_dashboard(page, live_server, BOB)
    filters = page.locator("form.filters")
    search, priority = filters.locator("#q"), filters.locator("select[name=priority]")
    mine = filters.locator("label.inline")
    # Desktop: the filters share one row; each action fits on the card.
    assert abs(top_of(search) - top_of(priority)) < 4
    assert top_of(mine) < top_of(priority) + priority.bounding_box()["height"]
    row(page, brakes).locator("details.decline > summary").click()
    row(page, brakes).get_by_label("Reason for declining").fill("No capacity this week")
    shot(page, "dashboard-desktop")

    # The request page: take it on, add a note, look at the timeline.
    row(page, brakes).locator(".request-title").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Brakes squeal at low speed")
    page.get_by_role("button", name="Acknowledge").click()
    expect(page.get_by_role("status")).to_have_text("Request acknowledged.")
    page.get_by_label("Add a note (both companies see it)").fill(
        "Booked for Thursday 8:00, bay 2. Please leave the keys at the gate."
    )
    page.get_by_role("button", name="Add note").click()
    expect(page.get_by_role("status")).to_have_text("Note added.")
    expect(page.locator("ol.timeline > li")).to_have_count(3)  # seen, acknowledged, note
    request_url = page.url
    shot(page, "request-desktop")

    page.goto("/dashboard/company")
    expect(page.get_by_role("heading", name="People")).to_be_visible()
    shot(page, "company-desktop")

    page.goto("/dashboard?status=declined")
    expect(page.locator("#empty-state")).to_be_visible()
    shot(page, "empty-desktop")

    # A phone: everything stacks, nothing scrolls sideways, buttons stay thumb-sized.
    page.set_viewport_size(PHONE)
    page.goto("/dashboard")
    no_sideways_scroll(page)
    assert top_of(priority) > top_of(search) + 20  # stacked
    for button in page.locator(".request-actions :is(button, summary)").all():
        if button.is_visible():
            assert button.bounding_box()["height"] >= 40
    shot(page, "dashboard-phone")
    page.goto(request_url)
    no_sideways_scroll(page)
    shot(page, "request-phone")
    page.goto("/dashboard/company")
    no_sideways_scroll(page)
    shot(page, "company-phone")
    page.goto("/dashboard?status=declined")
    no_sideways_scroll(page)
    shot(page, "empty-phone")


# -- 7. a poll leaves what the person is typing alone ------------------------------------------


def test_a_poll_keeps_a_half_typed_decline_reason(page, live_server, world):
    """Polls swap in rows that changed; one that did not change is left as it is.

    A poll re-sends every row changed in its look-back window; static/dashboard.js
    skips the redraw when the row's version (data-updated) is the one on screen.
    """
    brakes, _lights = world.add_requests(
        {"title": "Brakes squeal at low speed"}, {"title": "Left headlight out"}
    )
    open_dashboard(page, live_server, BOB)
    mark(page)
    card = row(page, brakes)
    card.get_by_role("button", name="Assign to me").click()  # the row stays on this tab
    expect(card.locator(".request-when")).to_contain_text(NAMES[BOB])

    card.locator("details.decline > summary").click()
    card.get_by_label("Reason for declining").fill("No capacity this week")
    for _ in range(3):  # nothing changed on this row since; three polls come and go
        with page.expect_response(lambda r: "/dashboard/updates" in r.url):
            pass
    wait_until(page, "!document.querySelector('#poller.htmx-request')")
    expect(card.locator("details.decline")).to_have_attribute("open", "")
    expect(card.get_by_label("Reason for declining")).to_have_value("No capacity this week")
    expect_not_reloaded(page)


# -- 8. a poll on its way while switching tabs --------------------------------------------------


# Counts the page's XHRs to /dashboard/updates and which have ended (loaded or aborted):
# "loadend" fires after htmx's own onload handler, which swaps synchronously.
TRACK_POLLS = """
window.__polls = [];
const open = XMLHttpRequest.prototype.open;
XMLHttpRequest.prototype.open = function (method, url, ...rest) {
    if (String(url).includes('/dashboard/updates')) {
        const poll = {url: String(url), done: false};
        window.__polls.push(poll);
        this.addEventListener('loadend', () => { poll.done = true; });
    }
    return open.call(this, method, url, ...rest);
};
"""


def test_switching_tabs_while_a_poll_is_on_its_way_keeps_the_new_tab(page, live_server, world):
    """A late poll for the old tab must not land on the new one.

    Its out-of-band parts would put the old tab's poller in place of the new one and
    delete the new list's rows that left the old tab. The tab links and the filters
    form abort a poll on its way (hx-sync on #dashboard-body); a slow network holds
    the poll here until after the switch.
    """
    brakes, _lights = world.add_requests(
        {"title": "Brakes squeal at low speed"}, {"title": "Left headlight out"}
    )
    page.add_init_script(TRACK_POLLS)
    open_dashboard(page, live_server, BOB)
    pause_polling(page)
    row(page, brakes).get_by_role("button", name="Acknowledge").click()
    expect_counts(page, new=1, acknowledged=1)

    held = []  # the next poll's request waits here: a slow network
    page.route("**/dashboard/updates**", lambda route: held.append(route))
    resume_polling(page)
    wait_until(page, "document.querySelector('#poller.htmx-request') !== null")
    pause_polling(page, settle=False)  # no further polls; one is on its way

    page.locator('#counts a[data-status="acknowledged"]').click()
    expect(page).to_have_url(re.compile(r"/dashboard\?status=acknowledged$"))
    expect(rows(page)).to_have_count(1)
    expect(page.locator("#poller")).to_have_attribute("hx-get", re.compile(r"status=acknowledged"))

    assert len(held) == 1
    with contextlib.suppress(Error):  # a request the page aborted cannot be continued
        held[0].continue_()  # the late poll arrives
    wait_until(page, "window.__polls.every(poll => poll.done)")
    expect(page.locator("#poller")).to_have_attribute("hx-get", re.compile(r"status=acknowledged"))
    expect(rows(page)).to_have_count(1)
    expect(row(page, brakes).locator(".status")).to_have_text("acknowledged")
