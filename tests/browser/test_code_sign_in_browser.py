"""Signing in by typing the code in a real Chromium: a mobile mechanic asks on the phone's
browser, the SMS reaches the gateway, and the code is typed on the workshop's laptop."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from fleetos.extensions import db
from fleetos.models import Company, Contact
from tests.chromium import NewContext, shot
from tests.sms.conftest import CODE
from tests.smsgateway import SmsGateway, webhook_config

MOBILE = "+447911123456"


@pytest.fixture
def gateway() -> Iterator[SmsGateway]:
    server = SmsGateway()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def live_overrides(gateway: SmsGateway) -> dict[str, object]:
    return webhook_config(gateway)


def test_a_phone_contact_signs_in_by_typing_the_code(new_context: NewContext, live_server, gateway):
    with live_server.app.app_context():
        company = Company(name="Bob's Truck Repair", company_type="supplier")
        db.session.add(company)
        db.session.flush()
        db.session.add(
            Contact(company_id=company.company_id, contact_value=MOBILE, contact_type="phone")
        )
        db.session.commit()
        db.session.remove()

    phone = new_context().new_page()
    phone.goto("/auth/login")
    phone.get_by_label("E-mail or mobile number").fill("07911 123456")
    phone.get_by_role("button", name="Send me a sign-in link").click()
    expect(phone.get_by_role("heading", name="Check your messages")).to_be_visible()

    texts = gateway.wait_for(1)
    assert [text.to for text in texts] == [MOBILE]
    code = CODE.search(texts[0].body).group(1)

    laptop = new_context().new_page()  # another device than the one that asked
    laptop.goto("/auth/code")
    laptop.get_by_label("E-mail or mobile number").fill(MOBILE)
    laptop.get_by_label("Code from the message").fill(code)
    shot(laptop, "1-code")
    laptop.get_by_role("button", name="Sign in with the code").click()
    expect(laptop).to_have_url(re.compile(r"/dashboard$"))
    expect(laptop.get_by_role("heading", level=1)).to_have_text("Bob's Truck Repair")
    shot(laptop, "2-dashboard")
