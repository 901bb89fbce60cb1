"""Issue 10, item 4: FleetOS is no relay for spam and phishing.

As reported: anyone could sign up as a fleet and send requests and notes with
their own text to any address: 30 requests in 3.8 s, all delivered, subject
"New service request from …: URGENT: verify your bank details at http://…".
Now requests and notes are rate-limited per contact and per company (a 429 that
says so, the form keeping what was typed), a company may write to only so many
new addresses a day, and links in what people typed reach mail as plain text.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from fleetos.extensions import db
from fleetos.models import Contact, ServiceRequest
from fleetos.outbox import deliver_due
from tests.mailserver import link_in
from tests.support.apps import database
from tests.support.web import Browser, make_world, signed_in

PHISH = "URGENT: verify your bank details at http://bank-verify.com/login"
VICTIM = "accounts@victim-garage.example"


def sign_up_a_fleet(app, smtp) -> Browser:
    """The attacker: a new fleet company, signed up through the real forms and link."""
    attacker = Browser(app.test_client(), smtp)
    attacker.post(
        "/auth/signup",
        {
            "company_name": "Totally Real Fleet",
            "company_type": "fleet",
            "email": "mallory@real-fleet.example",
        },
        page="/auth/signup",
    )
    assert attacker.use_link(attacker.last_link_to("mallory@real-fleet.example")).status_code == 303
    return attacker


def send_request(browser: Browser, to: str = VICTIM, title: str = PHISH, **fields):
    data = {"supplier_email": to, "vehicle": "Unit 1", "title": title, **fields}
    return browser.post("/requests", data, page="/requests/new")


def delivered(app, smtp) -> int:
    with database(app):
        deliver_due(limit=1000)
    return len(smtp.messages)


def requests_count(app) -> int:
    with database(app):
        return db.session.scalar(select(func.count()).select_from(ServiceRequest))


def test_thirty_requests_in_a_few_seconds_are_not_all_delivered(make_app, smtp):
    app = make_app(RATELIMIT_ENABLED=True)  # every default as it ships
    attacker = sign_up_a_fleet(app, smtp)
    before = delivered(app, smtp)  # the sign-up link

    statuses = [send_request(attacker).status_code for _ in range(30)]

    assert statuses == [303] * 10 + [429] * 20  # REQUEST_LIMIT_PER_CONTACT: 10 per minute
    assert requests_count(app) == 10
    assert delivered(app, smtp) - before == 10


def test_a_refused_request_says_why_and_keeps_what_was_typed(make_app, smtp):
    app = make_app(RATELIMIT_ENABLED=True, REQUEST_LIMIT_PER_CONTACT="1 per hour")
    world = make_world(app)
    dana = signed_in(app, smtp, world.contacts["dana"])
    assert send_request(dana, title="Brakes").status_code == 303
    refused = send_request(dana, title="Tyres", description="Both front ones.", location="Bay 3")
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert "You have sent 1 request in an hour, the most FleetOS sends" in refused.text
    assert "Nothing was sent" in refused.text and "what you typed is kept" in refused.text
    for typed in ['value="Tyres"', ">Both front ones.</textarea>", 'value="Bay 3"', VICTIM]:
        assert typed in refused.text
    assert requests_count(app) == 2  # the world's one and the first


def test_the_company_budget_holds_across_its_contacts(make_app, smtp):
    app = make_app(
        RATELIMIT_ENABLED=True,
        REQUEST_LIMIT_PER_CONTACT="2 per minute",
        REQUEST_LIMIT_PER_COMPANY="3 per minute",
    )
    world = make_world(app)
    dana, olu = (signed_in(app, smtp, world.contacts[name]) for name in ("dana", "olu"))
    assert [send_request(dana).status_code for _ in range(3)] == [303, 303, 429]
    assert [send_request(olu).status_code for _ in range(2)] == [303, 429]
    assert "Acme Fleet has sent 3 requests in a minute" in send_request(olu).text


def test_notes_are_limited_and_a_refused_note_is_kept(make_app, smtp):
    app = make_app(RATELIMIT_ENABLED=True, NOTE_LIMIT_PER_CONTACT="2 per minute")
    world = make_world(app)
    dana = signed_in(app, smtp, world.contacts["dana"])
    url = f"/requests/{world.request_id}/notes"
    notes = [dana.post(url, {"body": f"{PHISH} #{i}"}, page="/dashboard") for i in range(3)]
    assert [n.status_code for n in notes] == [303, 303, 429]
    assert f"{PHISH} #2</textarea>" in notes[2].text
    assert "You have sent 2 notes in a minute" in notes[2].text


def test_a_company_writes_to_only_so_many_new_addresses_a_day(make_app, smtp):
    app = make_app(RATELIMIT_ENABLED=False, NEW_ADDRESSES_PER_DAY=3)
    world = make_world(app)
    dana = signed_in(app, smtp, world.contacts["dana"])
    statuses = [send_request(dana, to=f"garage{i}@example.org").status_code for i in range(3)]
    invite = dana.post(
        "/auth/invite", {"email": "new.colleague@acme-fleet.com"}, page="/auth/invite"
    )
    assert statuses == [303, 303, 303] and invite.status_code == 429  # an invitation counts too
    assert "written to 3 new addresses in the last 24 hours" in invite.text
    assert 'value="new.colleague@acme-fleet.com"' in invite.text
    refused = send_request(dana, to="garage9@example.org")
    assert refused.status_code == 429 and "garage9@example.org" in refused.text
    # Addresses it wrote to before are not new; another company has its own budget.
    assert send_request(dana, to="garage0@example.org").status_code == 303
    assert send_request(dana, to="GARAGE1@example.org ").status_code == 303
    nora = signed_in(app, smtp, world.contacts["nora"])
    assert send_request(nora, to="garage9@example.org").status_code == 303


def test_concurrent_requests_to_new_addresses_cannot_slip_past_the_limit(make_app, smtp):
    app = make_app(RATELIMIT_ENABLED=False, NEW_ADDRESSES_PER_DAY=4)
    world = make_world(app)
    browsers = [signed_in(app, smtp, world.contacts["dana"]) for _ in range(10)]
    forms = [b.csrf("/requests/new") for b in browsers]
    statuses: list[int] = []
    start = threading.Barrier(10)

    def send(i: int) -> None:
        start.wait()
        response = browsers[i].client.post(
            "/requests",
            data={
                "csrf_token": forms[i],
                "supplier_email": f"shop{i}@example.org",
                "vehicle": "Unit 1",
                "title": "Brakes",
            },
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(statuses) == [303] * 4 + [429] * 6


def test_concurrent_sends_cannot_slip_past_the_rate(make_app, smtp, redis_uri):
    """Twenty sends at once against a budget of three, counted in Redis as in production
    (web workers on several hosts): three go, however they interleave."""
    import secrets

    from fleetos.abuse import REQUESTS, spend
    from fleetos.domain_errors import TooMany

    app = make_app(
        RATELIMIT_ENABLED=True,
        RATELIMIT_STORAGE_URI=redis_uri,
        RATELIMIT_KEY_PREFIX=f"fleetos-test-{secrets.token_hex(4)}",
        REQUEST_LIMIT_PER_CONTACT="3 per minute",
    )
    world = make_world(app)
    with database(app):
        dana = db.session.get(Contact, world.contacts["dana"])
        assert dana is not None and dana.company.name  # loaded here, read by every thread
        db.session.expunge_all()
    outcomes: list[str] = []
    start = threading.Barrier(20)

    def send() -> None:
        with app.app_context():
            start.wait()
            try:
                spend(REQUESTS, dana)
                outcomes.append("sent")
            except TooMany:
                outcomes.append("refused")

    threads = [threading.Thread(target=send) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == ["refused"] * 17 + ["sent"] * 3


@pytest.mark.parametrize("where", ["title", "description", "note", "company"])
def test_links_in_what_people_typed_reach_mail_as_plain_text(make_app, smtp, where):
    app = make_app()
    world = make_world(app)
    dana = signed_in(app, smtp, world.contacts["dana"])
    link = "http://bank-verify.com/login?id=1"
    if where == "note":
        dana.post(f"/requests/{world.request_id}/notes", {"body": f"See {link}"}, page="/dashboard")
    elif where == "company":
        with database(app):
            from fleetos.models import Company

            db.session.get(Company, world.companies["acme"]).name = "Pay at www.bank-verify.com"
            db.session.commit()
        send_request(dana, title="Brakes")
    else:
        send_request(dana, **{"title": "Brakes", where: f"Verify at {link} or bank-verify.com"})
    with database(app):
        deliver_due()
    [message] = smtp.messages
    for part in message.walk():
        if part.get_content_maintype() != "text":
            continue
        body = part.get_payload(decode=True).decode()
        ours = {urlsplit(u).netloc for u in re.findall(r"https?://[^\s\"'<>]+", body)}
        assert ours <= {"fleetos.test"}, (part.get_content_type(), body)  # only FleetOS's links
        assert "bank-verify.com" not in body and "bank-verify[.]com" in body
        if part.get_content_type() == "text/html":
            anchors = re.findall(r'<a [^>]*href="([^"]+)"', body)
            assert anchors and all(a.startswith("http://fleetos.test/") for a in anchors)
    assert "bank-verify.com" not in message["Subject"]
    assert link_in(message)  # FleetOS's own sign-in link is still a link
