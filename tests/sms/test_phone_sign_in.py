"""Phone contacts sign in by SMS: one segment with a code and a short link, one burning the other;
a code typed on any device; the 5-tries rule; nothing tells who uses FleetOS."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from fleetos.extensions import db
from fleetos.models import Contact, OutboxMessage
from tests.mailserver import link_in, text_body
from tests.sms.conftest import (
    BOB_MOBILE,
    CODE,
    SHORT_LINK,
    add_phone_contact,
    deliver,
    last_text,
    texts_to,
)
from tests.smsgateway import webhook_config
from tests.support.apps import database
from tests.support.web import CSRF_INPUT, Browser, events

WRONG = "That code does not work"


def type_code(browser: Browser, address: str, code: str):
    return browser.post("/auth/code", {"address": address, "code": code}, page="/auth/code")


def test_a_phone_contact_signs_in_by_code_and_the_short_link_dies_with_it(
    app, world, gateway, backend, smtp
):
    add_phone_contact(app, world.companies["bobs"], BOB_MOBILE, "Bob's mobile")
    phone = Browser(app.test_client(), smtp)
    # Typed as people type a UK mobile; PHONE_DEFAULT_REGION (GB) makes it E.164.
    answer = phone.post("/auth/login", {"address": "07911 123456"})
    assert answer.status_code == 200 and "Check your messages" in answer.text
    text = last_text(app, gateway, BOB_MOBILE)
    assert len(gateway.to(BOB_MOBILE)) == 1
    code = CODE.search(text).group(1)
    short = SHORT_LINK.search(text)
    assert short and "Bob's Truck Repair" in text

    laptop = Browser(app.test_client(), smtp)  # another device than the one that asked
    signed_in = type_code(laptop, "07911 123456", code)
    assert signed_in.status_code == 303 and signed_in.headers["Location"] == "/dashboard"
    assert "Bob&#39;s mobile" in laptop.client.get("/dashboard").text
    # One credential: the short link (and the link behind it) is used up.
    opened = phone.client.get(urlsplit(short.group(0)).path)
    assert opened.status_code == 404 and "not valid" in opened.text
    assert type_code(Browser(app.test_client(), smtp), BOB_MOBILE, code).status_code == 422
    signed = [e for e in events(app, "contact.signed_in")]
    assert len(signed) == 1 and signed[0].metadata_["via"] == "sign-in"


def test_the_short_link_signs_in_and_burns_the_code(app, world, gateway, smtp):
    add_phone_contact(app, world.companies["bobs"], BOB_MOBILE, "Bob's mobile")
    phone = Browser(app.test_client(), smtp)
    phone.post("/auth/login", {"address": BOB_MOBILE})
    text = last_text(app, gateway, BOB_MOBILE)
    short = urlsplit(SHORT_LINK.search(text).group(0)).path
    # A link preview or scanner fetching the short link burns nothing.
    assert phone.client.get(short).status_code == 303
    confirm = phone.client.get(short, follow_redirects=True)
    assert confirm.status_code == 200 and "Continue as +447911123456" in confirm.text
    assert phone.use_link(phone.client.get(short).headers["Location"]).status_code == 303
    other = Browser(app.test_client(), smtp)
    refused = type_code(other, BOB_MOBILE, CODE.search(text).group(1))
    assert refused.status_code == 422 and WRONG in refused.text


def test_a_code_signs_in_an_email_contact_on_another_device(app, world, smtp):
    desktop = Browser(app.test_client(), smtp)
    desktop.post("/auth/login", {"address": "dana@acme-fleet.com"})
    deliver(app)
    mail = smtp.to("dana@acme-fleet.com")[-1]
    code = CODE.search(text_body(mail)).group(1)
    assert f"type the code {code}" in text_body(mail)
    phone = Browser(app.test_client(), smtp)
    answer = type_code(phone, " Dana@Acme-Fleet.com ", f"{code[:3]} {code[3:]}")
    assert answer.status_code == 303
    assert "Dana" in phone.client.get("/dashboard").text
    # The link in the same mail is used up now.
    assert desktop.client.get(urlsplit(link_in(mail)).path).status_code == 410


def test_five_wrong_tries_kill_the_code(app, world, smtp):
    browser = Browser(app.test_client(), smtp)
    browser.post("/auth/login", {"address": "dana@acme-fleet.com"})
    deliver(app)
    code = CODE.search(text_body(smtp.to("dana@acme-fleet.com")[-1])).group(1)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(5):
        answer = type_code(browser, "dana@acme-fleet.com", wrong)
        assert answer.status_code == 422 and WRONG in answer.text
        assert 'value="dana@acme-fleet.com"' in answer.text  # the form keeps what was typed
    dead = type_code(browser, "dana@acme-fleet.com", code)
    assert dead.status_code == 422 and WRONG in dead.text
    # A new message brings a new code that works.
    browser.post("/auth/login", {"address": "dana@acme-fleet.com"})
    deliver(app)
    fresh = CODE.search(text_body(smtp.to("dana@acme-fleet.com")[-1])).group(1)
    assert type_code(browser, "dana@acme-fleet.com", fresh).status_code == 303


def test_a_code_for_an_unknown_address_reads_like_a_wrong_one(app, world, smtp):
    browser = Browser(app.test_client(), smtp)
    browser.post("/auth/login", {"address": "dana@acme-fleet.com"})
    deliver(app)
    known = type_code(browser, "dana@acme-fleet.com", "000000")
    unknown = type_code(browser, "nobody@acme-fleet.com", "000000")
    stranger = type_code(browser, "+447911123457", "000000")
    assert known.status_code == unknown.status_code == stranger.status_code == 422
    for answer in (known, unknown, stranger):
        assert WRONG in answer.text


@pytest.mark.parametrize(
    ("code", "message"),
    [("12345", "6 digits"), ("abcdef", "6 digits"), ("", "6 digits")],
)
def test_a_malformed_code_is_refused_as_such_and_costs_no_try(app, world, smtp, code, message):
    browser = Browser(app.test_client(), smtp)
    answer = type_code(browser, "dana@acme-fleet.com", code)
    assert answer.status_code == 422 and message in answer.text


def test_wrong_codes_are_rate_limited_per_address(make_app, world, smtp):
    app = make_app(RATELIMIT_ENABLED=True, CODE_TRY_LIMIT_PER_ADDRESS="3 per minute")
    browser = Browser(app.test_client(), smtp)
    statuses = [type_code(browser, "dana@acme-fleet.com", "000000").status_code for _ in range(4)]
    assert statuses == [422, 422, 422, 429]
    # Another address has its own budget.
    assert type_code(browser, "olu@acme-fleet.com", "000000").status_code == 422


def test_an_unknown_number_is_texted_nothing_and_told_nothing(app, world, gateway, smtp):
    browser = Browser(app.test_client(), smtp)
    known = browser.post("/auth/login", {"address": "dana@acme-fleet.com"})
    unknown = browser.post("/auth/login", {"address": "+447911123457"})
    assert known.status_code == unknown.status_code == 200
    assert texts_to(app, gateway, "+447911123457") == []  # no SMS pumping through FleetOS
    with database(app):
        statuses = db.session.scalars(
            select(OutboxMessage.status).where(OutboxMessage.recipient == "+447911123457")
        ).all()
    assert statuses == ["withheld"]


def test_the_old_field_name_still_signs_in(app, world, gateway, smtp):
    add_phone_contact(app, world.companies["bobs"], BOB_MOBILE, "Bob's mobile")
    browser = Browser(app.test_client(), smtp)
    assert browser.post("/auth/login", {"email": "07911 123456"}).status_code == 200
    assert CODE.search(last_text(app, gateway, BOB_MOBILE))


def test_a_phone_number_signs_up_a_company(app, gateway, smtp):
    browser = Browser(app.test_client(), smtp)
    answer = browser.post(
        "/auth/signup",
        {
            "company_name": "Joe's Mobile Tyres",
            "company_type": "supplier",
            "address": "07911 123458",
        },
        page="/auth/signup",
    )
    assert answer.status_code == 200
    text = last_text(app, gateway, "+447911123458")
    # Nothing typed reaches a number nobody vouches for (no smishing through FleetOS);
    # the page the link or code opens names the company.
    assert "Joe's Mobile Tyres" not in text and "confirms your new company" in text
    assert type_code(browser, "+447911123458", CODE.search(text).group(1)).status_code == 303
    with database(app):
        joe = db.session.scalar(select(Contact).where(Contact.contact_value == "+447911123458"))
        assert joe.contact_type == "phone" and joe.company.name == "Joe's Mobile Tyres"


def test_expired_codes_and_short_links_are_forgotten(app, world, smtp):
    from datetime import timedelta

    from fleetos.actions.housekeeping import forget_expired_credentials
    from fleetos.clock import utcnow
    from fleetos.models import LinkCredential

    now = utcnow()
    with database(app):
        for jti, expires in (
            ("old", now - timedelta(days=1)),
            ("live", now + timedelta(minutes=5)),
        ):
            db.session.add(
                LinkCredential(jti=jti, contact_value="x@y.example", token="t", expires_at=expires)
            )
        db.session.commit()
        assert forget_expired_credentials() == 1
        assert db.session.scalars(select(LinkCredential.jti)).all() == ["live"]


def test_a_landline_is_refused_with_a_reason(app, world, smtp):
    browser = Browser(app.test_client(), smtp)
    answer = browser.post("/auth/login", {"address": "+44 20 7946 0958"})
    assert answer.status_code == 422 and "looks like a landline" in answer.text
    assert 'value="+44 20 7946 0958"' in answer.text


def test_an_invitation_by_sms_joins_by_code(app, world, as_, gateway, smtp):
    dana = as_("dana")
    answer = dana.post(
        "/auth/invite", {"address": "07911 123458", "display_name": "Sam"}, page="/auth/invite"
    )
    assert answer.status_code == 303
    text = last_text(app, gateway, "+447911123458")
    # The domain is defanged as in mail: a phone would make a link of it.
    assert text.startswith("Dana invited you to Acme Fleet (acme-fleet[.]com) on FleetOS. Code ")
    sam = Browser(app.test_client(), smtp)
    code = CODE.search(text).group(1)
    assert type_code(sam, "+447911123458", code).status_code == 303
    with database(app):
        joined = db.session.scalar(select(Contact).where(Contact.contact_value == "+447911123458"))
        assert (joined.company_id, joined.contact_type, joined.display_name) == (
            world.companies["acme"],
            "phone",
            "Sam",
        )


def test_typing_a_code_does_the_same_work_for_a_known_and_an_unknown_address(app, world, smtp):
    from tests.support.dns import sql_statements

    browser = Browser(app.test_client(), smtp)
    for address in ("dana@acme-fleet.com", "nobody@acme-fleet.com"):
        browser.post("/auth/login", {"address": address})
    deliver(app)  # Dana got a code; the stranger got "how to start", with none
    work = {}
    for address in ("dana@acme-fleet.com", "nobody@acme-fleet.com"):
        page = browser.client.get("/auth/code")
        csrf = CSRF_INPUT.search(page.text).group(1)
        with sql_statements(app) as statements:
            answer = browser.client.post(
                "/auth/code", data={"csrf_token": csrf, "address": address, "code": "000000"}
            )
        assert answer.status_code == 422 and WRONG in answer.text
        work[address] = statements
    assert work["dana@acme-fleet.com"] == work["nobody@acme-fleet.com"]


def sign_up_by_sms(browser: Browser, number: str, name: str = "HSBC: acct locked, call 0207"):
    return browser.post(
        "/auth/signup",
        {"company_name": name, "company_type": "fleet", "address": number},
        page="/auth/signup",
    )


def test_sign_up_texts_have_a_daily_budget_for_all_companies_together(make_app, gateway, smtp):
    """SMS pumping, as an attacker tried it: sign-ups to new numbers, one after another
    (new numbers and new IPs defeat per-number and per-IP limits). Past
    SMS_SIGN_UPS_PER_DAY the sign-up is withheld, and the page says what it always says."""
    app = make_app(SMS_SIGN_UPS_PER_DAY=2, **webhook_config(gateway))
    numbers = [f"+44791112350{i}" for i in range(4)]
    answers = []
    for number in numbers:
        answers.append(sign_up_by_sms(Browser(app.test_client(), smtp), number).status_code)
        deliver(app)
    assert answers == [200] * 4
    assert [len(texts_to(app, gateway, number)) for number in numbers] == [1, 1, 0, 0]
    with database(app):
        statuses = db.session.scalars(
            select(OutboxMessage.status)
            .where(OutboxMessage.recipient.in_(numbers))
            .order_by(OutboxMessage.message_id)
        ).all()
    assert statuses == ["sent", "sent", "withheld", "withheld"]
