"""Issue 10, item 5: signing out ends the session, for every copy of its cookie.

As reported: sessions lived only in the signed cookie, so a cookie copied
before sign-out still read and wrote for 14 days. Now each sign-in opens a
session in PostgreSQL (``web_sessions``) whose id the cookie carries and every
request checks; signing out ends it, and the company page offers "sign out on
all devices".
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select, update

from fleetos.extensions import db
from fleetos.models import WebSession
from tests.support.apps import database
from tests.support.web import CSRF_INPUT, Browser, events

COOKIE = "fleetos_session"
DANA = "dana@acme-fleet.com"


def cookie_of(browser: Browser) -> str:
    cookie = browser.client.get_cookie(COOKIE)
    assert cookie is not None
    return cookie.value


def with_cookie(app, smtp, value: str) -> Browser:
    """Another browser (the attacker's), holding a copy of a cookie."""
    thief = Browser(app.test_client(), smtp)
    thief.client.set_cookie(COOKIE, value)
    return thief


def test_a_cookie_copied_before_sign_out_is_refused_after_it(app, acme, smtp):
    dana = Browser(app.test_client(), smtp)
    dana.sign_in(DANA)
    dana.client.get("/auth/invite")  # a page with a form: the cookie now holds its CSRF secret
    copied = cookie_of(dana)
    thief = with_cookie(app, smtp, copied)
    assert thief.client.get("/dashboard").status_code == 200  # the copy works while signed in
    csrf = CSRF_INPUT.search(thief.client.get("/auth/invite").text).group(1)

    assert dana.post("/auth/logout", page="/dashboard").status_code == 303

    replayed = with_cookie(app, smtp, copied)
    read = replayed.client.get("/dashboard")
    assert read.status_code == 303 and read.headers["Location"].startswith("/auth/login")
    # The server told that browser to forget the cookie; an attacker replays it anyway.
    replayed = with_cookie(app, smtp, copied)
    write = replayed.client.post(
        "/auth/invite", data={"csrf_token": csrf, "email": "mallory@acme-fleet.com"}
    )
    assert write.status_code == 303, write.text[-1500:]
    assert write.headers["Location"].startswith("/auth/login")
    assert not events(app, "contact.invited")
    with database(app):
        [ended] = db.session.scalars(select(WebSession)).all()
        assert ended.ended_at is not None


def test_sign_out_on_all_devices_ends_every_session_of_the_contact(app, acme, smtp):
    phone, laptop = (Browser(app.test_client(), smtp) for _ in range(2))
    phone.sign_in(DANA)
    laptop.sign_in(DANA)
    page = laptop.client.get("/dashboard/company").text
    assert "You are signed in on 2 devices" in page and "Sign out on all devices" in page

    response = laptop.post("/auth/logout/everywhere", page="/dashboard/company")
    assert response.status_code == 303
    assert "signed out on all devices (2 devices)" in laptop.client.get("/auth/login").text
    for browser in (phone, laptop):
        assert browser.client.get("/dashboard").status_code == 303
    [event] = events(app, "contact.signed_out_everywhere")
    assert event.metadata_["sessions"] == 2


def test_sign_out_ends_only_this_browsers_session(app, acme, smtp):
    phone, laptop = (Browser(app.test_client(), smtp) for _ in range(2))
    phone.sign_in(DANA)
    laptop.sign_in(DANA)
    laptop.post("/auth/logout", page="/dashboard")
    assert laptop.client.get("/dashboard").status_code == 303
    assert phone.client.get("/dashboard").status_code == 200


def test_signing_in_again_ends_the_session_it_replaces(app, acme, smtp):
    browser = Browser(app.test_client(), smtp)
    browser.sign_in(DANA)
    first = cookie_of(browser)
    browser.sign_in("olu@acme-fleet.com")
    assert with_cookie(app, smtp, first).client.get("/dashboard").status_code == 303


def test_a_session_ends_at_its_lifetime(app, acme, smtp):
    browser = Browser(app.test_client(), smtp)
    browser.sign_in(DANA)
    with database(app):
        [opened] = db.session.scalars(select(WebSession)).all()
        lifetime = opened.expires_at - opened.created_at
        assert abs(lifetime - timedelta(days=14)) < timedelta(minutes=1)  # SESSION_LIFETIME_DAYS
        db.session.execute(update(WebSession).values(expires_at=opened.created_at))
        db.session.commit()
    assert browser.client.get("/dashboard").status_code == 303


def test_a_cookie_from_before_sessions_were_kept_is_signed_out(app, acme, smtp):
    from tests.support.web import contact

    old = Browser(app.test_client(), smtp)
    with old.client.session_transaction() as session:
        session["contact_id"] = str(contact(app, DANA).contact_id)  # what a cookie held before
    assert old.client.get("/dashboard").status_code == 303


def test_a_forged_or_unknown_session_id_is_signed_out(app, acme, smtp):
    browser = Browser(app.test_client(), smtp)
    for forged in [str(uuid.uuid4()), "not-a-uuid", "\x00"]:
        with browser.client.session_transaction() as session:
            session["session_id"] = forged
        assert browser.client.get("/dashboard").status_code == 303


def test_forgetting_ended_sessions_keeps_open_ones_and_refuses_the_forgotten(
    app, acme, smtp, head_database
):
    """`flask fleetos forget-ended-sessions`: rows of sessions ended over a day ago go."""
    from tests.support.apps import flask_cli

    phone, laptop, tablet = (Browser(app.test_client(), smtp) for _ in range(3))
    for browser in (phone, laptop, tablet):
        browser.sign_in(DANA)
    signed_out, expired = cookie_of_session(app, laptop), cookie_of_session(app, tablet)
    copied = cookie_of(laptop)
    laptop.post("/auth/logout", page="/dashboard")
    with database(app):
        two_days_ago = db.session.scalar(select(WebSession.created_at)) - timedelta(days=2)
        db.session.execute(
            update(WebSession)
            .where(WebSession.session_id == signed_out)
            .values(ended_at=two_days_ago)
        )
        db.session.execute(
            update(WebSession)
            .where(WebSession.session_id == expired)
            .values(created_at=two_days_ago, expires_at=two_days_ago + timedelta(hours=1))
        )
        db.session.commit()

    result = flask_cli(head_database, "fleetos", "forget-ended-sessions")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "forgot 2 ended sessions"
    with database(app):
        kept = set(db.session.scalars(select(WebSession.session_id)))
    assert signed_out not in kept and expired not in kept and len(kept) == 1
    assert phone.client.get("/dashboard").status_code == 200
    # A copy of a forgotten session's cookie is refused as before.
    assert with_cookie(app, smtp, copied).client.get("/dashboard").status_code == 303
    assert tablet.client.get("/dashboard").status_code == 303


def cookie_of_session(app, browser: Browser) -> uuid.UUID:
    with browser.client.session_transaction() as session:
        return uuid.UUID(session["session_id"])
