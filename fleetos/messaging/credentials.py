"""What a message carries beside its signed link: a 6-digit code and a short link.

A mail scanner that opens (or even presses) a link, a link opened on another
device than the one that asked: the code is what the person types instead, on
whatever device they are. An SMS has room for a short link only
(``BASE_URL/s/<key>``). Both resolve to the signed link, kept server-side in
``link_credentials`` until it is used; link, code and short link are one
credential, burnt together (``burn``, called when the link is consumed).

A code is stored hashed (HMAC-SHA256 under the app's key, salted with the
link's id), compared in constant time, expires with its link, and dies after
``CODE_TRIES`` wrong tries at its address.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import exists, func, select, update
from sqlalchemy.dialects.postgresql import insert

from ..extensions import db
from ..models import LinkCredential, UsedLinkToken
from .links import external_url, read_fresh_token
from .unlinked import OwnLink

CODE_DIGITS = 6
CODE_TRIES = 5
# 8 characters of base64url: 48 bits, never guessed at any rate a limit lets through.
SHORT_KEY_BYTES = 6


def _row_for(token: str) -> tuple[str, str, int]:
    """The link id, address and lifetime (seconds) of a fresh token FleetOS just made."""
    link = read_fresh_token(token)
    return link.jti, link.contact_value, link.purpose.max_age


def _upsert(token: str, **values: str) -> None:
    jti, address, max_age = _row_for(token)
    statement = insert(LinkCredential).values(
        jti=jti,
        contact_value=address,
        token=token,
        expires_at=func.now() + timedelta(seconds=max_age),
        **values,
    )
    db.session.execute(statement.on_conflict_do_update(index_elements=["jti"], set_=values))


def code_for(token: str) -> str:
    """A fresh 6-digit code that signs in like ``token`` (stored hashed); returns it."""
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    jti, _, _ = _row_for(token)
    _upsert(token, code_hash=_hash(jti, code, _keys()[0]))
    return code


def short_link(token: str) -> OwnLink:
    """``BASE_URL/s/<key>``: a short link resolving to ``token`` (for an SMS)."""
    jti, _, _ = _row_for(token)
    existing = db.session.scalar(select(LinkCredential.short_key).where(LinkCredential.jti == jti))
    key = existing or secrets.token_urlsafe(SHORT_KEY_BYTES)
    if existing is None:
        _upsert(token, short_key=key)
    return external_url("sms.short_link", key=key)


def token_for_short_key(key: str) -> str | None:
    """The signed link a short key stands for, while it is neither used nor expired."""
    return db.session.scalar(
        select(LinkCredential.token).where(
            LinkCredential.short_key == key,
            LinkCredential.token.is_not(None),
            LinkCredential.expires_at > func.now(),
        )
    )


@dataclass(frozen=True)
class CodeCheck:
    """What typing a code found: the signed link it stands for, or None (wrong, dead,
    or no code for that address: never told apart)."""

    token: str | None


def check_code(address: str, code: str) -> CodeCheck:
    """Compare ``code`` with every live code of ``address`` in constant time.

    A miss counts one wrong try against each of them (the caller commits it).
    The work is the same whether or not the address has codes (one select, one
    hash at least, one update), so its timing tells nothing about the address.
    """
    live = (
        LinkCredential.contact_value == address,
        LinkCredential.code_hash.is_not(None),
        LinkCredential.token.is_not(None),
        LinkCredential.expires_at > func.now(),
        LinkCredential.wrong_tries < CODE_TRIES,
        ~exists().where(UsedLinkToken.jti == LinkCredential.jti),
    )
    candidates = db.session.execute(
        select(LinkCredential.jti, LinkCredential.code_hash, LinkCredential.token)
        .where(*live)
        .order_by(LinkCredential.created_at.desc())
        .with_for_update(of=LinkCredential)
    ).all()
    # With no codes at all, one hash all the same.
    compared = [(row.jti, row.code_hash, row.token) for row in candidates] or [("", "", None)]
    found: str | None = None
    for jti, code_hash, token in compared:
        for key in _keys():
            if hmac.compare_digest(_hash(jti, code, key), code_hash or "") and found is None:
                found = token
    if found is None:
        db.session.execute(
            update(LinkCredential)
            .where(*live)
            .values(wrong_tries=LinkCredential.wrong_tries + 1)
            .execution_options(synchronize_session=False)
        )
    return CodeCheck(found)


def burn(jti: str) -> None:
    """The link was used: its code and short link die with it, and the link is not kept."""
    db.session.execute(
        update(LinkCredential)
        .where(LinkCredential.jti == jti)
        .values(token=None, code_hash=None)
        .execution_options(synchronize_session=False)
    )


def _keys() -> list[bytes]:
    config = current_app.config
    keys = [config["SECRET_KEY"], *(config.get("SECRET_KEY_FALLBACKS") or [])]
    return [str(key).encode() for key in keys]


def _hash(jti: str, code: str, key: bytes) -> str:
    return hmac.new(key, f"fleetos.code:{jti}:{code}".encode(), hashlib.sha256).hexdigest()
