"""Bad links explain themselves and write nothing; key rotation; sign-up and invitations."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import text

from fleetos.extensions import db
from fleetos.messaging.links import Purpose, make_token, safe_next
from fleetos.models import Company
from tests.mailserver import link_in
from tests.support.apps import database, flask_cli
from tests.support.web import Browser, contact, counts, events


def token_for(app, purpose=Purpose.SIGN_IN, address="dana@acme-fleet.com", company=None, **extra):
    with app.test_request_context():
        return make_token(purpose, address, company_id=company, **extra)


def assert_refused(app, browser, path, status, words, *, fresh_offered):
    before = counts(app)
    for response in (
        browser.client.get(path),
        browser.client.post(path, data={"csrf_token": browser.csrf()}),
    ):
        assert response.status_code == status
        assert words in response.text
        assert ("Send me a fresh link" in response.text) is fresh_offered
        assert response.headers["Cache-Control"] == "no-store"
    assert counts(app) == before


def test_tampered_link(app, browser, acme):
    token = token_for(app, company=acme.company_id)
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    assert_refused(
        app, browser, f"/auth/link/{tampered}", 400, "This link is not valid", fresh_offered=False
    )


def test_link_signed_with_another_salt(app, browser, acme):
    other = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="some.other.purpose")
    token = other.dumps(
        {
            "p": "sign-in",
            "v": "dana@acme-fleet.com",
            "c": str(acme.company_id),
            "n": "/dashboard",
            "j": "x",
        }
    )
    assert_refused(app, browser, f"/auth/link/{token}", 400, "not valid", fresh_offered=False)


def test_payload_claiming_another_purpose_than_its_salt(app, browser, acme):
    lying = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=Purpose.DAILY_ACCESS.salt)
    token = lying.dumps(
        {
            "p": "invite",
            "v": "eve@acme-fleet.com",
            "c": str(acme.company_id),
            "n": "/dashboard",
            "j": "y",
        }
    )
    assert_refused(app, browser, f"/auth/link/{token}", 400, "not valid", fresh_offered=False)


def test_expired_link_offers_a_fresh_one_to_the_same_address(app, browser, acme, smtp, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(TimestampSigner, "get_timestamp", lambda self: int(time.time()) - 3600)
        token = token_for(app, company=acme.company_id)
    path = f"/auth/link/{token}"
    assert_refused(app, browser, path, 410, "This link has expired", fresh_offered=True)

    response = browser.client.post(f"{path}/fresh", data={"csrf_token": browser.csrf()})
    assert response.status_code == 200 and "dana@acme-fleet.com" in response.text
    fresh = browser.last_link_to("dana@acme-fleet.com")
    assert fresh != path
    assert browser.use_link(fresh).status_code == 303


def test_fresh_link_needs_a_valid_signature(app, browser, acme):
    response = browser.client.post(
        "/auth/link/not-a-token/fresh", data={"csrf_token": browser.csrf()}
    )
    assert response.status_code == 400
    assert counts(app)["outbox_messages"] == 0


def test_a_very_old_link_gets_no_fresh_link(app, browser, acme, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(TimestampSigner, "get_timestamp", lambda self: int(time.time()) - 90 * 86400)
        token = token_for(app, company=acme.company_id)
    assert_refused(app, browser, f"/auth/link/{token}", 410, "expired", fresh_offered=False)


def test_links_signed_with_a_fallback_key_still_work(make_app, smtp, acme_factory):
    old = make_app(SECRET_KEY="old-key")
    company_id = acme_factory(old)
    token = token_for(old, company=company_id)

    rotated = make_app(SECRET_KEY="new-key", SECRET_KEY_FALLBACKS=["older-key", "old-key"])
    assert Browser(rotated.test_client(), smtp).use_link(f"/auth/link/{token}").status_code == 303

    forgotten = make_app(SECRET_KEY="new-key")
    assert forgotten.test_client().get(f"/auth/link/{token}").status_code == 400
    # New links are signed with the new key.
    assert (
        URLSafeTimedSerializer("new-key", salt=Purpose.SIGN_IN.salt).loads(
            token_for(rotated, company=company_id)
        )["v"]
        == "dana@acme-fleet.com"
    )


@pytest.fixture
def acme_factory():
    def make(app):
        with database(app):
            company = Company(
                name="Acme Fleet", company_type="fleet", email_domain="acme-fleet.com"
            )
            db.session.add(company)
            db.session.commit()
            return company.company_id

    return make


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("/requests/5", "/requests/5"),
        ("/dashboard?status=new&q=a b", "/dashboard?status=new&q=a b"),
        ("https://evil.example", "/dashboard"),
        ("//evil.example", "/dashboard"),
        ("/\\evil.example", "/dashboard"),
        ("javascript:alert(1)", "/dashboard"),
        ("/x\r\nSet-Cookie: a=b", "/dashboard"),
        (None, "/dashboard"),
        ("", "/dashboard"),
    ],
)
def test_safe_next(given, expected):
    assert safe_next(given) == expected


# --- sign-up --------------------------------------------------------------


def signup(browser, **fields):
    data = {
        "company_name": "Northwind Haulage",
        "company_type": "fleet",
        "email": "nora@northwind.example",
        "display_name": "Nora North",
    }
    data.update(fields)
    return browser.post("/auth/signup", data, page="/auth/signup")


def test_sign_up_stores_nothing_but_the_message_until_the_link_is_used(app, browser, smtp):
    before = counts(app)
    assert signup(browser).status_code == 200
    after = counts(app)
    assert after == {**before, "outbox_messages": before["outbox_messages"] + 1}

    path = browser.last_link_to("nora@northwind.example")
    page = browser.client.get(path)
    assert "Continue as nora@northwind.example (Northwind Haulage)" in page.text
    assert counts(app)["companies"] == before["companies"]

    assert browser.use_link(path).status_code == 303
    nora = contact(app, "nora@northwind.example")
    with database(app):
        company = db.session.get(Company, nora.company_id)
        # Signing up claims no domain: a company proves one on its company page (issue 10).
        assert (company.name, company.company_type, company.email_domain) == (
            "Northwind Haulage",
            "fleet",
            None,
        )
    assert nora.display_name == "Nora North"
    assert [e.event_type for e in events(app)] == [
        "company.created",
        "contact.created",
        "contact.signed_in",
    ]


def test_sign_up_on_a_public_mail_domain_registers_no_domain(app, browser):
    signup(
        browser,
        email="Joe.Mechanic@Gmail.com",
        company_type="supplier",
        company_name="Joe's Mobile",
    )
    browser.use_link(browser.last_link_to("joe.mechanic@gmail.com"))
    with database(app):
        company = db.session.get(Company, contact(app, "joe.mechanic@gmail.com").company_id)
        assert company.email_domain is None and company.company_type == "supplier"


def test_sign_up_with_a_known_address_signs_in_instead(app, browser, acme, smtp):
    signup(browser, email="dana@acme-fleet.com", company_name="Acme Again")
    path = browser.last_link_to("dana@acme-fleet.com")
    assert smtp.to("dana@acme-fleet.com")[0]["Subject"] == "Your FleetOS sign-in link"
    browser.use_link(path)
    assert counts(app)["companies"] == 1


def test_two_sign_up_links_for_one_address_found_one_company(app, browser, smtp):
    signup(browser)
    signup(browser, company_name="Northwind Two")
    browser.last_link_to("nora@northwind.example")
    first, second = (urlsplit(link_in(m)).path for m in smtp.to("nora@northwind.example"))
    assert browser.use_link(first).status_code == 303
    other_tab = Browser(app.test_client(), smtp)
    assert other_tab.use_link(second).status_code == 303  # signs in, founds nothing
    assert counts(app)["companies"] == 1


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"company_name": "  "}, "company_name", "Enter your company"),
        ({"company_type": "broker"}, "company_type", "Choose whether"),
        ({"address": "nora@"}, "address", "not a valid e-mail address"),
        ({"email": "nora@"}, "address", "not a valid e-mail address"),  # its old name
        ({"address": "+44 20 7946"}, "address", "not a valid phone number"),
        ({"display_name": "x" * 200}, "display_name", "under 120"),
    ],
)
def test_sign_up_errors_keep_what_was_typed(app, browser, fields, field, message):
    response = signup(browser, **fields)
    assert response.status_code == 422
    assert message in response.text
    assert 'value="Northwind Haulage"' in response.text or field == "company_name"
    assert counts(app)["outbox_messages"] == 0


# --- invitations ------------------------------------------------------------


def test_invited_colleague_joins_the_inviters_company(app, browser, acme, smtp):
    browser.sign_in("dana@acme-fleet.com")
    response = browser.post(
        "/auth/invite", {"email": "sam@gmail.com", "display_name": "Sam"}, page="/auth/invite"
    )
    assert response.status_code == 303
    path = browser.last_link_to("sam@gmail.com")
    assert "Dana Dispatch invited you to Acme Fleet" in smtp.to("sam@gmail.com")[0]["Subject"]

    colleague = Browser(app.test_client(), smtp)
    assert "Continue as sam@gmail.com (Acme Fleet)" in colleague.client.get(path).text
    assert colleague.use_link(path).status_code == 303
    sam = contact(app, "sam@gmail.com")
    dana = contact(app, "dana@acme-fleet.com")
    assert sam.company_id == acme.company_id and sam.display_name == "Sam"
    created = events(app, "contact.created")[0]
    assert created.contact_id == sam.contact_id
    assert created.metadata_["introduced_by"] == str(dana.contact_id)
    invited = events(app, "contact.invited")[0]
    assert invited.contact_id == dana.contact_id and invited.metadata_["invitee"] == "sam@gmail.com"


def test_invite_needs_a_signed_in_contact(app, browser):
    assert browser.client.get("/auth/invite").status_code == 303
    response = browser.post("/auth/invite", {"email": "sam@gmail.com"})
    assert response.status_code == 303 and response.headers["Location"].startswith("/auth/login")
    assert counts(app)["outbox_messages"] == 0


def test_inviting_a_colleague_twice_is_explained(app, browser, acme):
    browser.sign_in("dana@acme-fleet.com")
    response = browser.post("/auth/invite", {"email": "DANA@acme-fleet.com"}, page="/auth/invite")
    assert response.status_code == 422
    assert "already a colleague" in response.text and 'value="DANA@acme-fleet.com"' in response.text


def test_forgetting_expired_used_links_keeps_every_link_single_use(
    app, acme, smtp, head_database, monkeypatch
):
    """`flask fleetos forget-used-links` drops only ids whose links have expired anyway."""

    def stranger() -> Browser:  # not signed in: a link page shows what it would do
        return Browser(app.test_client(), smtp)

    with app.test_request_context():
        lifetime = Purpose.SIGN_IN.max_age
    long_ago = int(time.time()) - lifetime - 2 * 3600
    with monkeypatch.context() as m:
        # Signed and used two hours more than a link's lifetime ago, as that clock saw it.
        m.setattr(TimestampSigner, "get_timestamp", lambda self: long_ago)
        old = token_for(app, company=acme.company_id)
        assert stranger().use_link(f"/auth/link/{old}").status_code == 303
    recent = token_for(app, company=acme.company_id)
    assert stranger().use_link(f"/auth/link/{recent}").status_code == 303
    signer = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=Purpose.SIGN_IN.salt)
    with database(app):
        db.session.execute(
            text("UPDATE used_link_tokens SET used_at = to_timestamp(:t) WHERE jti = :jti"),
            {"t": long_ago, "jti": signer.loads_unsafe(old)[1]["j"]},
        )
        # An id of a purpose this version does not know is kept, however old.
        db.session.execute(
            text(
                "INSERT INTO used_link_tokens (jti, purpose, contact_value, used_at) VALUES"
                " ('legacy', 'some-future-purpose', 'x@example.com', now() - interval '1 year')"
            )
        )
        db.session.commit()

    result = flask_cli(head_database, "fleetos", "forget-used-links")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "forgot 1 expired used links"
    with database(app):
        kept = list(db.session.scalars(text("SELECT purpose FROM used_link_tokens ORDER BY 1")))
    assert kept == ["sign-in", "some-future-purpose"]

    # Both links stay unusable: the old one by its signature, the recent one by its id.
    signed_in = len(events(app, "contact.signed_in"))
    assert_refused(app, stranger(), f"/auth/link/{old}", 410, "has expired", fresh_offered=True)
    assert_refused(app, stranger(), f"/auth/link/{recent}", 410, "already used", fresh_offered=True)
    assert len(events(app, "contact.signed_in")) == signed_in
