"""Issue 10, item 7: security headers on every page, and nothing inline for the CSP to block.

As reported: no Content-Security-Policy, so a same-site page could frame the
signed-in dashboard with its action buttons; no nosniff, no Referrer-Policy,
no Cache-Control on signed-in pages, no HSTS. Every GET route of the URL map
is fetched, signed out and signed in, so a page added later is covered too.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from tests.support.apps import build_app, mail_config
from tests.support.web import htmx

SKIP = {"static", "favicon"}  # files, checked below


def page_urls(app, world) -> list[str]:
    urls = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint in SKIP:
            continue
        values = {
            "request_id": world.request_id,
            "token": "not-a-token",
            "key": "not-a-key",  # a short link (/s/<key>)
            # An attachment that does not exist: its page is the 404 page (real files
            # answer with a sandboxing policy of their own: tests/attachments/test_serving.py).
            "attachment_id": "00000000-0000-4000-8000-000000000000",
        }
        urls.append(rule.build({k: values[k] for k in rule.arguments})[1])
    return urls


class Inline(HTMLParser):
    """What a strict CSP would block: inline scripts, style attributes, event handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        names = {name for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self.found.append("<script> without src")
        if tag == "style":
            self.found.append("<style>")
        for name, value in attrs:
            if name == "style" or name.startswith("on"):
                self.found.append(f"{tag} {name}={value!r}")
            if (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"{tag} {name}={value!r}")
            if name == "hx-trigger" and "[" in (value or ""):
                self.found.append(f"{tag} hx-trigger filter (needs eval): {value!r}")


@pytest.mark.parametrize("who", [None, "dana", "bob"])
def test_every_page_has_the_headers_and_nothing_inline(app, world, as_, who):
    client = as_(who).client if who else app.test_client()
    for url in page_urls(app, world):
        for response in (client.get(url), htmx(as_(who), url) if who else client.get(url)):
            headers = response.headers
            csp = headers["Content-Security-Policy"]
            assert "frame-ancestors 'none'" in csp, url
            assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp, url
            assert "'unsafe-eval'" not in csp, url
            assert headers["X-Content-Type-Options"] == "nosniff", url
            assert headers["Referrer-Policy"], url
            assert "Strict-Transport-Security" not in headers  # BASE_URL is http here
            if who and response.status_code == 200:
                assert headers["Cache-Control"] == "no-store", url
            inline = Inline()
            inline.feed(response.text)
            assert inline.found == [], (url, inline.found)


@pytest.mark.parametrize("url", ["/static/fleetos.css", "/favicon.ico"])
def test_files_are_cacheable_and_typed(app, as_, url):
    with as_("dana").client.get(url) as response:
        assert response.status_code == 200
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "no-store" not in response.headers.get("Cache-Control", "")


def test_link_pages_keep_their_stricter_referrer_policy(app, browser, acme):
    response = browser.client.get("/auth/link/not-a-token")
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_hsts_when_base_url_is_https(head_database, smtp):
    app = build_app(head_database, **mail_config(smtp), BASE_URL="https://fleetos.example")
    response = app.test_client().get("/auth/login", base_url="https://fleetos.example")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_with_s3_storage_pages_may_show_photos_from_the_store_and_nowhere_else(head_database, smtp):
    # Thumbnails redirect to a presigned URL on the store's own origin: a policy that
    # did not name it would blank every photo; one that allowed any origin would let a
    # note's markup (were it ever to slip through) fetch images from anywhere.
    app = build_app(
        head_database,
        **mail_config(smtp),
        ATTACHMENT_STORAGE="s3",
        S3_BUCKET="fleetos",
        S3_ENDPOINT_URL="http://127.0.0.1:9000/some/path",
    )
    csp = app.test_client().get("/auth/login").headers["Content-Security-Policy"]
    [img_src] = [part.strip() for part in csp.split(";") if part.strip().startswith("img-src")]
    assert img_src == "img-src 'self' data: http://127.0.0.1:9000"
