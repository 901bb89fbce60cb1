"""The dashboard, server side: pages and fragments, filters, keyset pages, live updates,
row actions, counts, and isolation between companies."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
from sqlalchemy import func, select, text

from fleetos.extensions import db
from fleetos.models import STATUSES, RequestStatusCount, ServiceRequest
from tests.support.apps import database
from tests.support.web import add_requests, htmx, load_request, row_ids, without_csrf

SINCE = re.compile(r"since=[^&\"]+")


def timeless(html: str) -> str:
    """``html`` without what changes with the clock: the poll time and the CSRF tokens."""
    return without_csrf(SINCE.sub("", html))


def body_of(page: str) -> str:
    start = page.index('<div id="dashboard-body">')
    return page[start : page.index("</main>")].strip()


def test_full_page_and_fragment_come_from_one_template(app, world, as_):
    add_requests(app, world, 3)
    bob = as_("bob")
    page = bob.client.get("/dashboard?status=new")
    part = htmx(bob, "/dashboard?status=new")
    assert "<html" in page.text and "<html" not in part.text
    assert part.text.strip().startswith('<div id="dashboard-body">')
    assert "HX-Request" in page.headers["Vary"] and "HX-Request" in part.headers["Vary"]
    # The fragment is exactly the part of the page it replaces (the clock aside).
    assert timeless(part.text.strip()) in timeless(page.text)


def test_history_restore_gets_the_whole_page(app, world, as_):
    bob = as_("bob")
    restored = bob.client.get(
        "/dashboard", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )
    assert "<html" in restored.text


def test_every_hx_get_has_a_real_href_and_every_action_is_a_form(app, world, as_):
    add_requests(app, world, 30)
    page = as_("bob").client.get("/dashboard").text
    for tag in re.findall(r"<(?:a|form|div|li)\b[^>]*\bhx-get=[^>]*>", page):
        if tag.startswith("<a"):
            assert 'href="' in tag, tag
        elif tag.startswith("<form"):
            assert 'action="' in tag and 'method="get"' in tag, tag
        else:
            assert 'id="poller"' in tag, tag  # the poller is the one extra, for live updates
    for tag in re.findall(r"<form\b[^>]*\bhx-post=[^>]*>", page):
        assert 'method="post"' in tag and 'action="' in tag, tag


def test_filters_live_in_the_url_and_tabs_keep_them(app, world, as_):
    add_requests(app, world, 2, priority="high")
    add_requests(app, world, 2, priority="low")
    page = as_("bob").client.get("/dashboard?status=new&priority=high&q=job").text
    assert len(row_ids(page)) == 2
    tab = re.search(r'<a href="([^"]+)"[^>]*data-status="acknowledged"', page).group(1)
    assert unescape(tab) == "/dashboard?status=acknowledged&priority=high&q=job"
    assert 'value="job"' in page and '<option value="high" selected>' in page


def test_unknown_filter_values_fall_back_quietly(app, world, as_):
    response = as_("bob").client.get("/dashboard?status=bogus&priority=asap&after=garbage")
    assert response.status_code == 200
    assert 'aria-current="page" data-status="new"' in response.text


def test_search_treats_wildcards_literally(app, world, as_):
    add_requests(app, world, 2)
    page = as_("bob").client.get("/dashboard?status=new&q=%25").text
    assert row_ids(page) == []
    assert "Nothing matches" in page


def test_assigned_to_me(app, world, as_):
    mine = add_requests(app, world, 2, assigned_to_contact_id=world.contacts["bob"])
    add_requests(app, world, 3)
    page = as_("bob").client.get("/dashboard?status=new&mine=1").text
    assert sorted(row_ids(page)) == sorted(str(i) for i in mine)


def walk(browser, url: str) -> list[str]:
    """Follow "load older" from the first page to the last, as htmx would."""
    page = browser.client.get(url).text
    seen = row_ids(page)
    more = re.search(r'hx-get="(/dashboard/rows[^"]+)"', page)
    while more:
        part = htmx(browser, unescape(more.group(1))).text
        seen += row_ids(part)
        more = re.search(r'hx-get="(/dashboard/rows[^"]+)"', part)
    return seen


QUICK = {"supplier": "quick", "fleet": "northwind"}  # a supplier with no other work


def test_keyset_pages_neither_skip_nor_repeat_when_work_arrives_between_pages(app, world, as_):
    older = add_requests(app, world, 60, **QUICK)
    bob = as_("quick")
    first = bob.client.get("/dashboard?status=new").text
    assert row_ids(first) == [str(i) for i in reversed(older)][:25]
    add_requests(
        app, world, 5, start=datetime.now(UTC).replace(tzinfo=None), **QUICK
    )  # lands meanwhile
    more = unescape(re.search(r'hx-get="(/dashboard/rows[^"]+)"', first).group(1))
    seen = row_ids(first)
    while more:
        part = htmx(bob, more).text
        seen += row_ids(part)
        found = re.search(r'hx-get="(/dashboard/rows[^"]+)"', part)
        more = unescape(found.group(1)) if found else None
    assert seen == [str(i) for i in reversed(older)]  # all 60, once each, in order


def test_same_created_at_is_ordered_by_id_across_pages(app, world, as_):

    same = datetime(2026, 1, 1, 12, 0)
    ids = []
    for _ in range(30):
        ids += add_requests(app, world, 1, start=same, **QUICK)
    seen = walk(as_("quick"), "/dashboard?status=new")
    assert sorted(seen) == sorted(str(i) for i in ids) and len(seen) == len(set(seen)) == 30


def test_load_older_without_javascript_is_a_plain_link(app, world, as_):
    add_requests(app, world, 30, **QUICK)
    bob = as_("quick")
    page = bob.client.get("/dashboard").text
    href = unescape(
        re.search(r'<a role="button"[^>]*href="(/dashboard\?[^"]*after=[^"]+)"', page).group(1)
    )
    older = bob.client.get(href).text
    assert len(row_ids(older)) == 5 and "Newest" in older
    redirect = bob.client.get(href.replace("/dashboard?", "/dashboard/rows?"))
    assert redirect.status_code == 303 and "/dashboard?" in redirect.headers["Location"]


def test_poll_brings_new_rows_and_removes_rows_that_left(app, world, as_):
    first = add_requests(app, world, 2)
    bob = as_("bob")
    page = bob.client.get("/dashboard?status=new").text
    poll = unescape(re.search(r'id="poller" hx-get="([^"]+)"', page).group(1))

    arrived = add_requests(
        app, world, 1, start=datetime.now(UTC).replace(tzinfo=None) + timedelta(minutes=1)
    )[0]
    wes = as_("wes")
    wes.post(
        f"/requests/{first[0]}/transition", {"to": "acknowledged", "from": "new"}, page="/dashboard"
    )

    update = htmx(bob, poll).text
    main_part = update.split("hx-swap-oob")[0]
    assert f'id="row-{arrived}"' in main_part  # new work, prepended
    assert f'<li id="row-{first[0]}" hx-swap-oob="delete">' in update  # moved to another tab
    assert 'id="counts" class="tabs"' in update and 'id="poller"' in update
    next_poll = unescape(re.search(r'id="poller" hx-get="([^"]+)"', update).group(1))
    assert str(arrived) in next_poll  # the next poll starts above the new top row
    assert f'id="row-{arrived}"' not in htmx(bob, next_poll).text.split("hx-swap-oob")[0]


def test_row_action_with_htmx_swaps_the_row_and_the_counts(app, world, as_):
    [rid] = add_requests(app, world, 1)
    bob = as_("bob")
    token = bob.csrf("/dashboard")
    response = bob.client.post(
        f"/dashboard/rows/{rid}/transition",
        headers={"HX-Request": "true"},
        data={
            "to": "acknowledged",
            "from": "new",
            "view": "row",
            "back": "/dashboard?status=new",
            "csrf_token": token,
        },
    )
    assert response.status_code == 200
    assert response.text.strip().startswith(f'<li id="row-{rid}"')
    assert "status-acknowledged" in response.text
    counts = re.search(r'<nav id="counts"[^>]*hx-swap-oob="true"', response.text)
    assert counts
    assert re.search(r'data-status="new">\s*New <span class="count">1</span>', response.text)
    assert re.search(
        r'data-status="acknowledged">\s*Acknowledged <span class="count">1</span>', response.text
    )

    late = bob.client.post(
        f"/dashboard/rows/{rid}/transition",
        headers={"HX-Request": "true"},
        data={"to": "acknowledged", "from": "new", "view": "row", "csrf_token": token},
    )
    assert late.status_code == 409
    assert "This request was already acknowledged by Bob" in late.text
    assert late.text.strip().startswith(f'<li id="row-{rid}"')


def test_row_action_without_javascript_goes_back_to_the_same_dashboard(app, world, as_):
    [rid] = add_requests(app, world, 1)
    bob = as_("bob")
    back = "/dashboard?status=new&priority=normal"
    response = bob.post(
        f"/dashboard/rows/{rid}/transition",
        {"to": "acknowledged", "from": "new", "view": "row", "back": back},
    )
    assert response.status_code == 303 and response.headers["Location"] == back
    assert "Request acknowledged." in bob.client.get(back).text
    stale = bob.post(
        f"/dashboard/rows/{rid}/transition",
        {"to": "acknowledged", "from": "new", "view": "row", "back": back},
    )
    assert stale.status_code == 303
    assert "already acknowledged by Bob" in bob.client.get(back).text
    offsite = bob.post(
        f"/dashboard/rows/{rid}/assign",
        {"contact_id": str(world.contacts["bob"]), "view": "row", "back": "//evil.example/"},
    )
    assert offsite.headers["Location"] == f"/requests/{rid}"


def test_assign_to_me_from_a_row(app, world, as_):
    [rid] = add_requests(app, world, 1)
    bob = as_("bob")
    response = bob.client.post(
        f"/dashboard/rows/{rid}/assign",
        headers={"HX-Request": "true"},
        data={
            "contact_id": str(world.contacts["bob"]),
            "view": "row",
            "csrf_token": bob.csrf("/dashboard"),
        },
    )
    assert response.status_code == 200 and "· Bob" in response.text
    assert load_request(app, rid).assigned_to_contact_id == world.contacts["bob"]


def test_a_row_rendered_before_rows_had_their_own_endpoints_still_acts(app, world, as_):
    """A dashboard left open across a deploy posts its rows' forms to the request's URLs;
    a 307 hands each post, body and all, to the row's own endpoint (as browsers do)."""
    first, second = add_requests(app, world, 2)
    bob = as_("bob")
    token = bob.csrf("/dashboard")

    def post_as_a_browser(url, data, headers):
        handed_over = bob.client.post(url, data=data, headers=headers)
        assert handed_over.status_code == 307
        return bob.client.post(handed_over.headers["Location"], data=data, headers=headers)

    swapped = post_as_a_browser(
        f"/requests/{first}/transition",
        {"to": "acknowledged", "from": "new", "view": "row"},
        {"HX-Request": "true", "X-CSRFToken": token},
    )
    assert swapped.status_code == 200
    assert swapped.text.strip().startswith(f'<li id="row-{first}"')
    assert load_request(app, first).status == "acknowledged"
    back = "/dashboard?status=new"
    plain = post_as_a_browser(
        f"/requests/{second}/assign",
        {"contact_id": str(world.contacts["bob"]), "view": "row", "back": back},
        {"X-CSRFToken": token},
    )
    assert plain.status_code == 303 and plain.headers["Location"] == back
    assert load_request(app, second).assigned_to_contact_id == world.contacts["bob"]


def expected_counts(app, company_id, side: str) -> dict[str, int]:
    column = (
        ServiceRequest.supplier_company_id
        if side == "supplier"
        else ServiceRequest.fleet_company_id
    )
    with database(app):
        found = dict(
            db.session.execute(
                select(ServiceRequest.status, func.count())
                .where(column == company_id)
                .group_by(ServiceRequest.status)
            ).all()
        )
    return {s: found.get(s, 0) for s in STATUSES}


def test_counts_table_stays_exact_through_inserts_updates_and_deletes(app, world, as_):
    ids = add_requests(app, world, 6)
    add_requests(app, world, 3, supplier="quick", fleet="northwind", status="in_progress")
    with database(app):
        db.session.execute(
            text("UPDATE service_requests SET status = 'acknowledged' WHERE request_id = :i"),
            {"i": ids[0]},
        )
        db.session.execute(
            text("UPDATE service_requests SET supplier_company_id = :q WHERE request_id = :i"),
            {"i": ids[1], "q": world.companies["quick"]},
        )
        db.session.execute(
            text("DELETE FROM service_requests WHERE request_id = :i"), {"i": ids[2]}
        )
        db.session.execute(
            text("UPDATE service_requests SET title = 'renamed'")
        )  # counts untouched
        db.session.commit()
        stored = {
            (r.company_id, r.side, r.status): r.n
            for r in db.session.scalars(select(RequestStatusCount))
        }
    for key, (side, company) in {
        "acme": ("fleet", "acme"),
        "northwind": ("fleet", "northwind"),
        "bobs": ("supplier", "bobs"),
        "quick": ("supplier", "quick"),
    }.items():
        expected = expected_counts(app, world.companies[company], side)
        got = {s: stored.get((world.companies[company], side, s), 0) for s in STATUSES}
        assert got == expected, key


@pytest.mark.parametrize("viewer", ["dana", "nora", "bob", "quick"])
def test_no_other_companys_row_or_count_in_any_partial(app, world, as_, viewer):
    add_requests(app, world, 4)  # acme -> bobs
    add_requests(app, world, 3, fleet="northwind", supplier="quick")
    add_requests(app, world, 2, fleet="northwind", supplier="bobs", status="acknowledged")
    browser = as_(viewer)
    with database(app):
        company_id = (
            world.contacts
            and db.session.execute(
                text("SELECT company_id FROM contacts WHERE contact_id = :c"),
                {"c": world.contacts[viewer]},
            ).scalar()
        )
        side = "supplier" if viewer in ("bob", "quick") else "fleet"
        column = "supplier_company_id" if side == "supplier" else "fleet_company_id"
        own = {
            str(r)
            for r in db.session.scalars(
                text(f"SELECT request_id FROM service_requests WHERE {column} = :c"),
                {"c": company_id},
            )
        }
    seen: set[str] = set()
    for status in STATUSES:
        for url in (
            f"/dashboard?status={status}",
            f"/dashboard/rows?status={status}",
            f"/dashboard/updates?status={status}&since=2000-01-01T00:00:00",
        ):
            seen |= set(row_ids(htmx(browser, url).text))
    assert seen == own
    counts_html = htmx(browser, "/dashboard/counts").text
    expected = expected_counts(app, company_id, side)
    for status, n in expected.items():
        assert re.search(
            rf'data-status="{status}">\s*[\w ]+ <span class="count">{n}</span>', counts_html
        ), status


def test_company_page_shows_contacts_as_they_emerged_and_activity(app, world, as_):
    bob = as_("bob")
    bob.post(f"/requests/{world.request_id}/notes", {"body": "On it"}, page="/dashboard")
    page = bob.client.get("/dashboard/company").text
    assert "bob@bobsrepair.com" in page and "workshop@bobsrepair.com" in page
    assert "dana@acme-fleet.com" not in page  # another company's people
    assert "First seen" in page and "added a note" in page
    invite = bob.post(
        "/auth/invite",
        {"email": "new.mechanic@bobsrepair.com", "back": "/dashboard/company"},
        page="/dashboard/company",
    )
    assert invite.status_code == 303 and invite.headers["Location"] == "/dashboard/company"
    assert "invited new.mechanic@bobsrepair.com" in bob.client.get("/dashboard/company").text
    activity = htmx(bob, "/dashboard/company")
    assert activity.text.strip().startswith('<section id="activity"')


def test_dashboard_needs_sign_in(app, smtp):
    from tests.support.web import Browser

    client = Browser(app.test_client(), smtp).client
    for url in (
        "/dashboard",
        "/dashboard/rows",
        "/dashboard/counts",
        "/dashboard/updates",
        "/dashboard/company",
    ):
        assert client.get(url).status_code == 303, url
