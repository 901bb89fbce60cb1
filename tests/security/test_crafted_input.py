"""Issue 10, items 1 and 7: crafted input is a 400 or 422 with a message, never a 500.

As reported: a title with a line break reached the outbox (and a mail subject);
a NUL byte in any text field or in ``q`` was a 500 (PostgreSQL cannot store
NUL); ``/dashboard/updates?since=0001-01-01T00:00:00`` was a 500 (the poll's
look-back overflowed); ``odometer=²³`` passed ``str.isdigit``; a 10 MB field
was echoed back in full. One-line fields now hold one line (a line break folds
to a space), other control characters are refused on the field, NUL anywhere
is a 400, and a refused form shows at most a field's maximum length.
"""

from __future__ import annotations

import re

import pytest

from tests.mailserver import text_body
from tests.requests.test_create import GOOD as TYPED
from tests.requests.test_create import create as create_request
from tests.requests.test_create import new_request as last_request
from tests.support.web import Browser, events, outbox_to, row_counts

GOOD = {**TYPED, "supplier_email": "bob@bobsrepair.com"}
FIELD_ERROR = re.compile(r'id="([a-z_]+)-error" class="field-error">([^<]*)<')


def create(browser: Browser, **fields):
    """The new-request form, sent to Bob's Truck Repair with ``fields`` changed."""
    return create_request(browser, **{"supplier_email": GOOD["supplier_email"], **fields})


def field_errors(html: str) -> dict[str, str]:
    return dict(FIELD_ERROR.findall(html))


@pytest.mark.parametrize("line_break", ["\r\n", "\n", "\r", "\u2028", "\t"])
def test_a_title_with_a_line_break_is_one_line_in_the_request_and_the_mail(
    app, world, as_, smtp, line_break
):
    response = create(as_("dana"), title=f"URGENT{line_break}Bcc: victim@example.org")
    assert response.status_code == 303
    assert last_request(app).title == "URGENT Bcc: victim@example.org"
    as_("dana").last_link_to("bob@bobsrepair.com")  # delivers: the subject is a valid header
    [composed] = outbox_to(app, "bob@bobsrepair.com")  # the worker wrote the subject it sent
    assert composed.subject == (
        "New service request from Acme Fleet (acme-fleet[.]com): URGENT Bcc: victim@example.org"
    )
    [message] = smtp.to("bob@bobsrepair.com")
    # A long subject is folded onto continuation lines (RFC 5322); unfolded, it is the one line.
    subject = re.sub(r"\r?\n(?=[ \t])", "", message["Subject"])
    assert message["Bcc"] is None and subject == composed.subject


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", "Brakes\x07 squeal"),
        ("vehicle", "Unit\x1b[31m 7"),
        ("location", "Depot\u202e B"),  # reorders what a reader sees
        ("description", "Line one\nline\x0b two"),
    ],
)
def test_control_characters_are_refused_on_their_field_keeping_what_was_typed(
    app, world, as_, field, value
):
    before = row_counts(app)
    response = create(as_("dana"), **{field: value})
    assert response.status_code == 422
    errors = field_errors(response.text)
    assert list(errors) == [field]
    assert "invisible control character" in errors[field]
    assert 'value="Annual inspection"' in response.text or field == "title"
    assert row_counts(app) == before


def test_a_description_keeps_its_line_breaks(app, world, as_):
    assert create(as_("dana"), description="Line one\r\nline two\n\tindented").status_code == 303
    assert last_request(app).description == "Line one\nline two\n\tindented"


def test_a_note_or_reason_with_a_control_character_is_refused_and_kept(app, world, as_):
    dana, bob = as_("dana"), as_("bob")
    url = f"/requests/{world.request_id}"
    note = dana.post(f"{url}/notes", {"body": "Keys at\x00 reception"}, page="/dashboard")
    assert note.status_code == 400 and "NUL character" in note.text  # NUL: anywhere, a 400
    note = dana.post(f"{url}/notes", {"body": "Keys at\x08 reception"}, page="/dashboard")
    assert note.status_code == 422
    assert "invisible control character (U+0008" in note.text
    assert "Keys at\x08 reception</textarea>" in note.text
    decline = bob.post(
        f"{url}/transition",
        {"from": "new", "to": "declined", "reason": "No\x1b parts"},
        page="/dashboard",
    )
    assert decline.status_code == 422 and "invisible control character" in decline.text
    assert not events(app, "request.note") and not events(app, "request.declined")


@pytest.mark.parametrize(
    "url",
    [
        "/dashboard?q=a%00b",
        "/dashboard?status=new%00",
        "/dashboard/rows?q=%00",
        "/requests/new?x%00=1",
    ],
)
def test_a_nul_byte_in_the_query_is_a_400_that_says_so(app, world, as_, url):
    response = as_("dana").client.get(url)
    assert response.status_code == 400
    assert "NUL character" in response.text


@pytest.mark.parametrize(
    ("form", "page", "fields"),
    [
        ("/auth/login", "/auth/login", {"email": "dana@acme-fleet.com\x00"}),
        ("/auth/signup", "/auth/signup", {"company_name": "A\x00", "email": "x@y.example"}),
        ("/requests", "/requests/new", {**GOOD, "vehicle": "Unit\x00 7"}),
        ("/requests", "/requests/new", {**GOOD, "title\x00": "x"}),
    ],
)
def test_a_nul_byte_in_any_form_field_is_a_400_that_says_so(app, world, as_, form, page, fields):
    before = row_counts(app)
    response = as_("dana").post(form, fields, page=page)
    assert response.status_code == 400
    assert "NUL character" in response.text
    assert row_counts(app) == before


@pytest.mark.parametrize(
    "since",
    [
        "0001-01-01T00:00:00",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "not a time",
    ],
)
def test_a_poll_since_a_time_fleetos_never_gave_is_a_400(app, world, as_, since):
    response = as_("bob").client.get(
        "/dashboard/updates", query_string={"status": "new", "since": since}
    )
    assert response.status_code == 400
    assert "Reload the page" in response.text


@pytest.mark.parametrize("after", ["0001-01-01T00:00:00+14:00_" + "0" * 32, "9999-12-31_x"])
def test_a_cursor_fleetos_never_made_shows_the_top_of_the_list(app, world, as_, after):
    assert as_("bob").client.get("/dashboard", query_string={"after": after}).status_code == 200


@pytest.mark.parametrize("odometer", ["²³", "١٢٣", "12\u00a0345", "9" * 5000, "1e6"])
def test_an_odometer_that_is_not_ascii_digits_is_refused_on_its_field(app, world, as_, odometer):
    response = create(as_("dana"), odometer=odometer)
    assert response.status_code == 422
    assert field_errors(response.text) == {
        "odometer": "Enter the odometer as a whole number, like 182400."
    }


def test_a_refused_form_echoes_no_more_than_each_field_holds(app, world, as_):
    huge = "x" * 150_000  # six of them: under MAX_CONTENT_LENGTH (1 MB), as the attack sent
    response = create(
        as_("dana"),
        title=huge,
        vehicle=huge,
        location=huge,
        supplier_email=huge,
        odometer=huge,
        priority=huge,
    )
    assert response.status_code == 422
    assert len(response.text) < 30_000  # the page itself is about 10 kB
    assert 'value="' + "x" * 200 + '"' in response.text  # the title, cut at its 200


def test_an_unknown_step_is_refused_without_echoing_it(app, world, as_):
    response = as_("bob").post(
        f"/requests/{world.request_id}/transition",
        {"from": "new", "to": "y" * 100_000},
        page="/dashboard",
    )
    assert response.status_code == 422
    assert len(response.text) < 30_000


def test_a_huge_address_is_refused_without_echoing_it(app, browser, acme):
    response = browser.post("/auth/login", {"email": "a" * 300_000 + "@acme-fleet.com"})
    assert response.status_code == 422
    assert len(response.text) < 20_000
    assert "at most 254 characters" in response.text


def test_a_crafted_next_path_is_not_kept(app, acme, smtp):
    for crafted in ["/dashboard\x1b[2J", "/" + "n" * 5000]:
        browser = Browser(app.test_client(), smtp)
        browser.ask_for_link("dana@acme-fleet.com", next=crafted)
        response = browser.use_link(browser.last_link_to("dana@acme-fleet.com"))
        assert response.headers["Location"] == "/dashboard"
    assert "\x1b" not in text_body(smtp.to("dana@acme-fleet.com")[-1])
