"""Signing in by magic link in a real Chromium: what a person sees, cookies and all."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, add_company, ask_for_link, mailed_link, sign_in
from tests.chromium import NewContext, shot

DANA = "dana@acme-fleet.com"


@pytest.fixture
def acme(live_server: LiveServer) -> str:
    """Acme Fleet (domain acme-fleet.com) with one contact, Dana; returns Dana's address."""
    add_company(live_server.app, "Acme Fleet", "acme-fleet.com", DANA)
    return DANA


def expect_dashboard_of(page: Page, company: str) -> None:
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(company)
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def expect_signed_out(page: Page) -> None:
    """A signed-out visitor asking for the dashboard is sent to the sign-in page."""
    page.goto("/dashboard")
    expect(page).to_have_url(re.compile(r"/auth/login\?next=/dashboard$"))
    expect(page.get_by_role("heading", name="Sign in to FleetOS")).to_be_visible()


def test_known_contact_signs_in_through_the_link_page(page, live_server, acme):
    page.goto("/auth/login")
    page.get_by_label("E-mail or mobile number").fill(acme)
    shot(page, "1-login")
    page.get_by_role("button", name="Send me a sign-in link").click()
    expect(page.get_by_role("heading", name="Check your messages")).to_be_visible()
    expect(page.get_by_text(acme)).to_be_visible()
    shot(page, "2-check-email")

    link = mailed_link(live_server.smtp, acme)
    assert link.startswith(live_server("/auth/link/"))  # BASE_URL is the live server's
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Continue as {acme} (Acme Fleet)")
    shot(page, "3-confirm-link")

    page.get_by_role("button", name="Continue").click()
    expect_dashboard_of(page, "Acme Fleet")
    shot(page, "4-dashboard")


def test_sign_in_works_with_javascript_disabled(new_context: NewContext, live_server, acme):
    page = new_context(javascript=False).new_page()
    page.goto("/auth/login")
    assert page.evaluate("typeof window.htmx") == "undefined"  # the page's scripts never ran

    sign_in(page, live_server.smtp, acme)
    expect_dashboard_of(page, "Acme Fleet")
    shot(page, "dashboard-without-javascript")


def test_a_mail_scanner_opening_the_link_neither_signs_in_nor_burns_it(
    new_context: NewContext, live_server, acme
):
    person = new_context().new_page()
    ask_for_link(person, acme)
    link = mailed_link(live_server.smtp, acme)

    scanner = new_context().new_page()
    for _ in range(2):  # scanners may fetch a link more than once
        scanner.goto(link)
        expect(scanner.get_by_role("button", name="Continue")).to_be_visible()
    shot(scanner, "scanner-opened-link")
    expect_signed_out(scanner)

    person.goto(link)
    person.get_by_role("button", name="Continue").click()
    expect_dashboard_of(person, "Acme Fleet")

    scanner.goto(link)  # now used: nobody else gets in with it
    expect(scanner.get_by_role("heading", name="This link was already used")).to_be_visible()
    shot(scanner, "scanner-after-use")
    expect_signed_out(scanner)


def test_sign_out_button_signs_out(page, live_server, acme):
    sign_in(page, live_server.smtp, acme)
    expect_dashboard_of(page, "Acme Fleet")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/auth/login$"))
    expect(page.get_by_role("status")).to_have_text("You are signed out.")
    shot(page, "signed-out")
    expect_signed_out(page)
