"""Issue 16: files go only to the two companies, and only as what they are.

Another company's contact gets the same 404 as for a file that never existed
(file and thumbnail alike, and through a request of their own); a signed-out
stranger gets the sign-in page, as for any page. Images are inline, PDFs always
downloads; every answer is nosniff, private, and sandboxed by its CSP. Each look
at a file is in event_log (not on the timeline).
"""

from __future__ import annotations

import uuid
from urllib.parse import quote

import pytest

from fleetos.attachments.content import PDF, safe_name
from tests.attachments.test_uploads import attachments, note, upload
from tests.support import files
from tests.support.web import add_requests, events, without_csrf

NOT_FOUND = "There is nothing here. It may have moved, or never existed."


@pytest.fixture
def photo_and_pdf(app, as_, world):
    """Bob's note on Acme's request: a photo and a PDF."""
    response = note(
        as_("bob"),
        world.request_id,
        files=upload((files.phone_jpeg(), "tyre.jpg"), (files.pdf(), "quote.pdf")),
    )
    assert response.status_code == 303
    found = {a.filename: a for a in attachments(app)}
    return found["tyre.jpg"], found["quote.pdf"]


def url(attachment, suffix="", request_id=None):
    request_id = request_id or attachment.request_id
    return f"/requests/{request_id}/attachments/{attachment.attachment_id}{suffix}"


# -- who may see them ---------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["dana", "olu", "bob", "wes"])
def test_both_companies_contacts_see_the_file_and_the_thumbnail(as_, photo_and_pdf, who):
    photo, document = photo_and_pdf
    client = as_(who).client
    assert client.get(url(photo)).status_code == 200
    assert client.get(url(photo, "/thumbnail")).status_code == 200
    assert client.get(url(document)).status_code == 200


@pytest.mark.parametrize("who", ["nora", "quick"])  # another fleet, another supplier
def test_another_companys_contact_gets_the_same_404_as_for_nothing(as_, photo_and_pdf, who):
    photo, document = photo_and_pdf
    client = as_(who).client
    never = f"/requests/{photo.request_id}/attachments/{uuid.uuid4()}"
    expected = client.get(never)
    assert expected.status_code == 404
    for path in (url(photo), url(photo, "/thumbnail"), url(document), url(document, "/thumbnail")):
        response = client.get(path)
        assert response.status_code == 404, path
        assert NOT_FOUND in response.text
        assert without_csrf(response.text.replace(path, never)) == without_csrf(expected.text)
        assert response.headers.get("Content-Disposition") is None


def test_a_request_of_ones_own_is_no_way_to_another_companys_file(app, as_, world, photo_and_pdf):
    """Nora's fleet has a request with Quick Tyres; she puts Bob's attachment id after it."""
    (her_request,) = add_requests(app, world, 1, fleet="northwind", supplier="quick")
    photo, _ = photo_and_pdf
    client = as_("nora").client
    assert client.get(f"/requests/{her_request}").status_code == 200  # hers indeed
    for suffix in ("", "/thumbnail"):
        assert client.get(url(photo, suffix, request_id=her_request)).status_code == 404
    # And the other way: Dana, who may see the file, through a request that is not its own.
    (other,) = add_requests(app, world, 1, fleet="acme", supplier="quick")
    assert as_("dana").client.get(url(photo, request_id=other)).status_code == 404


def test_a_signed_out_stranger_is_sent_to_sign_in_as_for_any_page(app, photo_and_pdf):
    photo, _ = photo_and_pdf
    stranger = app.test_client()
    for path in (
        url(photo),
        url(photo, "/thumbnail"),
        f"/requests/{uuid.uuid4()}/attachments/{uuid.uuid4()}",
    ):
        response = stranger.get(path)
        assert response.status_code == 303
        assert response.headers["Location"].startswith("/auth/login?next=")
        assert not response.data.startswith(b"\xff\xd8")


# -- how they are sent ---------------------------------------------------------------------------


def test_an_image_is_shown_inline_with_safe_headers(as_, photo_and_pdf):
    photo, _ = photo_and_pdf
    response = as_("dana").client.get(url(photo))
    assert response.mimetype == "image/jpeg"
    assert response.headers["Content-Disposition"] == (
        "inline; filename=\"tyre.jpg\"; filename*=UTF-8''tyre.jpg"
    )
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"].startswith("private")
    csp = response.headers["Content-Security-Policy"]
    assert "sandbox" in csp and "default-src 'none'" in csp
    downloaded = as_("dana").client.get(url(photo) + "?download=1")
    assert downloaded.headers["Content-Disposition"].startswith("attachment;")


def test_a_pdf_is_always_a_download(as_, photo_and_pdf):
    _, document = photo_and_pdf
    for query in ("", "?download=0", "?inline=1"):
        response = as_("dana").client.get(url(document) + query)
        assert response.mimetype == "application/pdf"
        assert response.headers["Content-Disposition"].startswith("attachment;")
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in response.headers["Content-Security-Policy"]
        assert response.data == files.pdf()


def test_a_pdf_that_is_also_a_page_is_only_ever_a_sandboxed_download(app, as_, world):
    note(as_("bob"), world.request_id, files=upload((files.pdf_that_is_html(), "invoice.html")))
    (attachment,) = attachments(app)
    assert attachment.filename == "invoice.html.pdf"  # the name says what it is
    response = as_("dana").client.get(url(attachment))
    assert response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response.headers["Content-Security-Policy"]


def test_names_lose_their_paths_and_control_characters(app, as_, world):
    hostile = "..\\..\\windows\\sy\tstem32/../photo\u202egpj.exe"
    note(as_("bob"), world.request_id, files=upload((files.phone_jpeg(), hostile)))
    (attachment,) = attachments(app)
    assert attachment.filename == "photogpj.exe.jpg"
    disposition = as_("dana").client.get(url(attachment)).headers["Content-Disposition"]
    assert disposition == "inline; filename=\"photogpj.exe.jpg\"; filename*=UTF-8''photogpj.exe.jpg"


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        ("/etc/passwd", "passwd.pdf"),
        ("C:\\Users\\dana\\Desktop\\quote.pdf", "quote.pdf"),
        ("quote\r\nX-Injected: yes.pdf", "quoteX-Injected: yes.pdf"),
        ("\x00\x1b[31mred.pdf", "[31mred.pdf"),
        ("..", "attachment.pdf"),
        ("", "attachment.pdf"),
        ("Angebot für Müller.PDF", "Angebot für Müller.pdf"),
        ("x" * 300 + ".pdf", "x" * 116 + ".pdf"),
    ],
)
def test_safe_names(raw, kept):
    assert safe_name(raw, PDF) == kept


def test_a_non_ascii_name_reaches_the_browser_whole(app, as_, world):
    note(as_("bob"), world.request_id, files=upload((files.pdf(), "Angebot für Müller.pdf")))
    (attachment,) = attachments(app)
    disposition = as_("dana").client.get(url(attachment)).headers["Content-Disposition"]
    assert disposition == (
        'attachment; filename="Angebot f_r M_ller.pdf"; '
        f"filename*=UTF-8''{quote('Angebot für Müller.pdf', safe='')}"
    )


def test_a_second_look_revalidates_and_is_recorded_again(app, as_, photo_and_pdf):
    photo, _ = photo_and_pdf
    client = as_("dana").client
    first = client.get(url(photo))
    again = client.get(url(photo), headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    assert len(events(app, "attachment.viewed")) == 2


# -- the record ---------------------------------------------------------------------------------


def test_looking_at_files_lands_in_event_log_but_not_on_the_timeline(
    app, as_, world, photo_and_pdf
):
    photo, document = photo_and_pdf
    dana = as_("dana").client
    dana.get(url(photo))
    dana.get(url(photo, "/thumbnail"))  # part of looking at the page: not recorded
    dana.get(url(document))
    viewed = events(app, "attachment.viewed")
    downloaded = events(app, "attachment.downloaded")
    assert [(e.contact_id, e.metadata_["name"], e.target_request_id) for e in viewed] == [
        (world.contacts["dana"], "tyre.jpg", world.request_id)
    ]
    assert [e.metadata_["attachment_id"] for e in downloaded] == [str(document.attachment_id)]
    timeline = dana.get(f"/requests/{world.request_id}").text.split('id="timeline"')[1]
    assert "opened a file" not in timeline and "downloaded a file" not in timeline
    feed = dana.get("/dashboard/company").text
    assert "opened a file" in feed and "downloaded a file" in feed
    # Nobody outside learns anything, and nothing is recorded for them either.
    as_("nora").client.get(url(photo))
    assert len(events(app, "attachment.viewed")) == 1


def test_a_file_missing_from_storage_is_a_404_and_a_log_line(app, as_, photo_and_pdf, caplog):
    import pathlib

    _, document = photo_and_pdf
    key = document.sha256
    pathlib.Path(app.config["ATTACHMENT_DIR"], key[:2], key[2:4], key).unlink()
    response = as_("dana").client.get(url(document))
    assert response.status_code == 404
    assert f"its file {key} is missing from storage" in caplog.text


def test_thumbnails_are_only_for_photos(as_, photo_and_pdf):
    _, document = photo_and_pdf
    assert as_("dana").client.get(url(document, "/thumbnail")).status_code == 404
