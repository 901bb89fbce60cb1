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

from flask import Flask, Response, g

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        # Pico draws its checkboxes and select arrows with data: SVGs.
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
# A year; browsers renew it on every visit.
HSTS = "max-age=31536000; includeSubDomains"


def register_security_headers(app: Flask) -> None:
    https = str(app.config["BASE_URL"]).startswith("https://")

    @app.after_request
    def security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if g.get("contact") is not None:
            headers["Cache-Control"] = "no-store"
        if https:
            headers.setdefault("Strict-Transport-Security", HSTS)
        return response
