"""What an SMS gateway posts to ``/sms/inbound``, verified before anything is read.

* Twilio: a form (``From``, ``Body``, ``NumMedia``, ``MediaUrl0``...) signed
  with ``X-Twilio-Signature`` under ``TWILIO_AUTH_TOKEN``, checked by Twilio's
  own library against the URL Twilio called (on ``BASE_URL``, as configured in
  Twilio's console).
* The webhook backend: JSON ``{"from": "+1...", "body": "..."}`` (and, if the
  gateway has one, its message ``"id"``) signed with
  ``X-FleetOS-Signature: sha256=<hex>`` (HMAC-SHA256 of the raw body under
  ``SMS_WEBHOOK_SECRET``).

A call that is neither, or whose signature is missing or wrong, is None: the
view answers 403 and nothing is read further, looked up or changed.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
from flask import Response, current_app, g, request
from twilio.request_validator import RequestValidator

from ..actions.attachments import Attachable, IncomingFile
from ..messaging.links import external_url
from .backends import SIGNATURE_HEADER, sign
from .inbound import InboundSms

TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


@dataclass(frozen=True)
class Received:
    sms: InboundSms
    shape: str  # "twilio" or "webhook"
    media_urls: tuple[str, ...] = field(default=())

    def acknowledgement(self) -> Response:
        """What the gateway expects back. FleetOS's answer goes out through the outbox."""
        if self.shape == "twilio":
            return Response(TWIML_EMPTY, mimetype="text/xml")
        return Response('{"ok": true}', mimetype="application/json")


def verified_inbound() -> Received | None:
    if request.mimetype == "application/json":
        return _webhook()
    if request.mimetype == "application/x-www-form-urlencoded":
        return _twilio()
    return None


def signed() -> bool:
    """Whether this call carries the configured gateway's valid signature (reads nothing
    else; checked once per request, though the rate limit and the view both ask)."""
    if "sms_signed" not in g:
        if request.mimetype == "application/json":
            g.sms_signed = _webhook_signed()
        elif request.mimetype == "application/x-www-form-urlencoded":
            g.sms_signed = _twilio_signed()
        else:
            g.sms_signed = False
    return bool(g.sms_signed)


def _webhook_signed() -> bool:
    secret = current_app.config.get("SMS_WEBHOOK_SECRET")
    signature = request.headers.get(SIGNATURE_HEADER, "")
    body = request.get_data(cache=True)
    return bool(secret and signature and hmac.compare_digest(signature, sign(body, secret)))


def _twilio_signed() -> bool:
    token = current_app.config.get("TWILIO_AUTH_TOKEN")
    signature = request.headers.get("X-Twilio-Signature", "")
    if not token or not signature:
        return False
    # Twilio signs the URL it was given: this endpoint on BASE_URL (and any query string).
    url = str(external_url("sms.inbound"))
    if request.query_string:
        url += "?" + request.query_string.decode("latin-1")
    return bool(RequestValidator(token).validate(url, request.form.to_dict(flat=True), signature))


def _webhook() -> Received | None:
    if not signed():
        return None
    try:
        payload = json.loads(request.get_data(cache=True))
    except (ValueError, RecursionError):  # not JSON, or nested beyond what Python parses
        return None
    if not isinstance(payload, dict):
        return None
    sender, text = payload.get("from"), payload.get("body")
    if not isinstance(sender, str) or not isinstance(text, str):
        return None
    gateway_id = payload.get("id")
    return Received(InboundSms(sender, text, gateway_id=_clean_id(gateway_id)), "webhook")


def _twilio() -> Received | None:
    if not signed():
        return None
    form = request.form
    urls = tuple(form.get(f"MediaUrl{n}", "") for n in range(_media_count(form.get("NumMedia"))))
    media = _fetch_media([url for url in urls if url])
    sms = InboundSms(
        form.get("From", ""),
        form.get("Body", ""),
        media,
        gateway_id=_clean_id(form.get("MessageSid")),
    )
    return Received(sms, "twilio", urls)


def _clean_id(raw: object) -> str | None:
    """The gateway's id of a message, as text PostgreSQL can store (no NUL), or None."""
    cleaned = str(raw).replace("\x00", "") if raw else ""
    return cleaned or None


def _media_count(raw: str | None) -> int:
    try:
        return max(0, min(int(raw or 0), int(current_app.config["ATTACHMENT_MAX_FILES"])))
    except ValueError:
        return 0


def _fetch_media(urls: list[str]) -> list[Attachable]:
    """The photos of an MMS, fetched from the provider (with its credentials: Twilio can
    require them); a file that cannot be fetched is left out, the words still count."""
    config = current_app.config
    api_host = urlsplit(config["TWILIO_API_BASE"]).netloc
    credentials = (config["TWILIO_ACCOUNT_SID"], config["TWILIO_AUTH_TOKEN"])
    limit = int(config["ATTACHMENT_MAX_BYTES"])
    files: list[Attachable] = []
    for n, url in enumerate(urls, start=1):
        try:
            # The account's credentials go to Twilio's own API host only.
            auth = credentials if urlsplit(url).netloc == api_host else None
            with requests.get(
                url, auth=auth, timeout=float(config["SMS_TIMEOUT"]), stream=True
            ) as answer:
                answer.raise_for_status()
                data = answer.raw.read(limit + 1, decode_content=True)
        except (requests.RequestException, OSError):
            continue
        files.append(IncomingFile(name=f"mms-{n}", data=data))
    return files
