"""The sign-in journey, from asking for a link to being signed in, and its defences."""

from __future__ import annotations

import re
import threading
import uuid
from http.cookies import SimpleCookie

import pytest

from fleetos.extensions import db
from fleetos.models import Company, WebSession
from fleetos.outbox import deliver_due
from tests.mailserver import html_body, link_in, text_body
from tests.support.apps import database
from tests.support.web import CSRF_INPUT, Browser, contact, counts, events


def test_first_click_journey_lets_the_contact_emerge(app, browser, acme, smtp):
    assert browser.ask_for_link(" Olu@ACME-fleet.com ").status_code == 200
    path = browser.last_link_to("olu@acme-fleet.com")
    message = smtp.to("olu@acme-fleet.com")[0]
    assert message["Subject"] == "Your FleetOS sign-in link"
    assert path in html_body(message)  # both bodies carry the link

    confirm = browser.client.get(path)
    assert confirm.status_code == 200
    assert "Continue as olu@acme-fleet.com (Acme Fleet)" in confirm.text

    before = counts(app)
    response = browser.use_link(path)
    assert response.status_code == 303
    assert response.headers["Location"] == "/dashboard"
    assert "auth/link" not in response.headers["Location"]

    after = counts(app)
    assert after["contacts"] == before["contacts"] + 1
    olu = contact(app, "olu@acme-fleet.com")
    assert olu.company_id == acme.company_id
    assert [e.event_type for e in events(app) if e.contact_id == olu.contact_id] == [
        "contact.created",
        "contact.signed_in",
    ]
    dashboard = browser.client.get("/dashboard")
    assert dashboard.status_code == 200 and "Acme Fleet" in dashboard.text


def test_known_contact_signs_in_and_is_seen(app, browser, acme):
    seen_before = contact(app, "dana@acme-fleet.com").last_seen_at
    assert browser.sign_in("dana@acme-fleet.com").status_code == 303
    assert counts(app)["contacts"] == 1
    assert contact(app, "dana@acme-fleet.com").last_seen_at > seen_before
    assert [e.event_type for e in events(app)] == ["contact.signed_in"]


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_opening_a_link_creates_consumes_and_signs_in_nothing(app, browser, acme, method):
    browser.ask_for_link("new.person@acme-fleet.com")
    path = browser.last_link_to("new.person@acme-fleet.com")
    before = counts(app)
    for _ in range(3):  # a mail scanner may fetch it several times
        response = browser.client.open(path, method=method)
        assert response.status_code == 200
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "no-store" in response.headers["Cache-Control"]
    assert counts(app) == before
    with browser.client.session_transaction() as sess:
        assert "session_id" not in sess
    assert browser.client.get("/dashboard").status_code == 303  # not signed in
    assert browser.use_link(path).status_code == 303  # and the person can still use it


def test_the_confirmation_page_has_a_button_and_no_script_that_presses_it(app, browser, acme):
    browser.ask_for_link("dana@acme-fleet.com")
    page = browser.client.get(browser.last_link_to("dana@acme-fleet.com")).text
    assert '<button type="submit">Continue</button>' in page
    assert "submit()" not in page and "requestSubmit" not in page
    assert "Not you?" in page and 'href="/auth/login"' in page


def test_a_used_link_is_refused_and_offers_a_fresh_one(app, browser, acme):
    browser.ask_for_link("dana@acme-fleet.com")
    path = browser.last_link_to("dana@acme-fleet.com")
    assert browser.use_link(path).status_code == 303
    before = counts(app)

    again = browser.client.post(path, data={"csrf_token": browser.csrf()})
    assert again.status_code == 410, again.text
    assert "already used" in again.text and "Send me a fresh link" in again.text
    assert counts(app) == before
    someone_else = Browser(app.test_client(), browser.smtp)
    assert someone_else.client.get(path).status_code == 410


def test_opening_your_own_link_again_while_signed_in_just_goes_there(app, browser, acme):
    browser.ask_for_link("dana@acme-fleet.com", next="/dashboard?status=new")
    path = browser.last_link_to("dana@acme-fleet.com")
    browser.use_link(path)
    before = counts(app)
    again = browser.client.get(path)
    assert again.status_code == 303 and again.headers["Location"] == "/dashboard?status=new"
    assert counts(app) == before


def test_ten_concurrent_uses_of_one_link_sign_in_once(app, browser, acme, smtp):
    browser.ask_for_link("racer@acme-fleet.com")
    path = browser.last_link_to("racer@acme-fleet.com")
    clients = [Browser(app.test_client(), smtp) for _ in range(10)]
    tokens = [b.csrf(path) for b in clients]
    barrier = threading.Barrier(10)
    statuses: list[int] = []

    def press(b: Browser, csrf: str) -> None:
        barrier.wait()
        statuses.append(b.client.post(path, data={"csrf_token": csrf}).status_code)

    threads = [
        threading.Thread(target=press, args=pair) for pair in zip(clients, tokens, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(statuses) == [303] + [410] * 9
    assert len(events(app, "contact.signed_in")) == 1
    assert len(events(app, "contact.created")) == 1
    assert contact(app, "racer@acme-fleet.com") is not None


CSRF_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{20,}")


def test_same_page_and_status_whatever_the_address(app, browser, acme, smtp):
    pages = {}
    for address in ["dana@acme-fleet.com", "newbie@acme-fleet.com", "stranger@elsewhere.example"]:
        response = browser.ask_for_link(address)
        # The CSRF token carries the second it was made: the same token, for comparing.
        page = CSRF_TOKEN.sub("CSRF", response.text.replace(address, "ADDRESS"))
        pages[address] = (response.status_code, page)
    assert len(set(pages.values())) == 1, "the response reveals which addresses are known"
    browser.last_link_to("dana@acme-fleet.com")
    # Known and domain addresses get a link; the stranger is told how to start.
    assert link_in(smtp.to("newbie@acme-fleet.com")[0])
    stranger = text_body(smtp.to("stranger@elsewhere.example")[0])
    assert "/auth/link/" not in stranger and "/auth/signup" in stranger


def test_public_mail_domain_is_never_a_company_domain(app, browser, smtp):
    with database(app):
        db.session.add(
            Company(name="Gmail Garage", company_type="supplier", email_domain="gmail.com")
        )
        db.session.commit()
    browser.ask_for_link("someone@gmail.com")
    with database(app):
        deliver_due()
    assert "/auth/link/" not in text_body(smtp.to("someone@gmail.com")[0])


def test_invalid_address_keeps_what_was_typed(app, browser):
    response = browser.ask_for_link("dana@@acme")
    assert response.status_code == 422
    assert 'value="dana@@acme"' in response.text
    assert "not a valid e-mail address" in response.text
    assert counts(app)["outbox_messages"] == 0


def test_missing_csrf_token_is_refused(app, browser, acme):
    assert (
        browser.client.post("/auth/login", data={"email": "dana@acme-fleet.com"}).status_code == 400
    )
    assert counts(app)["outbox_messages"] == 0

    browser.ask_for_link("dana@acme-fleet.com")
    path = browser.last_link_to("dana@acme-fleet.com")
    refused = browser.client.post(path, data={})
    assert refused.status_code == 400 and "This form has expired" in refused.text
    assert counts(app)["used_link_tokens"] == 0
    assert browser.use_link(path).status_code == 303


def test_htmx_requests_send_csrf_in_a_header(app, browser, acme):
    browser.sign_in("dana@acme-fleet.com")
    token = browser.csrf("/dashboard")
    assert browser.client.post("/auth/logout", headers={"X-CSRFToken": "wrong"}).status_code == 400
    response = browser.client.post(
        "/auth/logout", headers={"X-CSRFToken": token, "HX-Request": "true"}
    )
    assert response.status_code == 303


def test_sign_in_starts_a_fresh_session(app, browser, acme):
    with browser.client.session_transaction() as sess:
        sess["planted"] = "by an attacker"
        sess["session_id"] = "00000000-0000-4000-8000-000000000000"
    browser.sign_in("dana@acme-fleet.com")
    with browser.client.session_transaction() as sess:
        assert "planted" not in sess
        session_id = sess["session_id"]
    assert session_id != "00000000-0000-4000-8000-000000000000"
    with database(app):
        opened = db.session.get(WebSession, uuid.UUID(session_id))
        assert opened.contact_id == contact(app, "dana@acme-fleet.com").contact_id


def test_session_cookie_flags(app, browser, acme):
    browser.ask_for_link("dana@acme-fleet.com")
    response = browser.use_link(browser.last_link_to("dana@acme-fleet.com"))
    cookie = SimpleCookie(response.headers["Set-Cookie"])["fleetos_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert not cookie["secure"]  # BASE_URL is http in tests
    assert cookie["expires"]  # a permanent session with a lifetime


def test_secure_cookie_when_base_url_is_https(head_database, smtp):
    from fleetos.config import load_config

    assert load_config({"BASE_URL": "https://fleetos.example"})["SESSION_COOKIE_SECURE"] is True
    assert load_config({"BASE_URL": "http://127.0.0.1:5000"})["SESSION_COOKIE_SECURE"] is False


@pytest.mark.parametrize(
    "next_path",
    ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"],
)
def test_next_cannot_point_off_site(app, browser, acme, next_path):
    browser.ask_for_link("dana@acme-fleet.com", next=next_path)
    response = browser.use_link(browser.last_link_to("dana@acme-fleet.com"))
    assert response.headers["Location"] == "/dashboard"


def test_next_keeps_a_path_on_this_site(app, browser, acme):
    redirect = browser.client.get("/dashboard?status=new")
    assert redirect.status_code == 303
    assert redirect.headers["Location"] == "/auth/login?next=/dashboard?status%3Dnew"
    browser.ask_for_link("dana@acme-fleet.com", next="/dashboard?status=new")
    response = browser.use_link(browser.last_link_to("dana@acme-fleet.com"))
    assert response.headers["Location"] == "/dashboard?status=new"


def test_links_come_from_base_url_not_the_host_header(app, browser, acme, smtp):
    evil = "http://evil.example"
    form = browser.client.get("/auth/login", base_url=evil).text
    csrf = CSRF_INPUT.search(form).group(1)
    sent = browser.client.post(
        "/auth/login", base_url=evil, data={"email": "dana@acme-fleet.com", "csrf_token": csrf}
    )
    assert sent.status_code == 200
    browser.last_link_to("dana@acme-fleet.com")
    assert link_in(smtp.to("dana@acme-fleet.com")[0]).startswith("http://fleetos.test/auth/link/")


def test_logout(app, browser, acme):
    browser.sign_in("dana@acme-fleet.com")
    response = browser.post("/auth/logout", page="/dashboard")
    assert response.status_code == 303
    assert browser.client.get("/dashboard").status_code == 303
    assert [e.event_type for e in events(app)][-1] == "contact.signed_out"
    with browser.client.session_transaction() as sess:
        assert "session_id" not in sess


def test_current_contact_in_templates(app, browser, acme):
    browser.sign_in("dana@acme-fleet.com")
    page = browser.client.get("/dashboard").text
    assert "Dana Dispatch" in page and "Acme Fleet" in page
