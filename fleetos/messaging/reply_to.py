"""Reply addresses: ``reply+<token>@INBOUND_MAIL_DOMAIN`` on every mail about a request.

A reply to that address acts on the request (``fleetos/actions/replies.py``).
The token names a ``reply_addresses`` row (the request, the address the mail
went to, the company that address acts for) and signs what the row says, with
SECRET_KEY (and its fallbacks, so rotating the key does not orphan replies to
older mail). It is short, lower case and made of letters and digits only:

* a mail address's local part holds at most 64 characters, and ``reply+`` and
  32 characters fit in it with room to spare;
* some mail systems change the case of local parts, or treat dots and dashes
  specially; base32 in lower case survives all of that.

The token is long-lived and revocable (the row's ``revoked_at``; when it dies
is the reply core's rule). It is not a link token (``links.py``): nothing
reads it as a sign-in, whatever its purpose field could be made to say.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import uuid

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from ..extensions import db
from ..models import ReplyAddress

LOCAL_PREFIX = "reply+"
KEY_BYTES = SIGNATURE_BYTES = 10  # 16 base32 characters each
TOKEN = re.compile(r"[a-z2-7]{32}")
SALT = b"fleetos.reply-address"


def _b32(raw: bytes) -> str:
    return base64.b32encode(raw).decode().lower().rstrip("=")


def _signature(key: str, secret: str, facts: str) -> str:
    mac = hmac.new(secret.encode(), SALT + b"|" + key.encode() + b"|" + facts.encode(), "sha256")
    return _b32(mac.digest()[:SIGNATURE_BYTES])


def _facts(request_id: uuid.UUID, address: str, company_id: uuid.UUID) -> str:
    return f"{request_id}|{address}|{company_id}"


def _secrets() -> list[str]:
    """The current key first, then the older ones still accepted."""
    config = current_app.config
    return [config["SECRET_KEY"], *(config.get("SECRET_KEY_FALLBACKS") or [])]


def token_for(row: ReplyAddress) -> str:
    facts = _facts(row.request_id, row.address, row.company_id)
    return row.reply_address_id + _signature(row.reply_address_id, _secrets()[0], facts)


def address_for(row: ReplyAddress) -> str | None:
    """The reply address of ``row`` (None when INBOUND_MAIL_DOMAIN is not set)."""
    domain = current_app.config.get("INBOUND_MAIL_DOMAIN")
    return f"{LOCAL_PREFIX}{token_for(row)}@{domain}" if domain else None


def issue(request_id: uuid.UUID, address: str, company_id: uuid.UUID) -> ReplyAddress:
    """The live reply address of ``address`` on the request, made on first use.

    In the caller's transaction; two workers mailing the same address at once
    end with one row (the partial unique index).
    """
    live = select(ReplyAddress).where(
        ReplyAddress.request_id == request_id,
        ReplyAddress.address == address,
        ReplyAddress.revoked_at.is_(None),
    )
    row = db.session.scalar(live)
    if row is not None:
        return row
    db.session.execute(
        insert(ReplyAddress)
        .values(
            reply_address_id=_b32(secrets.token_bytes(KEY_BYTES)),
            request_id=request_id,
            address=address,
            company_id=company_id,
        )
        .on_conflict_do_nothing(
            index_elements=[ReplyAddress.request_id, ReplyAddress.address],
            index_where=ReplyAddress.revoked_at.is_(None),
        )
    )
    row = db.session.scalar(live)
    assert row is not None  # inserted now, or by the worker that won the race
    return row


def token_in(recipient: str) -> str | None:
    """The token of ``recipient`` if it is one of FleetOS's reply addresses in form.

    ``reply+<token>@INBOUND_MAIL_DOMAIN`` (any domain when it is unset); case
    does not matter. Checks the form only, not the signature.
    """
    local, at, domain = recipient.strip().strip("<>").rpartition("@")
    if not at:
        return None
    expected = current_app.config.get("INBOUND_MAIL_DOMAIN")
    if expected and domain.lower().rstrip(".") != expected:
        return None
    local = local.lower()
    if not local.startswith(LOCAL_PREFIX):
        return None
    token = local[len(LOCAL_PREFIX) :]
    return token if TOKEN.fullmatch(token) else None


def read(token: str) -> ReplyAddress | None:
    """The row ``token`` names if its signature holds (with any accepted key); else None.

    Says nothing of whether the row is still alive: that is the reply core's rule.
    """
    token = token.lower()
    if not TOKEN.fullmatch(token):
        return None
    key, signature = token[: len(token) // 2], token[len(token) // 2 :]
    row = db.session.get(ReplyAddress, key)
    if row is None:
        return None
    facts = _facts(row.request_id, row.address, row.company_id)
    for secret in _secrets():
        if hmac.compare_digest(_signature(key, secret, facts), signature):
            return row
    return None


def fingerprint(token: str) -> str:
    """A short, stable name for a token in logs, which never hold the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()[:12]


# -- the link that accepts or discards a held reply -------------------------------------------

HELD_SALT = "fleetos.held-reply"


def _held_serializer() -> URLSafeTimedSerializer:
    # Its own salt: never a sign-in link (links.read_token knows nothing of it), and a
    # sign-in link is never one of these.
    fallbacks = list(current_app.config.get("SECRET_KEY_FALLBACKS") or [])
    keys = [*reversed(fallbacks), current_app.config["SECRET_KEY"]]
    return URLSafeTimedSerializer(keys, salt=HELD_SALT)


def held_reply_token(held_reply_id: uuid.UUID, address: str) -> str:
    """The token of the page where ``address`` accepts or discards a held reply."""
    return _held_serializer().dumps({"h": str(held_reply_id), "a": address})


def read_held_reply_token(token: str) -> tuple[uuid.UUID, str] | None:
    """The held reply and the address a token was made for; None if it is no good (or old)."""
    try:
        payload = _held_serializer().loads(
            token, max_age=int(current_app.config["HELD_REPLY_LINK_MAX_AGE"])
        )
        return uuid.UUID(str(payload["h"])), str(payload["a"])
    except (BadSignature, KeyError, TypeError, ValueError):
        return None
