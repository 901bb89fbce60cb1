"""The lifecycle, races, routing of later news, assignment, notes and the timeline."""

from __future__ import annotations

import re
import threading

import pytest

from fleetos.lifecycle import STATUSES, TRANSITIONS
from tests.support.web import (
    load_request,
    outbox_to,
    request_events,
    row_counts,
    set_status,
    signed_in,
)


def move(browser, world, to, *, seen=None, reason=""):
    data = {"to": to, "reason": reason}
    if seen:
        data["from"] = seen
    return browser.post(f"/requests/{world.request_id}/transition", data, page="/dashboard")


def test_the_whole_lifecycle_is_audited_and_told_to_the_fleet(app, world, as_):
    bob = as_("bob")
    for seen, to in [
        ("new", "acknowledged"),
        ("acknowledged", "in_progress"),
        ("in_progress", "completed"),
    ]:
        response = move(bob, world, to, seen=seen)
        assert response.status_code == 303
        assert load_request(app, world.request_id).status == to
    events = [e for e in request_events(app, world.request_id) if e.event_type != "request.viewed"]
    assert [e.event_type for e in events] == [
        "request.acknowledged",
        "request.in_progress",
        "request.completed",
    ]
    assert all(e.contact_id == world.contacts["bob"] for e in events)
    assert [(e.metadata_["from"], e.metadata_["to"]) for e in events] == [
        ("new", "acknowledged"),
        ("acknowledged", "in_progress"),
        ("in_progress", "completed"),
    ]
    assert {e.metadata_["route_reason"] for e in events} == {"submitting contact"}
    assert len(outbox_to(app, "dana@acme-fleet.com")) == 3


@pytest.mark.parametrize("start", STATUSES)
@pytest.mark.parametrize("to", ["acknowledged", "in_progress", "completed", "declined"])
def test_every_transition_is_allowed_or_refused_by_the_lifecycle(app, world, as_, start, to):
    set_status(app, world.request_id, start)
    before = row_counts(app)
    response = move(as_("bob"), world, to, seen=start, reason="No parts for this model")
    if to in TRANSITIONS[start]:
        assert response.status_code == 303
        assert load_request(app, world.request_id).status == to
    else:
        assert response.status_code == 409
        assert "cannot be" in response.text
        assert load_request(app, world.request_id).status == start
        assert row_counts(app) == before


def test_declining_needs_a_reason(app, world, as_):
    response = move(as_("bob"), world, "declined", seen="new", reason="   ")
    assert response.status_code == 422 and "Say why you decline" in response.text
    assert load_request(app, world.request_id).status == "new"
    response = move(as_("bob"), world, "declined", seen="new", reason="We don't do buses")
    assert response.status_code == 303
    assert request_events(app, world.request_id)[-1].metadata_["reason"] == "We don't do buses"


def test_only_the_supplier_moves_a_request(app, world, as_):
    before = row_counts(app)
    response = move(as_("dana"), world, "acknowledged", seen="new")
    assert response.status_code == 403
    assert row_counts(app) == before


def test_an_unknown_step_is_refused(app, world, as_):
    assert move(as_("bob"), world, "teleported", seen="new").status_code == 422
    assert move(as_("bob"), world, "new", seen="new").status_code == 422


def test_the_second_of_two_people_is_told_who_acted_first(app, world, as_):
    bob, wes = as_("bob"), as_("wes")
    wes_page = wes.csrf(f"/requests/{world.request_id}")  # Wes looks at it while it is new
    assert move(bob, world, "acknowledged", seen="new").status_code == 303
    late = wes.client.post(
        f"/requests/{world.request_id}/transition",
        data={"to": "acknowledged", "from": "new", "csrf_token": wes_page},
    )
    assert late.status_code == 409
    assert "This request was already acknowledged by Bob" in late.text
    assert (
        len(
            [
                e
                for e in request_events(app, world.request_id)
                if e.event_type == "request.acknowledged"
            ]
        )
        == 1
    )


def test_a_stale_page_is_told_who_moved_the_request_and_when(app, world, as_):
    bob, wes = as_("bob"), as_("wes")
    assert move(bob, world, "acknowledged", seen="new").status_code == 303
    late = move(wes, world, "declined", seen="new", reason="Too busy")
    assert late.status_code == 409
    assert re.search(
        r"This request was already acknowledged by Bob \(\d\d \w{3} \d{4}, \d\d:\d\d UTC\)",
        late.text,
    )
    assert load_request(app, world.request_id).status == "acknowledged"


def test_a_from_that_no_step_explains_says_the_page_was_out_of_date(app, world, as_):
    """Issue 11 (9): never "This request was already new", and no made-up actor."""
    before = row_counts(app)
    stale = move(as_("bob"), world, "in_progress", seen="acknowledged")  # it is still new
    assert stale.status_code == 409
    assert "This page was out of date: the request is new now." in stale.text
    assert "already new" not in stale.text
    set_status(app, world.request_id, "in_progress")  # moved outside FleetOS (a v1 record)
    late = move(as_("bob"), world, "acknowledged", seen="new")
    assert late.status_code == 409
    assert "This page was out of date: the request is in progress now." in late.text
    assert row_counts(app) == before


def test_concurrent_transitions_one_wins_the_other_is_told(app, world, smtp):
    people = [signed_in(app, smtp, world.contacts[name]) for name in ("bob", "wes")]
    tokens = [p.csrf(f"/requests/{world.request_id}") for p in people]
    barrier = threading.Barrier(2)
    results: list[tuple[int, str]] = []

    def act(person, token, to):
        barrier.wait()
        response = person.client.post(
            f"/requests/{world.request_id}/transition",
            data={"to": to, "from": "new", "reason": "busy", "csrf_token": token},
        )
        results.append((response.status_code, response.text))

    threads = [
        threading.Thread(target=act, args=(p, t, to))
        for p, t, to in zip(people, tokens, ["acknowledged", "declined"], strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(code for code, _ in results) == [303, 409]
    loser = next(text for code, text in results if code == 409)
    final = load_request(app, world.request_id).status
    verb = {"acknowledged": "acknowledged", "declined": "declined"}[final]
    assert f"This request was already {verb} by" in loser
    moves = [e for e in request_events(app, world.request_id) if e.event_type != "request.viewed"]
    assert len(moves) == 1


# --- routing of later news ----------------------------------------------------


def note(browser, world, body):
    return browser.post(f"/requests/{world.request_id}/notes", {"body": body}, page="/dashboard")


def last_route(app, world):
    facts = request_events(app, world.request_id)[-1].metadata_
    return facts["routed_to"], facts["route_reason"]


def test_news_from_the_fleet_goes_to_the_assignee(app, world, as_):
    as_("bob").post(
        f"/requests/{world.request_id}/assign",
        {"contact_id": str(world.contacts["wes"])},
        page="/dashboard",
    )
    note(as_("dana"), world, "Keys are at reception.")
    assert last_route(app, world) == ("workshop@bobsrepair.com", "assigned contact")


def test_news_from_the_fleet_without_assignee_goes_to_the_last_active_contact(app, world, as_):
    note(as_("dana"), world, "Any news?")
    assert last_route(app, world) == ("bob@bobsrepair.com", "last active contact: no assignee")


def test_news_for_a_supplier_without_contacts_goes_to_the_address_it_was_sent_to(app, world, as_):
    as_("dana").post(
        "/requests",
        {"supplier_email": "desk@garage-nine.example", "vehicle": "V", "title": "T"},
        page="/requests/new",
    )
    from tests.requests.test_create import new_request

    created = new_request(app)
    world.request_id = created.request_id
    note(as_("dana"), world, "Please call me.")
    assert last_route(app, world) == (
        "desk@garage-nine.example",
        "the address the request was sent to: no contact yet",
    )


def test_news_from_the_supplier_goes_to_the_submitter(app, world, as_):
    note(as_("wes"), world, "We can do Thursday.")
    assert last_route(app, world) == ("dana@acme-fleet.com", "submitting contact")
    assert outbox_to(app, "dana@acme-fleet.com")


def test_news_for_a_v1_request_without_submitter_goes_to_the_fleets_last_active_contact(
    app, world, as_
):
    from fleetos.extensions import db
    from fleetos.models import ServiceRequest
    from tests.support.apps import database

    with database(app):
        db.session.get(ServiceRequest, world.request_id).submitted_by_contact_id = None
        db.session.commit()
    note(as_("bob"), world, "Done soon.")
    assert last_route(app, world) == (
        "dana@acme-fleet.com",
        "last active contact: no submitting contact",
    )


# --- assignment, notes, timeline ------------------------------------------------------


def test_assign_to_a_colleague_or_to_myself(app, world, as_):
    bob = as_("bob")
    response = bob.post(
        f"/requests/{world.request_id}/assign",
        {"contact_id": str(world.contacts["wes"])},
        page="/dashboard",
    )
    assert response.status_code == 303
    assert load_request(app, world.request_id).assigned_to_contact_id == world.contacts["wes"]
    assert outbox_to(app, "workshop@bobsrepair.com")  # told it is theirs now
    bob.post(
        f"/requests/{world.request_id}/assign",
        {"contact_id": str(world.contacts["bob"])},
        page="/dashboard",
    )
    assert load_request(app, world.request_id).assigned_to_contact_id == world.contacts["bob"]


@pytest.mark.parametrize("other", ["quick", "dana", "nora"])
def test_assign_cannot_point_at_another_companys_contact(app, world, as_, other):
    before = row_counts(app)
    response = as_("bob").post(
        f"/requests/{world.request_id}/assign",
        {"contact_id": str(world.contacts[other])},
        page="/dashboard",
    )
    assert response.status_code == 422 and "Choose someone from your own company" in response.text
    assert load_request(app, world.request_id).assigned_to_contact_id is None
    assert row_counts(app) == before


def test_the_fleet_does_not_assign(app, world, as_):
    response = as_("dana").post(
        f"/requests/{world.request_id}/assign",
        {"contact_id": str(world.contacts["dana"])},
        page="/dashboard",
    )
    assert response.status_code == 403


def test_notes_from_both_sides_and_bad_notes_keep_what_was_typed(app, world, as_):
    assert note(as_("dana"), world, "Keys at reception.").status_code == 303
    assert note(as_("bob"), world, "Thanks, on it.").status_code == 303
    empty = note(as_("bob"), world, "   ")
    assert empty.status_code == 422 and "Write something first" in empty.text
    long = note(as_("bob"), world, "z" * 5001)
    assert long.status_code == 422 and "under 5000 characters" in long.text
    # What was typed comes back, up to the note's maximum length (never more).
    assert ">" + "z" * 5000 + "</textarea>" in long.text
    notes = [
        e.metadata_["body"]
        for e in request_events(app, world.request_id)
        if e.event_type == "request.note"
    ]
    assert notes == ["Keys at reception.", "Thanks, on it."]


def test_timeline_shows_every_step_with_who_and_a_read_receipt(app, world, as_):
    dana, bob = as_("dana"), as_("bob")
    assert "Seen by" not in dana.client.get(f"/requests/{world.request_id}").text
    bob.client.get(f"/requests/{world.request_id}")  # the supplier's first look
    bob.client.get(f"/requests/{world.request_id}")  # a second look adds nothing
    move(bob, world, "acknowledged", seen="new")
    bob.post(
        f"/requests/{world.request_id}/assign",
        {"contact_id": str(world.contacts["wes"])},
        page="/dashboard",
    )
    note(dana, world, "Keys at reception.")
    page = dana.client.get(f"/requests/{world.request_id}").text
    timeline = page[page.index('id="timeline"') :]
    for text in [
        "Seen by <strong>Bob</strong> (Bob&#39;s Truck Repair)",
        "<strong>Bob</strong> (Bob&#39;s Truck Repair) acknowledged it",
        "assigned it to <strong>Wes</strong>",
        "<strong>Dana</strong> (Acme Fleet) wrote:",
        "Keys at reception.",
        "UTC",
    ]:
        assert text in timeline, text
    assert timeline.index("Seen by") < timeline.index("acknowledged it") < timeline.index("wrote:")
    assert (
        len([e for e in request_events(app, world.request_id) if e.event_type == "request.viewed"])
        == 1
    )


def test_the_fleet_sees_no_supplier_actions(app, world, as_):
    page = as_("dana").client.get(f"/requests/{world.request_id}").text
    assert "Acknowledge" not in page and "Assign to" not in page
    page = as_("bob").client.get(f"/requests/{world.request_id}").text
    assert "Acknowledge" in page and "Decline this request" in page and "Start work" not in page


def test_a_poll_answered_after_a_note_does_not_lose_its_message(app, world, as_):
    """The request page polls its timeline. A poll sent before a note's POST was answered
    carries the cookie from before the note; answered after it, it must not set that cookie
    again, or the browser forgets the "Note added." the POST put in its session."""
    bob = as_("bob")
    page = f"/requests/{world.request_id}"
    assert bob.client.get(page).status_code == 200
    cookie = bob.client.get_cookie("fleetos_session")
    assert cookie is not None
    poller = app.test_client()  # the same browser, its poll on the way with that cookie
    poller.set_cookie("fleetos_session", cookie.value)
    added = bob.post(f"{page}/notes", {"body": "Pads ordered."}, page=page)
    assert added.status_code == 303
    poll = poller.get(f"{page}/timeline", headers={"HX-Request": "true"})
    assert poll.status_code == 200 and "Pads ordered." in poll.text
    assert "Set-Cookie" not in poll.headers
    assert "Note added." in bob.client.get(page).text
