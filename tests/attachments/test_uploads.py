"""Issue 16: photos and documents from the new-request form and the note form.

Several files at once; types by content (a refused one among good ones keeps the
good ones and what was typed); images re-encoded without EXIF and the right way
up, with a thumbnail made at upload; decompression bombs refused; limits that
name the file; the mail that says what came with it, and the dashboard's paperclip.
"""

from __future__ import annotations

import io
import re
from html import unescape
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from fleetos.extensions import db
from fleetos.models import Attachment, ServiceRequest
from fleetos.outbox import deliver_due
from tests.support import files
from tests.support.apps import database
from tests.support.web import events, outbox_to, row_counts

HELD = re.compile(r'name="held_files" type="hidden" value="([^"]+)"')
KEEP = re.compile(r'name="keep" value="([0-9a-f]{64})"')


def upload(*items: tuple[bytes, str]) -> list[tuple[io.BytesIO, str]]:
    return [(io.BytesIO(data), name) for data, name in items]


def attachments(app, **where) -> list[Attachment]:
    with database(app):
        query = select(Attachment).order_by(Attachment.created_at, Attachment.filename)
        for name, value in where.items():
            query = query.where(getattr(Attachment, name) == value)
        found = list(db.session.scalars(query))
        db.session.expunge_all()
        return found


def stored(app, key: str) -> bytes:
    return Path(app.config["ATTACHMENT_DIR"], key[:2], key[2:4], key).read_bytes()


def new_request_form(**changes) -> dict:
    return {
        "supplier_email": "bob@bobsrepair.com",
        "vehicle": "Unit 14",
        "title": "Tyre cut on the sidewall",
        "description": "Nearside front, see photos",
        "priority": "high",
        **changes,
    }


def note(client, request_id, body="See the photos", **extra):
    return client.post(
        f"/requests/{request_id}/notes",
        {"body": body, **extra},
        page=f"/requests/{request_id}",
    )


# -- several files, from both forms ----------------------------------------------------------


def test_a_new_request_carries_several_photos_and_a_pdf(app, as_, world, smtp):
    dana = as_("dana")
    response = dana.post(
        "/requests",
        new_request_form(
            files=upload(
                (files.phone_jpeg(), "tyre.jpg"),
                (files.image("PNG"), "dashboard light.png"),
                (files.image("WEBP"), "wheel.webp"),
                (files.heic(), "IMG_0042.HEIC"),
                (files.pdf(), "quote.pdf"),
            )
        ),
        page="/requests/new",
    )
    assert response.status_code == 303, response.text
    request_id = response.headers["Location"].rsplit("/", 1)[1]

    found = {a.filename: a for a in attachments(app)}
    assert set(found) == {
        "tyre.jpg",
        "dashboard light.png",
        "wheel.webp",
        "IMG_0042.jpg",
        "quote.pdf",
    }
    assert found["IMG_0042.jpg"].content_type == "image/jpeg"  # HEIC converted
    assert files.read_image(stored(app, found["IMG_0042.jpg"].sha256)).format == "JPEG"
    assert found["quote.pdf"].content_type == "application/pdf"
    assert found["quote.pdf"].thumbnail_sha256 is None
    assert stored(app, found["quote.pdf"].sha256) == files.pdf()  # a PDF is kept as it is
    assert all(str(a.request_id) == request_id for a in found.values())
    assert all(a.contact_id == world.contacts["dana"] for a in found.values())

    created = events(app, "request.created")[-1]
    assert {a.event_id for a in found.values()} == {created.event_id}
    assert sorted(f["name"] for f in created.metadata_["attachments"]) == sorted(found)

    page = dana.client.get(f"/requests/{request_id}").text
    for attachment in found.values():
        if attachment.is_image:
            assert f"/attachments/{attachment.attachment_id}/thumbnail" in page
    assert "quote.pdf" in page and "PDF, " in page


def test_a_note_carries_photos_and_the_other_side_sees_them(app, as_, world):
    response = note(
        as_("bob"),
        world.request_id,
        files=upload(
            (files.phone_jpeg(), "tread.jpg"), (files.phone_jpeg(colour="green"), "b.jpg")
        ),
    )
    assert response.status_code == 303, response.text
    noted = events(app, "request.note")[-1]
    found = attachments(app, event_id=noted.event_id)
    assert [a.filename for a in found] == ["b.jpg", "tread.jpg"]

    timeline = (
        as_("dana").client.get(f"/requests/{world.request_id}").text.split('id="timeline"')[1]
    )
    for attachment in found:
        assert f"/attachments/{attachment.attachment_id}/thumbnail" in timeline
        assert (
            f'href="/requests/{world.request_id}/attachments/{attachment.attachment_id}"'
            in timeline
        )


def test_a_note_may_be_photos_alone(app, as_, world):
    response = note(
        as_("bob"), world.request_id, body="", files=upload((files.phone_jpeg(), "a.jpg"))
    )
    assert response.status_code == 303
    assert len(attachments(app)) == 1


def test_the_forms_offer_several_files_and_the_camera(as_, world):
    for page in ("/requests/new", f"/requests/{world.request_id}"):
        html = as_("dana").client.get(page).text
        assert 'enctype="multipart/form-data"' in html
        assert re.search(r'<input id="files" name="files" type="file"[^>]* multiple', html)
        assert 'accept="image/*,application/pdf"' in html
        assert 'name="files" type="file" accept="image/*" capture="environment"' in html


# -- refused files: named, and nothing else of the form is lost --------------------------------


def test_a_refused_type_among_good_ones_keeps_the_good_ones_and_what_was_typed(app, as_, world):
    dana = as_("dana")
    before = row_counts(app)
    response = dana.post(
        "/requests",
        new_request_form(
            files=upload(
                (files.phone_jpeg(), "tyre.jpg"),
                (b"MZ\x90\x00 not really a photo", "photo.jpg.exe"),
                (files.pdf(), "quote.pdf"),
            )
        ),
        page="/requests/new",
    )
    assert response.status_code == 422
    page = unescape(response.text)
    assert "photo.jpg.exe is not a photo (JPEG, PNG, WebP, HEIC) or a PDF." in page
    assert "The other files are kept." in page
    # What was typed is still there...
    assert 'value="Tyre cut on the sidewall"' in page and "Nearside front, see photos" in page
    assert 'value="bob@bobsrepair.com"' in page
    # ... and so are the good files, to send along without choosing them again.
    assert "tyre.jpg" in page and "quote.pdf" in page and "kept from before" in page
    assert row_counts(app) == before and attachments(app) == []

    kept = KEEP.findall(response.text)
    assert len(kept) == 2
    again = dana.post(
        "/requests",
        new_request_form(held_files=HELD.search(response.text).group(1), keep=kept),
        page="/requests/new",
    )
    assert again.status_code == 303
    assert sorted(a.filename for a in attachments(app)) == ["quote.pdf", "tyre.jpg"]


def test_files_are_kept_when_another_field_is_wrong(app, as_, world):
    dana = as_("dana")
    response = dana.post(
        "/requests",
        new_request_form(title="", files=upload((files.phone_jpeg(), "tyre.jpg"))),
        page="/requests/new",
    )
    assert response.status_code == 422
    assert "Give the request a short title." in response.text
    (kept,) = KEEP.findall(response.text)
    # Unticking a kept file drops it; the title is given this time.
    again = dana.post(
        "/requests",
        new_request_form(held_files=HELD.search(response.text).group(1), keep=[]),
        page="/requests/new",
    )
    assert again.status_code == 303 and attachments(app) == []
    third = dana.post(
        "/requests",
        new_request_form(held_files=HELD.search(response.text).group(1), keep=[kept]),
        page="/requests/new",
    )
    assert third.status_code == 303 and [a.filename for a in attachments(app)] == ["tyre.jpg"]


def test_a_refused_note_keeps_its_words_and_its_good_files(app, as_, world):
    bob = as_("bob")
    response = note(
        bob,
        world.request_id,
        body="Quote attached",
        files=upload((files.pdf(), "quote.pdf"), (files.HTML, "quote.html")),
    )
    assert response.status_code == 422
    assert "quote.html is not a photo" in unescape(response.text)
    assert "Quote attached</textarea>" in response.text
    assert KEEP.findall(response.text) and attachments(app) == []
    assert not [e for e in events(app) if e.event_type == "request.note"]


def test_kept_files_that_expired_are_asked_for_again(make_app, world, smtp):
    import time

    from tests.support.web import signed_in

    app = make_app(ATTACHMENT_KEEP_SECONDS=1)
    bob = signed_in(app, smtp, world.contacts["bob"])
    response = note(bob, world.request_id, body="x" * 6000, files=upload((files.pdf(), "q.pdf")))
    token, kept = HELD.search(response.text).group(1), KEEP.findall(response.text)
    time.sleep(2.1)  # itsdangerous counts whole seconds
    again = note(bob, world.request_id, body="Quote", held_files=token, keep=kept)
    assert again.status_code == 422
    assert "The files kept from before have expired: attach them again." in again.text
    assert "Quote</textarea>" in again.text
    assert attachments(app) == [] and not events(app, "request.note")


def test_kept_files_belong_to_the_contact_they_were_kept_for(app, as_, world):
    response = note(
        as_("bob"), world.request_id, body="x" * 6000, files=upload((files.pdf(), "q.pdf"))
    )
    token = HELD.search(response.text).group(1)
    kept = KEEP.findall(response.text)
    # Wes (Bob's colleague) replays Bob's kept list: nothing of it is attached.
    replay = note(as_("wes"), world.request_id, body="Here", held_files=token, keep=kept)
    assert replay.status_code == 303 and attachments(app) == []


# -- what is stored ---------------------------------------------------------------------------


def test_exif_is_gone_from_the_stored_image_and_its_orientation_applied(app, as_, world):
    original = files.phone_jpeg(width=64, height=48)
    assert files.SERIAL.encode() in original
    note(as_("dana"), world.request_id, files=upload((original, "tyre.jpg")))
    (attachment,) = attachments(app)

    kept = stored(app, attachment.sha256)
    assert files.SERIAL.encode() not in kept and files.CAMERA.encode() not in kept
    image = files.read_image(kept)
    assert dict(image.getexif()) == {}  # no GPS, no serial, no orientation flag left
    assert "exif" not in image.info and "xmp" not in image.info
    # Turned upright: the 64 x 48 picture with "rotate 90" is shown 48 wide, 64 high.
    assert image.size == (48, 64) == (attachment.width, attachment.height)


def test_a_thumbnail_is_made_once_at_upload(app, as_, world):
    note(as_("dana"), world.request_id, files=upload((files.image("PNG", 1600, 1200), "big.png")))
    (attachment,) = attachments(app)
    thumbnail = files.read_image(stored(app, attachment.thumbnail_sha256))
    assert thumbnail.format == "JPEG" and thumbnail.size == (320, 240)
    # Served from storage as it was made: the same bytes every time.
    response = as_("bob").client.get(
        f"/requests/{world.request_id}/attachments/{attachment.attachment_id}/thumbnail"
    )
    assert response.status_code == 200 and response.mimetype == "image/jpeg"
    assert response.data == stored(app, attachment.thumbnail_sha256)


def test_a_polyglot_loses_what_it_carried_after_the_image(app, as_, world):
    note(as_("dana"), world.request_id, files=upload((files.jpeg_with_html_appended(), "p.jpg")))
    (attachment,) = attachments(app)
    assert b"<script>" not in stored(app, attachment.sha256)


@pytest.mark.parametrize(
    "pixels",
    [
        Image.MAX_IMAGE_PIXELS + 1_000_000,  # Pillow only warns here
        2 * Image.MAX_IMAGE_PIXELS + 1_000_000,  # Pillow raises here
    ],
    ids=["over-the-limit", "over-twice-the-limit"],
)
def test_a_decompression_bomb_is_refused(app, as_, world, pixels):
    data = files.bomb(pixels)
    assert len(data) < 200_000  # small to send, huge to open
    response = note(as_("dana"), world.request_id, body="Look", files=upload((data, "bomb.png")))
    assert response.status_code == 422
    assert "bomb.png has too many pixels to open safely" in unescape(response.text)
    assert attachments(app) == []


# -- limits -------------------------------------------------------------------------------------


def test_a_file_over_the_limit_is_refused_by_name(make_app, world, smtp):
    from tests.support.web import signed_in

    app = make_app(ATTACHMENT_MAX_BYTES=2000)
    dana = signed_in(app, smtp, world.contacts["dana"])
    response = note(
        dana,
        world.request_id,
        files=upload(
            (files.image("PNG", 400, 400, mode="RGB") + b"\0" * 3000, "huge.png"),
            (files.pdf(), "ok.pdf"),
        ),
    )
    assert response.status_code == 422
    assert "huge.png is 4 KB; files can be at most 2 KB." in unescape(response.text)


def test_an_upload_takes_only_so_many_files(make_app, world, smtp):
    from tests.support.web import signed_in

    app = make_app(ATTACHMENT_MAX_FILES=2)
    dana = signed_in(app, smtp, world.contacts["dana"])
    three = upload(*((files.pdf(name), f"{name}.pdf") for name in ("a", "b", "c")))
    response = note(dana, world.request_id, files=three)
    assert response.status_code == 422
    assert "c.pdf: at most 2 files can go at once." in unescape(response.text)
    assert len(KEEP.findall(response.text)) == 2


def test_a_request_holds_only_so_much(make_app, world, smtp):
    from tests.support.web import signed_in

    app = make_app(ATTACHMENT_MAX_REQUEST_BYTES=len(files.pdf()) * 2 + 10)
    dana = signed_in(app, smtp, world.contacts["dana"])
    assert note(dana, world.request_id, files=upload((files.pdf("a"), "a.pdf"))).status_code == 303
    response = note(
        dana, world.request_id, files=upload((files.pdf("b"), "b.pdf"), (files.pdf("c"), "c.pdf"))
    )
    assert response.status_code == 422
    assert "c.pdf would take this request's files over" in unescape(response.text)


def post_multipart(browser, url: str, page: str, size: int):
    """A form with one file of ``size`` bytes, encoded in memory (the test client would
    spool a large body to a temporary file and leave it open when it is refused unread)."""
    boundary, body = encode_multipart(
        MultiDict(
            [
                ("csrf_token", browser.csrf(page)),
                ("body", "big"),
                ("files", FileStorage(io.BytesIO(b"x" * size), "junk.bin")),
            ]
        )
    )
    return browser.client.post(
        url, data=body, content_type=f"multipart/form-data; boundary={boundary}"
    )


def test_only_the_routes_that_take_files_take_large_bodies(app, as_, world):
    dana = as_("dana")
    two_mib = 2 * 1024 * 1024
    # 2 MiB to sign-in: over MAX_CONTENT_LENGTH (1 MiB), refused unread.
    assert post_multipart(dana, "/auth/login", "/auth/login", two_mib).status_code == 413
    # 2 MiB to the note form: under its own limit; refused only for what it is.
    page = f"/requests/{world.request_id}"
    response = post_multipart(dana, page + "/notes", page, two_mib)
    assert response.status_code == 422 and "junk.bin is not a photo" in unescape(response.text)
    over = app.config["ATTACHMENT_MAX_UPLOAD_BYTES"] + app.config["MAX_CONTENT_LENGTH"]
    assert post_multipart(dana, page + "/notes", page, over).status_code == 413


# -- who hears about it ---------------------------------------------------------------------


def test_the_mail_says_what_was_attached_and_carries_no_file(app, as_, world, smtp):
    note(
        as_("dana"),
        world.request_id,
        files=upload((files.phone_jpeg(), "a.jpg"), (files.phone_jpeg(colour="blue"), "b.jpg")),
    )
    (message,) = outbox_to(app, "bob@bobsrepair.com")
    assert "2 photos attached." in message.text_body and "2 photos attached." in message.html_body
    with database(app):
        deliver_due()
    (mail,) = smtp.to("bob@bobsrepair.com")
    assert not [part for part in mail.walk() if part.get_filename()]
    assert all(not part.get_content_type().startswith("image/") for part in mail.walk())


def test_uploads_land_in_the_event_log(app, as_, world):
    note(as_("bob"), world.request_id, files=upload((files.pdf(), "quote.pdf")))
    noted = events(app, "request.note")[-1]
    (recorded,) = noted.metadata_["attachments"]
    (attachment,) = attachments(app)
    assert recorded == {
        "name": "quote.pdf",
        "type": "application/pdf",
        "size": attachment.size_bytes,
        "sha256": attachment.sha256,
    }


def test_the_dashboard_row_shows_a_paperclip_with_the_count(app, as_, world):
    note(
        as_("dana"),
        world.request_id,
        files=upload((files.pdf(), "a.pdf"), (files.phone_jpeg(), "b.jpg")),
    )
    for who in ("dana", "bob"):
        html = as_(who).client.get("/dashboard").text
        row = html.split(f'id="row-{world.request_id}"')[1].split("</li>")[0]
        assert 'class="paperclip"' in row and "2<span" in row
    with database(app):
        assert db.session.get(ServiceRequest, world.request_id) is not None
