"""Issue 15 (a database away) and issue 16 (a reply's files) for replies by mail.

* ``receive-mail`` with the database behind a proxy that is cut: exit 75, so
  the MTA keeps the message and tries again; nothing is half-written; once the
  database is back, the same message is taken, once.
* A photo attached to a reply becomes an attachment on the note that carried
  it, through the same checks as an upload (EXIF gone, thumbnail made); a
  signature's logo that the HTML shows inline is not a file of the reply; a
  file of a refused type is named in the answer and the rest goes in.
"""

from __future__ import annotations

import io
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from PIL import Image
from sqlalchemy import text

from fleetos.extensions import db
from tests.attachments.test_uploads import attachments
from tests.faults.conftest import database_proxy  # noqa: F401  (a fixture)
from tests.replies.conftest import BOB, mail_bob, receive, receive_mail_process, reply, reply_to
from tests.replies.test_mail_replies import notes
from tests.support import files
from tests.support.web import outbox_to, row_counts

pytestmark = pytest.mark.slow


def test_receive_mail_exits_75_while_the_database_is_away_and_takes_the_message_after(
    app,
    world,
    smtp,
    head_database,
    database_proxy,  # noqa: F811
):
    address = reply_to(mail_bob(app, world, smtp))
    raw = reply(address, "Parts arrive Monday.")
    through_proxy = database_proxy.url_for(head_database)
    before = row_counts(app)

    database_proxy.cut()
    away = receive_mail_process(through_proxy, raw, DATABASE_CONNECT_TIMEOUT="2")
    assert away.returncode == 75, away.stderr
    assert b"database unavailable" in away.stderr
    assert b"Traceback" not in away.stderr
    assert row_counts(app) == before

    database_proxy.restore()
    back = receive_mail_process(through_proxy, raw)
    assert back.returncode == 0, back.stderr
    again = receive_mail_process(through_proxy, raw)  # the MTA's retry crossed the success
    assert again.returncode == 0, again.stderr
    bodies = [n.metadata_["body"] for n in notes(app, world.request_id)]
    assert bodies.count("Parts arrive Monday.") == 1


def test_a_photo_on_a_reply_becomes_an_attachment_on_its_note(app, world, smtp):
    address = reply_to(mail_bob(app, world, smtp))
    raw = reply(
        address,
        "Photo of the worn pads.",
        attachments=[("IMG_0042.JPG", "image/jpeg", files.phone_jpeg(640, 480))],
    )
    assert receive(app, raw).detail == "noted"
    note = notes(app, world.request_id)[-1]
    assert note.metadata_["body"] == "Photo of the worn pads."
    (photo,) = attachments(app)
    assert photo.event_id == note.event_id and photo.channel == "mail"
    assert photo.content_type == "image/jpeg" and photo.thumbnail_sha256
    assert (photo.width, photo.height) == (480, 640)  # turned upright, as an upload is
    assert photo.contact_id == world.contacts["bob"]
    assert "Your note was added (1 photo attached)." in outbox_to(app, BOB)[-1].text_body


def test_a_reply_of_only_a_photo_is_a_note(app, world, smtp):
    address = reply_to(mail_bob(app, world, smtp))
    raw = reply(address, "", attachments=[("scan.pdf", "application/pdf", files.pdf())])
    assert receive(app, raw).detail == "noted"
    (document,) = attachments(app)
    assert document.filename == "scan.pdf"


def test_a_file_of_a_refused_type_is_named_and_the_rest_goes_in(app, world, smtp):
    address = reply_to(mail_bob(app, world, smtp))
    raw = reply(
        address,
        "Quote and a drawing",
        attachments=[
            ("quote.pdf", "application/pdf", files.pdf()),
            ("drawing.svg", "image/svg+xml", b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
        ],
    )
    assert receive(app, raw).detail == "noted"
    assert [a.filename for a in attachments(app)] == ["quote.pdf"]
    answer = outbox_to(app, BOB)[-1].text_body
    assert "Your note was added. Not attached: drawing.svg" in answer


def test_a_signature_logo_shown_inline_is_not_a_file_of_the_reply(app, world, smtp):
    address = reply_to(mail_bob(app, world, smtp))
    message = EmailMessage()
    message["From"] = BOB
    message["To"] = address
    message["Subject"] = "Re: Brakes squeal"
    message["Message-ID"] = make_msgid()
    message.set_content("Booked for Thursday.\n")
    message.add_alternative(
        '<p>Booked for Thursday.</p><p><img src="cid:logo@bobsrepair"></p>', subtype="html"
    )
    html_part = message.get_payload()[1]
    html_part.add_related(
        files.image("PNG"), maintype="image", subtype="png", cid="<logo@bobsrepair>"
    )
    message.add_attachment(files.pdf(), maintype="application", subtype="pdf", filename="q.pdf")
    assert receive(app, bytes(message)).detail == "noted"
    assert [a.filename for a in attachments(app)] == ["q.pdf"]
    assert notes(app, world.request_id)[-1].metadata_["body"] == "Booked for Thursday."


def test_a_photo_pasted_into_the_text_is_a_file_of_the_reply(app, world, smtp):
    """Gmail and Apple Mail put a pasted photo beside the HTML that shows it, like a logo;
    a photo is far larger than any logo."""
    address = reply_to(mail_bob(app, world, smtp))
    message = EmailMessage()
    message["From"] = BOB
    message["To"] = address
    message["Subject"] = "Re: Brakes squeal"
    message["Message-ID"] = make_msgid()
    message.set_content("See the photo.\n")
    message.add_alternative('<p>See the photo.</p><img src="cid:photo1">', subtype="html")
    out = io.BytesIO()
    Image.effect_noise((800, 600), 64).convert("RGB").save(out, "JPEG", quality=90)
    photo = out.getvalue()
    assert len(photo) > 40_000
    message.get_payload()[1].add_related(
        photo, maintype="image", subtype="jpeg", cid="<photo1>", filename="IMG_7.jpg"
    )
    assert receive(app, bytes(message)).detail == "noted"
    assert [a.filename for a in attachments(app)] == ["IMG_7.jpg"]


def test_a_held_replys_photo_waits_in_storage_and_goes_with_it(app, world, smtp, browser):
    """Kept through ``attachments gc`` while held; attached when accepted."""
    from datetime import timedelta

    from fleetos.actions.attachments import collect_garbage
    from tests.mailserver import text_body
    from tests.replies.conftest import deliver
    from tests.support.apps import database

    address = reply_to(mail_bob(app, world, smtp))
    raw = reply(
        address,
        "Photo from my phone",
        sender="bob.mobile@gmail.com",
        attachments=[("wheel.jpg", "image/jpeg", files.phone_jpeg())],
    )
    assert receive(app, raw).detail == "held"
    with database(app):
        collected = collect_garbage(timedelta(0))
        assert collected.deleted == [] and collected.kept_referenced == 2  # photo, thumbnail
        # Eight days on (in the database's eyes), its link has expired: nobody can accept it.
        db.session.execute(text("UPDATE held_replies SET created_at = now() - interval '8 days'"))
        db.session.commit()
        expired = collect_garbage(timedelta(0), dry_run=True)
        assert len(expired.deleted) == 2
        db.session.execute(text("UPDATE held_replies SET created_at = now()"))  # and back
        db.session.commit()
    deliver(app)
    (ask,) = [m for m in smtp.to(BOB) if "is waiting for you" in m["Subject"]]
    assert "(1 file with it)" in text_body(ask)
    path = next(w for w in text_body(ask).split() if "/replies/held/" in w).split(".test", 1)[1]
    assert "wheel.jpg" in browser.client.get(path).text
    browser.post(path, {"decision": "accept"}, page=path)
    (photo,) = attachments(app)
    assert photo.filename == "wheel.jpg" and photo.channel == "mail"
    assert photo.event_id == notes(app, world.request_id)[-1].event_id


def test_a_discarded_replys_photo_is_collected(app, world, smtp, browser):
    from datetime import timedelta

    from fleetos.actions.attachments import collect_garbage
    from tests.mailserver import text_body
    from tests.replies.conftest import deliver
    from tests.support.apps import database

    address = reply_to(mail_bob(app, world, smtp))
    raw = reply(
        address,
        "",
        sender="someone@elsewhere.example",
        attachments=[("x.jpg", "image/jpeg", files.phone_jpeg())],
    )
    assert receive(app, raw).detail == "held"
    deliver(app)
    (ask,) = [m for m in smtp.to(BOB) if "is waiting for you" in m["Subject"]]
    path = next(w for w in text_body(ask).split() if "/replies/held/" in w).split(".test", 1)[1]
    browser.post(path, {"decision": "discard"}, page=path)
    with database(app):
        collected = collect_garbage(timedelta(0))
    assert len(collected.deleted) == 2 and attachments(app) == []
