"""Debian's Chromium for the browser and end-to-end tests: one pytest plugin, one launch.

Loaded from tests/conftest.py (``pytest_plugins``), so its session-scoped ``chromium``
is the same for tests/browser and tests/e2e: Playwright's sync API allows one running
instance per thread, and a fixture in one folder's conftest is invisible to another.
Playwright's own browser download cannot work here: scripts/install-browser.sh
installs Debian's Chromium instead, and nothing launches until a test asks for it.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from fleetos import REPO_ROOT

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
TIMEOUT_MS = 10_000

NewContext = Callable[..., BrowserContext]

# Every page FleetOS serves runs under a strict Content-Security-Policy
# (fleetos/headers.py). Each context reports what the browser refused, so a
# test whose pages broke the policy fails even if what it checks still works.
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", function (event) {
  window.fleetosCspViolation(
    event.violatedDirective + " blocked " + (event.blockedURI || "inline") +
    " on " + document.location.pathname + " (" + (event.sample || "") + ")");
});
"""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator:
    """Keep each phase's report on the item, so a fixture's teardown knows if the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def chromium(playwright: Playwright) -> Iterator[Browser]:
    """One headless Chromium for the run (contexts keep tests apart); fails if it is missing."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install-browser.sh (as root) first")
    launched = playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    yield launched
    launched.close()


def context_factory(
    browser: Browser, base_url: str, request: pytest.FixtureRequest
) -> Iterator[NewContext]:
    """Body of a ``new_context`` fixture: make contexts on ``base_url``, close them after.

    Each context has its own cookies, the tests' default timeout and ``base_url``, so
    ``page.goto("/path")`` works; ``javascript=False`` makes one with JavaScript off, and
    other keywords go to Playwright's ``new_context``. If the test failed, every page
    left open is saved as a screenshot before its context closes. Any Content-Security-
    Policy violation a page reported (to its listener or the console) fails the test.
    """
    contexts: list[BrowserContext] = []
    violations: list[str] = []
    request.node.csp_violations = violations  # a test of the listener itself reads them

    def make(*, javascript: bool = True, **options: object) -> BrowserContext:
        context = browser.new_context(base_url=base_url, java_script_enabled=javascript, **options)
        context.set_default_timeout(TIMEOUT_MS)
        context.expose_function("fleetosCspViolation", lambda text: violations.append(text))
        context.add_init_script(CSP_LISTENER)
        context.on(
            "console",
            lambda message: (
                violations.append(message.text)
                if "Content Security Policy" in message.text
                else None
            ),
        )
        contexts.append(context)
        return context

    yield make
    report = getattr(request.node, "report_call", None)
    for number, context in enumerate(contexts, start=1):
        if report is not None and report.failed:
            for index, page in enumerate(context.pages, start=1):
                shot(page, f"failure-context{number}-page{index}")
        context.close()
    assert not violations, f"the pages broke their Content-Security-Policy: {violations}"


def wait_until(page: Page, expression: str, *, timeout_ms: int = TIMEOUT_MS) -> None:
    """Wait until ``expression`` is true in ``page``.

    Playwright's ``wait_for_function`` polls with ``eval`` inside the page, which
    FleetOS's Content-Security-Policy forbids; ``evaluate`` runs outside its reach.
    """
    deadline = time.monotonic() + timeout_ms / 1000
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout_ms} ms: {expression}")
        page.wait_for_timeout(25)


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
