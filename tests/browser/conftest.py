"""Fixtures for tests in a real browser: FleetOS served over HTTP, driven by Debian's Chromium.

The test client cannot show what a person's browser does with our pages (cookies,
redirects, forms without JavaScript); these fixtures run the app for real on a
loopback port, mail to a real SMTP server, and drive Chromium through Playwright.
Playwright's own browser download cannot work here: scripts/install-browser.sh
installs Debian's Chromium instead.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright
from werkzeug.serving import make_server

from fleetos import REPO_ROOT
from fleetos.extensions import db
from fleetos.models import Company, Contact
from tests.auth import conftest as auth_fixtures
from tests.conftest import build_app
from tests.mailserver import MailServer, link_in

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"
HERE = Path(__file__).resolve().parent
TIMEOUT_MS = 10_000

# The real aiosmtpd server of the sign-in tests; the live app mails to it.
smtp = auth_fixtures.smtp


def pytest_configure(config: pytest.Config) -> None:
    # --strict-markers refuses unknown marks; pyproject's `markers` may not list it yet.
    config.addinivalue_line("markers", "browser: drives a real Chromium")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test in this folder, so `-m "not browser"` skips them all at once."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator:
    """Keep each phase's report on the item, so teardown knows if the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


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
        **auth_fixtures.mail_config(smtp),
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


# -- Chromium -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """One headless Chromium for the run (contexts keep tests apart); fails if it is missing."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install-browser.sh (as root) first")
    chromium = playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    yield chromium
    chromium.close()


NewContext = Callable[..., BrowserContext]


@pytest.fixture
def new_context(
    browser: Browser, live_server: LiveServer, request: pytest.FixtureRequest
) -> Iterator[NewContext]:
    """Make independent browser contexts (another person, a mail scanner, no JavaScript).

    Call ``new_context(javascript=False)`` for one with JavaScript disabled; other
    keywords go to Playwright's ``new_context`` (``viewport={"width": 390, ...}`` for a
    phone). Each has its own cookies and a ``base_url`` of the live server, so
    ``page.goto("/path")`` works. All are closed after the test, with screenshots of
    their pages if it failed.
    """
    contexts: list[BrowserContext] = []

    def make(*, javascript: bool = True, **options: object) -> BrowserContext:
        context = browser.new_context(
            base_url=live_server.url, java_script_enabled=javascript, **options
        )
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context

    yield make
    failed = getattr(request.node, "report_call", None)
    for number, context in enumerate(contexts, start=1):
        if failed is not None and failed.failed:
            for index, page in enumerate(context.pages, start=1):
                shot(page, f"failure-context{number}-page{index}")
        context.close()


@pytest.fixture
def context(new_context: NewContext) -> BrowserContext:
    return new_context()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


# -- helpers --------------------------------------------------------------------------------


def shot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Save a full-page PNG as test-artifacts/screenshots/<test name>-<name>.png.

    ``full_page=False`` saves only what the viewport shows (for a spot down a long page).
    """
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{_current_test_name()}-{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def _current_test_name() -> str:
    # PYTEST_CURRENT_TEST is "tests/x.py::test_name[param] (call)".
    current = os.environ.get("PYTEST_CURRENT_TEST", "unknown (call)")
    name = current.rsplit(" ", 1)[0].rsplit("::", 1)[-1]
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")


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


def ask_for_link(page: Page, address: str) -> None:
    """Fill in and send the sign-in form, as a person would."""
    page.goto("/auth/login")
    page.get_by_label("Your work e-mail").fill(address)
    page.get_by_role("button", name="E-mail me a sign-in link").click()
    expect(page.get_by_role("heading", name="Check your e-mail")).to_be_visible()


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
