"""Security headers on every response Flask answers.

* ``Content-Security-Policy``: scripts and styles only from FleetOS's own
  static files (no inline script or style, no ``eval``: htmx is configured
  with ``allowEval: false``), and no page may be framed (``frame-ancestors
  'none'``), so no other site can overlay the dashboard's buttons.
* ``X-Content-Type-Options: nosniff``, ``Referrer-Policy`` (a link page sets
  its own ``no-referrer``: its URL holds a token), ``X-Frame-Options`` for
  browsers that predate ``frame-ancestors``.
* ``Cache-Control: no-store`` on every page of a signed-in contact: nothing of
  a company's work stays in a shared computer's cache.
* ``Strict-Transport-Security`` when ``BASE_URL`` is https.

``/healthz`` and ``/readyz`` are answered in front of Flask (fleetos/health.py)
and are not pages.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, g


def content_security_policy(img_sources: str = "") -> str:
    """The pages' policy; ``img_sources`` are origins images may also come from."""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            # Pico draws its checkboxes and select arrows with data: SVGs.
            f"img-src 'self' data:{' ' + img_sources if img_sources else ''}",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


CONTENT_SECURITY_POLICY = content_security_policy()


def attachment_image_origins(config: Mapping[str, Any]) -> str:
    """With the s3 backend, photos are fetched from the store itself (a presigned URL that
    FleetOS redirects to after its own check), so the pages' policy must allow that origin."""
    if config.get("ATTACHMENT_STORAGE") != "s3":
        return ""
    endpoint = config.get("S3_ENDPOINT_URL")
    if not endpoint:
        return "https://*.amazonaws.com"
    parts = urlsplit(str(endpoint))
    return f"{parts.scheme}://{parts.netloc}"


# A year; browsers renew it on every visit.
HSTS = "max-age=31536000; includeSubDomains"


def register_security_headers(app: Flask) -> None:
    https = str(app.config["BASE_URL"]).startswith("https://")
    policy = content_security_policy(attachment_image_origins(app.config))

    @app.after_request
    def security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", policy)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        # A response that chose its own private caching (an attachment, revalidated by
        # its ETag) keeps it: "private" already keeps it out of shared caches.
        if g.get("contact") is not None and "private" not in headers.get("Cache-Control", ""):
            headers["Cache-Control"] = "no-store"
        if https:
            headers.setdefault("Strict-Transport-Security", HSTS)
        return response
