"""Issue 16: attaching is the action core's, whatever channel the files came by.

A mail reply or an MMS (their issues build the adapters) will hand ``add_note``
the files it carried as names and bytes, as the web form does: the same checks,
the same storage, the same rows, recorded with their channel.
"""

from __future__ import annotations

import pytest

from fleetos.actions import requests as act
from fleetos.actions.attachments import IncomingFile
from fleetos.domain_errors import Invalid
from fleetos.extensions import db
from fleetos.models import Contact
from tests.attachments.test_uploads import attachments
from tests.support import files
from tests.support.apps import database
from tests.support.web import events


def test_a_channel_attaches_files_by_name_and_bytes(app, world):
    with database(app):
        bob = db.session.get(Contact, world.contacts["bob"])
        act.add_note(
            bob,
            world.request_id,
            "Photo from the yard",
            attachments=[
                IncomingFile("IMG_2001.HEIC", files.heic()),
                IncomingFile("q.pdf", files.pdf()),
            ],
            channel="mail",
        )
    found = attachments(app)
    assert sorted((a.filename, a.content_type, a.channel) for a in found) == [
        ("IMG_2001.jpg", "image/jpeg", "mail"),
        ("q.pdf", "application/pdf", "mail"),
    ]
    (noted,) = events(app, "request.note")
    assert noted.metadata_["channel"] == "mail" and len(noted.metadata_["attachments"]) == 2


def test_a_channel_hears_which_file_was_refused_and_keeps_the_good_ones(app, world):
    with database(app):
        bob = db.session.get(Contact, world.contacts["bob"])
        with pytest.raises(Invalid) as refused:
            act.add_note(
                bob,
                world.request_id,
                "Two files",
                attachments=[IncomingFile("ok.pdf", files.pdf()), IncomingFile("x.svg", b"<svg/>")],
                channel="sms",
            )
    assert refused.value.errors == {
        "files": "Not attached: x.svg is not a photo (JPEG, PNG, WebP, HEIC) or a PDF."
        " The other files are kept."
    }
    assert [held.name for held in refused.value.held] == ["ok.pdf"]
    assert attachments(app) == []
    # The channel may send the note again with what was kept (a reply saying so, say).
    with database(app):
        bob = db.session.get(Contact, world.contacts["bob"])
        act.add_note(
            bob, world.request_id, "Two files", attachments=refused.value.held, channel="sms"
        )
    assert [a.filename for a in attachments(app)] == ["ok.pdf"]
