"""The SMS channel on the web: short links (``/s/<key>``) and the gateway's replies
(``/sms/inbound``)."""

from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from ..messaging import credentials

bp = Blueprint("sms", __name__)


@bp.after_request
def private_short_links(response: Response) -> Response:
    # A short link stands for a sign-in link: keep it out of Referer headers and caches.
    if request.endpoint == "sms.short_link":
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/s/<key>")
def short_link(key: str) -> BaseResponse | tuple[str, int]:
    """Open the link an SMS's short link stands for: its confirmation page (a GET of it
    burns nothing: scanners and link previews are harmless)."""
    token = credentials.token_for_short_key(key)
    if token is None:
        # Unknown, used or expired: the same page, which says how to get a new one.
        return render_template("auth/link_error.html", reason="invalid", link=None, token=""), 404
    return redirect(url_for("auth.link", token=token), code=303)
