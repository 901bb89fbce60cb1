"""One reply by mail, received: the steps ``receive-mail`` and the gateway share.

Each answers with a status from ``sysexits.h``, which is what an MTA's pipe
transport understands (the gateway turns it into an SMTP reply):

* ``ACCEPTED`` (0): done, including "recorded and ignored" (an auto-reply, a
  duplicate, an empty reply, one held for its addressee);
* ``DATAERR`` (65): not a message FleetOS can read; the MTA bounces it;
* ``NOUSER`` (67): not one of FleetOS's reply addresses, or one that no longer
  works; nothing is written, and the bounce says only "no such user";
* ``TEMPFAIL`` (75): the database cannot be reached; the MTA keeps the message
  and tries again later.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

from flask import current_app

from ..actions.replies import MAIL, Reply, UnknownReplyAddress, addressee_of, receive_reply
from ..database import describe, is_unavailable
from ..extensions import db
from ..messaging.reply_to import fingerprint, token_in
from .mail import Unreadable, read_mail

log = logging.getLogger(__name__)


class Status(IntEnum):
    ACCEPTED = 0  # EX_OK
    DATAERR = 65  # EX_DATAERR
    NOUSER = 67  # EX_NOUSER
    TEMPFAIL = 75  # EX_TEMPFAIL


@dataclass(frozen=True)
class Received:
    status: Status
    detail: str  # for the MTA's log and the operator: never the token, never the text


def check_recipient(address: str) -> Received:
    """Whether ``address`` is a reply address that works (the gateway asks at RCPT TO)."""
    token = token_in(address)
    if token is None:
        return Received(Status.NOUSER, "not a reply address")
    try:
        addressee_of(token)
    except UnknownReplyAddress:
        return Received(Status.NOUSER, "unknown or expired reply address")
    except Exception as exc:
        return _failed(exc)
    finally:
        db.session.rollback()  # only reads; the next message starts afresh
    return Received(Status.ACCEPTED, "reply address ok")


def receive_mail(
    raw: bytes,
    *,
    envelope_sender: str | None = None,
    envelope_recipients: Iterable[str] = (),
) -> Received:
    """Read one message and do what it asks of its request (see the module)."""
    if len(raw) > current_app.config["INBOUND_MAIL_MAX_BYTES"]:
        return Received(Status.DATAERR, "the message is larger than INBOUND_MAIL_MAX_BYTES")
    try:
        mail = read_mail(
            raw,
            envelope_sender=envelope_sender,
            envelope_recipients=envelope_recipients,
            authserv_id=current_app.config["INBOUND_AUTHSERV_ID"],
        )
    except Unreadable as exc:
        return Received(Status.DATAERR, f"unreadable message: {exc}")
    if mail.token is None:
        return Received(Status.NOUSER, "not sent to a reply address")
    try:
        addressee = addressee_of(mail.token)
        handled = receive_reply(
            addressee,
            Reply(
                channel=MAIL,
                sender=mail.sender,
                text=mail.text,
                attachments=mail.attachments,
                message_id=f"{addressee.service_request.request_id}:{mail.message_id}"
                if mail.message_id
                else None,
                automatic=mail.automatic,
                sender_verified=mail.sender_verified,
                thread=thread_id(mail.message_id),
            ),
        )
    except UnknownReplyAddress:
        db.session.rollback()
        return Received(Status.NOUSER, "unknown or expired reply address")
    except Exception as exc:
        db.session.rollback()
        return _failed(exc)
    log.info("reply to %s: %s", fingerprint(mail.token), handled.outcome)
    return Received(Status.ACCEPTED, handled.outcome)


MESSAGE_ID = re.compile(r"<[^<>\s]{1,250}>")


def thread_id(message_id: str | None) -> str | None:
    """The reply's Message-ID as a header of ours may carry it (one ``<...>``), or None."""
    match = MESSAGE_ID.search(message_id or "")
    return match.group(0) if match else None


def _failed(exc: Exception) -> Received:
    """The database away, or a fault of FleetOS's own with this message: either way the
    MTA keeps it and tries again (after a fix, it is taken), and nothing dies."""
    if is_unavailable(exc):
        return Received(Status.TEMPFAIL, f"database unavailable: {describe(exc)}")
    log.error("a reply could not be processed: %s", describe(exc), exc_info=exc)
    return Received(Status.TEMPFAIL, "internal error; the message is kept for a later try")
