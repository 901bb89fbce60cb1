"""The SMS channel on the web: short links (``/s/<key>``) and the gateway's replies
(``/sms/inbound``)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from ..extensions import csrf, limiter
from ..messaging import credentials
from . import gateway
from . import inbound as inbound_sms

bp = Blueprint("sms", __name__)


@bp.after_request
def private_short_links(response: Response) -> Response:
    # A short link stands for a sign-in link: keep it out of Referer headers and caches.
    if request.endpoint == "sms.short_link":
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
    return response


def _sender_key() -> str:
    """Rate-limit key for replies: the sending number, as the gateway names it (only
    signed calls are counted or refused: see ``replies_per_number``)."""
    sender = request.form.get("From")
    if not sender:
        try:
            payload = request.get_json(silent=True)
        except RecursionError:  # nested beyond what Python parses: no number in it
            payload = None
        sender = payload.get("from", "") if isinstance(payload, dict) else ""
    return f"sms-from:{str(sender)[:40]}"


@bp.get("/s/<key>")
def short_link(key: str) -> BaseResponse | tuple[str, int]:
    """Open the link an SMS's short link stands for: its confirmation page (a GET of it
    burns nothing: scanners and link previews are harmless)."""
    token = credentials.token_for_short_key(key)
    if token is None:
        # Unknown, used or expired: the same page, which says how to get a new one.
        return render_template("auth/link_error.html", reason="invalid", link=None, token=""), 404
    return redirect(url_for("auth.link", token=token), code=303)


def _per_number() -> str:
    return str(current_app.config["SMS_INBOUND_LIMIT_PER_NUMBER"])


# Replies per sending number (a loop between two auto-responders ends here).
# Only signed calls are counted, or refused with a 429: an unsigned caller can neither
# spend a number's budget nor learn from a 429 that the number texts FleetOS (it gets
# the 403 every unsigned call gets).
replies_per_number = limiter.limit(
    _per_number, key_func=_sender_key, exempt_when=lambda: not gateway.signed()
)


@bp.post("/sms/inbound")
@replies_per_number
def inbound() -> BaseResponse | tuple[str, int, dict[str, str]]:
    """Take a reply from the SMS gateway: Twilio's form-encoded webhook, or the webhook
    backend's signed JSON. An unsigned or badly signed call changes nothing (403)."""
    received = gateway.verified_inbound()
    if received is None:
        # The same answer whoever the number is: an unsigned caller learns nothing.
        return (
            "Forbidden: the request is not signed by the configured SMS gateway.\n",
            403,
            {"Content-Type": "text/plain; charset=utf-8"},
        )
    inbound_sms.receive(received.sms)
    return received.acknowledgement()


# A gateway calls /sms/inbound, not a browser: its signature stands in for CSRF.
csrf.exempt(inbound)
