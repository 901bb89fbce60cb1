"""Links in messages: signed, expiring, single-use tokens (itsdangerous), and URLs on BASE_URL.

A link token says who (canonical contact value), which company, for what
purpose, where to go next and carries a random id (``jti``). Each purpose
has its own salt, so a token made for one purpose never verifies as another.
Single use is enforced by :mod:`fleetos.actions.access` in the database.

Every URL that leaves FleetOS in a message is built from the URL map on
``BASE_URL`` (:func:`external_url`), never from the Host header of whatever
request caused it: that header is the client's to choose.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from werkzeug.routing import MapAdapter

from ..text import forbidden_character
from .unlinked import OwnLink

# A place to go next longer than this is not one of ours (and would bloat every link).
NEXT_MAX = 2000
# How long after it expired a link may still ask for a fresh one (to the same address).
FRESH_LINK_WINDOW = timedelta(days=30)


class Purpose(StrEnum):
    SIGN_IN = "sign-in"
    SIGN_UP = "sign-up"
    INVITE = "invite"
    DAILY_ACCESS = "daily-access"
    # Sign-in links inside request notifications: they must outlive a busy day.
    NOTIFICATION = "notification"

    @property
    def salt(self) -> str:
        return f"fleetos.link.{self.value}"

    @property
    def max_age(self) -> int:
        """Seconds a link of this purpose stays valid (from config)."""
        setting = {
            Purpose.SIGN_IN: "MAGIC_LINK_MAX_AGE",
            Purpose.SIGN_UP: "MAGIC_LINK_MAX_AGE",
            Purpose.INVITE: "INVITE_LINK_MAX_AGE",
            Purpose.DAILY_ACCESS: "DAILY_LINK_MAX_AGE",
            Purpose.NOTIFICATION: "NOTIFICATION_LINK_MAX_AGE",
        }[self]
        return int(current_app.config[setting])


class LinkError(Exception):
    """A link that cannot be used; ``reason`` picks the page that explains it."""

    def __init__(self, reason: str, link: Link | None = None) -> None:
        super().__init__(reason)
        self.reason = reason  # "invalid", "expired", "used" or "revoked"
        # Set only when the signature is valid: we then know whom to send a fresh link.
        self.link = link


@dataclass(frozen=True)
class Link:
    """What a verified token says."""

    purpose: Purpose
    contact_value: str
    company_id: str | None
    next_path: str
    jti: str
    extra: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        return {
            "p": self.purpose.value,
            "v": self.contact_value,
            "c": self.company_id,
            "n": self.next_path,
            "j": self.jti,
            **({"x": self.extra} if self.extra else {}),
        }

    @classmethod
    def from_payload(cls, payload: Any) -> Link:
        if not isinstance(payload, dict):
            raise ValueError("payload is not an object")
        extra = payload.get("x") or {}
        if not isinstance(extra, dict):
            raise ValueError("extra is not an object")
        return cls(
            purpose=Purpose(payload["p"]),
            contact_value=str(payload["v"]),
            company_id=payload.get("c"),
            next_path=safe_next(payload.get("n")),
            jti=str(payload["j"]),
            extra=extra,
        )


def serializer(purpose: Purpose) -> URLSafeTimedSerializer:
    # itsdangerous signs with the last key and verifies newest first, so the
    # current key goes last and the fallbacks (given newest first) before it.
    fallbacks = list(current_app.config.get("SECRET_KEY_FALLBACKS") or [])
    keys = [*reversed(fallbacks), current_app.config["SECRET_KEY"]]
    return URLSafeTimedSerializer(keys, salt=purpose.salt)


def make_token(
    purpose: Purpose,
    contact_value: str,
    *,
    company_id: object | None = None,
    next_path: str | None = None,
    **extra: Any,
) -> str:
    link = Link(
        purpose=purpose,
        contact_value=contact_value,
        company_id=str(company_id) if company_id else None,
        next_path=safe_next(next_path),
        jti=secrets.token_urlsafe(16),
        extra=extra,
    )
    return serializer(purpose).dumps(link.payload())


def read_token(token: str) -> Link:
    """Verify ``token`` against every purpose's salt; raise LinkError if it is no good."""
    for purpose in Purpose:
        signed = serializer(purpose)
        try:
            payload = signed.loads(token, max_age=purpose.max_age)
        except SignatureExpired as exc:
            raise LinkError("expired", _renewable(exc, signed, purpose)) from None
        except BadSignature:
            continue
        link = _link_or_none(payload, purpose)
        if link is None:
            raise LinkError("invalid")
        return link
    raise LinkError("invalid")


def read_fresh_token(token: str) -> Link:
    """What a token FleetOS has just made says (its age is not checked: it has none)."""
    for purpose in Purpose:
        try:
            payload = serializer(purpose).loads(token)
        except BadSignature:
            continue
        link = _link_or_none(payload, purpose)
        if link is not None:
            return link
    raise LinkError("invalid")


def _renewable(
    exc: SignatureExpired, signed: URLSafeTimedSerializer, purpose: Purpose
) -> Link | None:
    """The expired link (its signature is good), if recent enough to ask for a fresh one."""
    age_limit = FRESH_LINK_WINDOW + timedelta(seconds=purpose.max_age)
    if exc.date_signed is None or datetime.now(UTC) - exc.date_signed > age_limit:
        return None
    if exc.payload is None:
        return None
    try:
        payload = signed.load_payload(exc.payload)
    except BadSignature:
        return None
    return _link_or_none(payload, purpose)


def _link_or_none(payload: Any, purpose: Purpose) -> Link | None:
    try:
        link = Link.from_payload(payload)
    except (KeyError, ValueError, TypeError):
        return None
    # A payload claiming another purpose than its salt's is not ours to honour.
    return link if link.purpose is purpose else None


def safe_next(path: object, default: str = "/dashboard") -> str:
    """Return ``path`` if it is a relative path on this site, else ``default``.

    Refuses absolute URLs, scheme-relative ``//host`` and ``/\\host`` forms,
    and anything with a scheme, so a link can never send someone off-site.
    """
    if not isinstance(path, str) or not path.startswith("/"):
        return default
    if (
        path.startswith(("//", "/\\"))
        or len(path) > NEXT_MAX
        or "\\" in path
        or forbidden_character(path) is not None
        or ":" in path.split("?")[0]
    ):
        return default
    return path


def _base_url_adapter() -> MapAdapter:
    base = urlsplit(current_app.config["BASE_URL"])
    return current_app.url_map.bind(
        base.netloc, script_name=base.path or "/", url_scheme=base.scheme or "http"
    )


def external_url(endpoint: str, **values: Any) -> OwnLink:
    """The absolute URL of ``endpoint`` on BASE_URL (for messages; works outside requests)."""
    return OwnLink(_base_url_adapter().build(endpoint, values, force_external=True))


def site_path(endpoint: str, **values: Any) -> str:
    """The path of ``endpoint`` on this site (where a link sends someone next)."""
    return _base_url_adapter().build(endpoint, values)


class TokenLink(OwnLink):
    """The URL of a link's confirmation page, knowing its token: an SMS, which has no
    room for it, carries a short link to the same token instead."""

    token: str

    def __new__(cls, url: str, token: str) -> TokenLink:
        link = super().__new__(cls, url)
        link.token = token
        return link


def link_url(token: str) -> TokenLink:
    """The URL of the confirmation page for a link token."""
    return TokenLink(external_url("auth.link", token=token), token)
