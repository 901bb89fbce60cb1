"""The gateways that carry an SMS, chosen by ``SMS_BACKEND``.

* ``console`` (development): printed, like mail without MAIL_SERVER.
* ``webhook``: ``POST`` of JSON ``{"to": "+14155550100", "body": "..."}`` to
  ``SMS_WEBHOOK_URL``, signed with ``X-FleetOS-Signature: sha256=<hex>``, the
  HMAC-SHA256 of the body under ``SMS_WEBHOOK_SECRET`` (the shape self-hosted
  Android SMS gateways and most providers' relays accept).
* ``twilio``: Twilio's Messages REST API (``TWILIO_ACCOUNT_SID``,
  ``TWILIO_AUTH_TOKEN``, ``TWILIO_FROM``; ``TWILIO_API_BASE`` elsewhere than
  api.twilio.com, for a test server or a regional edge).

The worker calls :func:`send_sms` for an outbox row whose recipient is a phone
number; a raised error is recorded on the row and retried with backoff, except
:class:`SmsRefused` (the gateway refused this message for good), which fails at once.
Each message carries its outbox Message-ID as ``Idempotency-Key`` (Twilio:
``I-Twilio-Idempotency-Token``), so a gateway can drop the duplicate of an
at-least-once delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sys

import requests
from flask import current_app

from ..smtp import Unsendable

BACKENDS = ("console", "webhook", "twilio")
SIGNATURE_HEADER = "X-FleetOS-Signature"


class SmsRefused(Unsendable):
    """The gateway refused this SMS for good (a 4xx: bad number, opted out, bad request)."""


class SmsNotSent(OSError):
    """The gateway did not take the SMS this time (down, busy, 5xx): try again later."""


def sign(body: bytes, secret: str) -> str:
    """The ``X-FleetOS-Signature`` value of ``body``: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def send_sms(to: str, body: str, *, idempotency_key: str | None = None) -> None:
    """Hand one SMS to the configured gateway; raise if it did not take it."""
    config = current_app.config
    backend = config["SMS_BACKEND"]
    timeout = float(config["SMS_TIMEOUT"])
    if backend == "webhook":
        payload = json.dumps({"to": to, "body": body}).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(payload, config["SMS_WEBHOOK_SECRET"]),
        }
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        _check(
            requests.post(config["SMS_WEBHOOK_URL"], data=payload, headers=headers, timeout=timeout)
        )
    elif backend == "twilio":
        sid = config["TWILIO_ACCOUNT_SID"]
        url = f"{config['TWILIO_API_BASE'].rstrip('/')}/2010-04-01/Accounts/{sid}/Messages.json"
        headers = {"I-Twilio-Idempotency-Token": idempotency_key} if idempotency_key else {}
        response = requests.post(
            url,
            data={"To": to, "From": config["TWILIO_FROM"], "Body": body},
            auth=(sid, config["TWILIO_AUTH_TOKEN"]),
            headers=headers,
            timeout=timeout,
        )
        _check(response)
    elif config.get("FLEETOS_ENV") == "production":
        raise SmsNotSent("SMS_BACKEND is console: set webhook or twilio to text phone numbers")
    else:
        print_sms(to, body)


def _check(response: requests.Response) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    detail = f"SMS gateway answered {status}: {response.text[:200]}"
    # 408 and 429 say "not now"; any other 4xx says this message will never go.
    if 400 <= status < 500 and status not in (408, 429):
        raise SmsRefused(detail)
    raise SmsNotSent(detail)


def print_sms(to: str, body: str) -> None:
    # Development only: a newcomer needs the code and the link in the message.
    banner = "-" * 72
    print(f"\n{banner}\nSMS to: {to}\n\n{body}\n{banner}", file=sys.stderr, flush=True)
