"""Issue 16 in a real Chromium: a photo attached to a note shows on the other company's timeline.

The workshop picks a photo on the note form (the same file input a phone offers
its camera on), sends the note, and sees its thumbnail; the fleet, signed in
separately, finds that thumbnail loaded on the request's timeline, and clicking
it opens the full picture, upright and without its EXIF, in a tab of its own.
"""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import BOB, DANA, LiveServer, dana_sent_bob_a_request, sign_in
from tests.chromium import NewContext, shot
from tests.support import files


@pytest.fixture
def live_overrides() -> dict[str, object]:
    """Small limits, so a file over them is quick to make."""
    return {"ATTACHMENT_MAX_BYTES": 200_000, "ATTACHMENT_MAX_UPLOAD_BYTES": 300_000}


@pytest.fixture
def request_id(live_server: LiveServer) -> uuid.UUID:
    return dana_sent_bob_a_request(live_server.app, "Tyre cut on the sidewall")


def natural_width(page: Page, selector: str) -> int:
    """The width the browser decoded the image at (0: it did not load)."""
    return int(page.locator(selector).first.evaluate("img => img.complete ? img.naturalWidth : 0"))


def test_a_photo_on_a_note_shows_on_the_other_companys_timeline(
    new_context: NewContext, live_server: LiveServer, request_id: uuid.UUID
):
    request_page = f"/requests/{request_id}"

    workshop = new_context().new_page()
    sign_in(workshop, live_server.smtp, BOB)
    workshop.goto(request_page)
    workshop.get_by_label("Add a note (both companies see it)").fill(
        "The cut goes through the cord."
    )
    workshop.get_by_label("Add photos or PDFs").set_input_files(
        [{"name": "sidewall.jpg", "mimeType": "image/jpeg", "buffer": files.phone_jpeg(640, 480)}]
    )
    workshop.get_by_role("button", name="Add note").click()
    expect(workshop.get_by_text("Note added.")).to_be_visible()
    mine = "#timeline .attachment-photo img"
    expect(workshop.locator(mine)).to_have_count(1)

    fleet = new_context().new_page()
    sign_in(fleet, live_server.smtp, DANA)
    fleet.goto(request_page)
    timeline = fleet.locator("#timeline")
    expect(timeline.get_by_text("The cut goes through the cord.")).to_be_visible()
    thumbnail = timeline.locator(".attachment-photo img")
    expect(thumbnail).to_have_count(1)
    expect(thumbnail).to_have_attribute("alt", "sidewall.jpg")
    fleet.wait_for_function(
        "() => { const i = document.querySelector('#timeline .attachment-photo img');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )
    # 640 x 480 turned upright by its EXIF flag: a 240 x 320 thumbnail.
    assert natural_width(fleet, "#timeline .attachment-photo img") == 240
    expect(fleet.get_by_role("heading", name="Photos and documents")).to_be_visible()
    shot(fleet, "fleet-sees-the-photo")

    with fleet.context.expect_page() as opened:
        thumbnail.click()
    full = opened.value
    full.wait_for_load_state()
    assert full.url.endswith(
        f"/attachments/{thumbnail.locator('..').get_attribute('href').rsplit('/', 1)[1]}"
    )
    full.wait_for_function(
        "() => { const i = document.querySelector('img'); return i && i.naturalWidth > 0; }"
    )
    size = full.locator("img").evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert size == [480, 640]


def test_a_file_too_large_is_named_before_anything_is_sent(
    new_context: NewContext, live_server: LiveServer, request_id: uuid.UUID
):
    """A whole upload over its limit would be refused unread (413), naming nothing and
    losing what was typed: the page names the file first and sends nothing."""
    workshop = new_context().new_page()
    sign_in(workshop, live_server.smtp, BOB)
    workshop.goto(f"/requests/{request_id}")
    workshop.get_by_label("Add a note (both companies see it)").fill("Quote and photos")
    picker = workshop.get_by_label("Add photos or PDFs")
    picker.set_input_files(
        [
            {"name": "small.pdf", "mimeType": "application/pdf", "buffer": files.pdf()},
            {"name": "scan.pdf", "mimeType": "application/pdf", "buffer": b"%PDF" + b"0" * 250_000},
        ]
    )
    warning = workshop.locator(".files-check")
    expect(warning).to_have_text("scan.pdf is 250 KB; files can be at most 200 KB.")
    posts: list[str] = []
    workshop.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    workshop.get_by_role("button", name="Add note").click()
    expect(warning).to_be_visible()
    workshop.wait_for_timeout(300)
    assert posts == []
    expect(workshop.get_by_label("Add a note (both companies see it)")).to_have_value(
        "Quote and photos"
    )

    picker.set_input_files(
        [{"name": "small.pdf", "mimeType": "application/pdf", "buffer": files.pdf()}]
    )
    expect(warning).to_be_hidden()
    workshop.get_by_role("button", name="Add note").click()
    expect(workshop.get_by_text("Note added.")).to_be_visible()
    expect(workshop.locator("#timeline .attachment-document")).to_contain_text("small.pdf")
