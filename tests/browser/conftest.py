"""Fixtures for tests in a real browser: FleetOS served over HTTP, driven by Debian's Chromium.

The test client cannot show what a person's browser does with our pages (cookies,
redirects, forms without JavaScript); these fixtures run the app for real on a
loopback port, mail to a real SMTP server, and drive Chromium through Playwright.
Playwright's own browser download cannot work here: scripts/install-browser.sh
installs Debian's Chromium instead (tests/chromium.py launches it).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page, expect
from werkzeug.serving import make_server

from fleetos.extensions import db
from fleetos.models import Company, Contact, ServiceRequest
from tests.chromium import NewContext, context_factory
from tests.mailserver import MailServer, link_in
from tests.support.apps import build_app, discard_attachments, mail_config

HERE = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    # --strict-markers refuses unknown marks; pyproject's `markers` may not list it yet.
    config.addinivalue_line("markers", "browser: drives a real Chromium")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test in this folder, so `-m "not browser"` skips them all at once."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.browser)


# -- the app, for real ---------------------------------------------------------------------


@dataclass
class LiveServer:
    """The running app: its URL (links in mails point here), the app, and its mail server."""

    url: str
    app: Flask
    smtp: MailServer

    def __call__(self, path: str = "/") -> str:
        return self.url + path


def live_config(smtp: MailServer) -> dict[str, object]:
    return {
        **mail_config(smtp),
        # Mail goes out by itself after each response, as in production.
        "MAIL_DELIVER_AFTER_RESPONSE": True,
        "RATELIMIT_ENABLED": False,
        "SESSION_COOKIE_SECURE": False,  # plain http on loopback
    }


@pytest.fixture
def live_overrides() -> dict[str, object]:
    """Extra config for the live app; override this fixture in a test module to change it."""
    return {}


@pytest.fixture
def live_server(
    head_database: str, smtp: MailServer, live_overrides: dict[str, object]
) -> Iterator[LiveServer]:
    """FleetOS over HTTP on 127.0.0.1 (a free port), on a fresh database, in a daemon thread."""
    app = build_app(head_database, **{**live_config(smtp), **live_overrides})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    app.config["BASE_URL"] = url  # known only once the port is bound; no request has run yet
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(url=url, app=app, smtp=smtp)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
        with app.app_context():
            db.engine.dispose()
        discard_attachments(app)


# -- Chromium (tests/chromium.py launches it) ----------------------------------------------


@pytest.fixture
def new_context(
    chromium: Browser, live_server: LiveServer, request: pytest.FixtureRequest
) -> Iterator[NewContext]:
    """Make independent browser contexts (another person, a mail scanner, no JavaScript).

    Call ``new_context(javascript=False)`` for one with JavaScript disabled; other
    keywords go to Playwright's ``new_context`` (``viewport={"width": 390, ...}`` for a
    phone). Each has ``base_url`` the live server; all close after the test.
    """
    yield from context_factory(chromium, live_server.url, request)


@pytest.fixture
def context(new_context: NewContext) -> BrowserContext:
    return new_context()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


# -- helpers --------------------------------------------------------------------------------


def add_company(
    app: Flask, name: str, email_domain: str | None, *contacts: str, company_type: str = "fleet"
) -> None:
    """Put a company and its contacts (e-mail addresses) in the live server's database."""
    with app.app_context():
        try:
            company = Company(name=name, company_type=company_type, email_domain=email_domain)
            db.session.add(company)
            db.session.flush()
            for address in contacts:
                db.session.add(
                    Contact(
                        company_id=company.company_id, contact_value=address, contact_type="email"
                    )
                )
            db.session.commit()
        finally:
            db.session.remove()


DANA = "dana@acme-fleet.com"
BOB = "bob@bobsrepair.com"


def dana_sent_bob_a_request(app: Flask, title: str) -> uuid.UUID:
    """Acme Fleet (Dana) sent Bob's Truck Repair (Bob) a request titled ``title``."""
    with app.app_context():
        try:
            fleet = Company(name="Acme Fleet", company_type="fleet", email_domain="acme-fleet.com")
            shop = Company(name="Bob's Truck Repair", company_type="supplier")
            db.session.add_all([fleet, shop])
            db.session.flush()
            dana, bob = (
                Contact(
                    company_id=company.company_id,
                    contact_value=address,
                    contact_type="email",
                    display_name=name,
                )
                for company, address, name in (
                    (fleet, DANA, "Dana Dispatch"),
                    (shop, BOB, "Bob Builder"),
                )
            )
            db.session.add_all([dana, bob])
            db.session.flush()
            found = ServiceRequest(
                fleet_company_id=fleet.company_id,
                supplier_company_id=shop.company_id,
                submitted_by_contact_id=dana.contact_id,
                supplier_email=BOB,
                vehicle="Unit 14",
                title=title,
                status="new",
            )
            db.session.add(found)
            db.session.commit()
            return found.request_id
        finally:
            db.session.remove()


def ask_for_link(page: Page, address: str) -> None:
    """Fill in and send the sign-in form, as a person would."""
    page.goto("/auth/login")
    page.get_by_label("E-mail or mobile number").fill(address)
    page.get_by_role("button", name="Send me a sign-in link").click()
    expect(page.get_by_role("heading", name="Check your messages")).to_be_visible()


def mailed_link(smtp: MailServer, address: str, *, seen: int = 0, timeout: float = 10) -> str:
    """Wait for a mail to ``address`` beyond the ``seen`` first ones, and return its link."""
    deadline = time.monotonic() + timeout
    while len(smtp.to(address)) <= seen and time.monotonic() < deadline:
        smtp.wait_for(len(smtp.messages) + 1, timeout=max(deadline - time.monotonic(), 0))
    messages = smtp.to(address)
    assert len(messages) > seen, f"no mail to {address} within {timeout}s"
    return link_in(messages[-1])


def use_link(page: Page, link: str) -> None:
    """Open the mailed link and press Continue; the person ends on the dashboard."""
    page.goto(link)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/dashboard")


def sign_in(page: Page, smtp: MailServer, address: str) -> None:
    """Sign in through the real UI: the form, the mail, the link page, the dashboard."""
    seen = len(smtp.to(address))
    ask_for_link(page, address)
    use_link(page, mailed_link(smtp, address, seen=seen))
