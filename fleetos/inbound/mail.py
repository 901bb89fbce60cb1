"""Reading a reply by mail: one RFC 5322 message into what the reply core needs.

Nothing here touches the database. :func:`read_mail` takes the bytes as the
MTA handed them over (``receive-mail``'s standard input, the gateway's DATA)
and returns a :class:`MailReply`: the reply address it was sent to, who sent
it, its Message-ID, whether a machine sent it, whether the receiving MTA's
checks vouch for its sender, the new text only, and its files.

* The new text: HTML-only mail becomes text first (``inscriptis``); quoted
  history, "On ... wrote:" and Outlook's "From: ... Sent: ..." headers, and
  signatures go (``mail-parser-reply``, which knows the markers of the usual
  clients in several languages); lines still quoted with ``>`` go too.
* A machine's reply (RFC 3834 and the headers auto-responders use in
  practice): ``Auto-Submitted`` other than ``no``, ``X-Autoreply``,
  ``X-Autorespond``, ``Precedence: bulk|junk|list``, a null or
  ``MAILER-DAEMON`` sender, or a delivery report (``multipart/report``).
* The sender's checks: the receiving MTA's ``Authentication-Results``
  (``authres``), when there is one, must show SPF or DKIM passing for the
  From address's domain (or DMARC passing). Only the MTA's own header counts:
  the one with ``INBOUND_AUTHSERV_ID`` (which must then be there), else the
  topmost (the last added).
"""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from email.utils import getaddresses, parseaddr

import authres
from inscriptis import get_text
from mailparser_reply import EmailReplyParser

from ..attachments.content import IncomingFile
from ..contacts import InvalidContact, canonical_email
from ..messaging.reply_to import token_in

# Reply markers and signatures in the languages FleetOS's customers write in.
REPLY_LANGUAGES = ["en", "de", "fr", "nl", "it", "es", "pl", "sv", "da"]
# Where the address a message was delivered to may be, best first, after the envelope.
RECIPIENT_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "To", "Cc")
AUTOMATIC_PRECEDENCE = {"bulk", "junk", "list"}
QUOTED = re.compile(r"^\s*>")
# An image shown inline by the reply's HTML and smaller than this is its signature's
# logo or a social icon, not a photo of the work (a pasted photo is far larger).
SIGNATURE_IMAGE_MAX = 40_000


class Unreadable(Exception):
    """Not a mail message FleetOS can read (no sender address, no headers at all)."""


@dataclass(frozen=True)
class MailReply:
    token: str | None  # of the reply address it was sent to; None: none of ours
    sender: str  # canonical From address
    message_id: str | None
    automatic: bool
    sender_verified: bool
    text: str  # the new text only
    attachments: Sequence[IncomingFile] = field(default_factory=tuple)


def read_mail(
    raw: bytes,
    *,
    envelope_sender: str | None = None,
    envelope_recipients: Iterable[str] = (),
    authserv_id: str | None = None,
) -> MailReply:
    """Read one message (see the module); Unreadable if it cannot be read.

    ``envelope_sender`` is MAIL FROM ("" for the null sender; None: not
    known, then ``Return-Path`` says); ``envelope_recipients`` the RCPT TO
    addresses (none known: the headers say where it was delivered).
    """
    if not raw.strip():
        raise Unreadable("the message is empty")
    try:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        if not message.keys():
            raise Unreadable("the message has no headers")
        sender = _sender(message)
        if envelope_sender is None and "Return-Path" in message:
            envelope_sender = parseaddr(str(message["Return-Path"]))[1]
        return MailReply(
            token=_token(message, envelope_recipients),
            sender=sender,
            message_id=_message_id(message),
            automatic=_is_automatic(message, envelope_sender, sender),
            sender_verified=_sender_verified(message, sender, authserv_id),
            text=new_text(message),
            attachments=tuple(_attachments(message)),
        )
    except Unreadable:
        raise
    except Exception as exc:  # whatever the email package chokes on, it will every time
        raise Unreadable(f"{type(exc).__name__}: {exc}") from None


def _sender(message: EmailMessage) -> str:
    addresses = [address for _, address in getaddresses([str(message.get("From", ""))]) if address]
    if len(addresses) != 1:
        raise Unreadable("the message has no single From address")
    try:
        return canonical_email(addresses[0])
    except InvalidContact as exc:
        raise Unreadable(f"the From address is not one: {exc}") from None


def _token(message: EmailMessage, envelope_recipients: Iterable[str]) -> str | None:
    candidates = list(envelope_recipients)
    for header in RECIPIENT_HEADERS:
        for value in message.get_all(header) or []:
            candidates += [address for _, address in getaddresses([str(value)]) if address]
    for candidate in candidates:
        token = token_in(candidate)
        if token is not None:
            return token
    return None


def _message_id(message: EmailMessage) -> str | None:
    value = str(message.get("Message-ID", "")).strip()
    return value[:900] or None


def _is_automatic(message: EmailMessage, envelope_sender: str | None, sender: str) -> bool:
    auto_submitted = str(message.get("Auto-Submitted", "")).split(";")[0].strip().lower()
    if auto_submitted and auto_submitted != "no":
        return True
    if "X-Autoreply" in message or "X-Autorespond" in message:
        return True
    if str(message.get("Precedence", "")).strip().lower() in AUTOMATIC_PRECEDENCE:
        return True
    if message.get_content_type() == "multipart/report":  # bounces and read receipts
        return True
    if envelope_sender is not None and envelope_sender.strip("<> ") == "":
        return True
    senders = [sender, envelope_sender or ""]
    return any(address.partition("@")[0].lower() == "mailer-daemon" for address in senders)


def _sender_verified(message: EmailMessage, sender: str, authserv_id: str | None) -> bool:
    """Whether the receiving MTA's checks vouch for the From address (True with no checks)."""
    headers = [str(value) for value in message.get_all("Authentication-Results") or []]
    results = []
    for value in headers:
        try:
            results.append(authres.AuthenticationResultsHeader.parse_value(value))
        except authres.AuthResError:
            continue
    if authserv_id is not None:
        # The operator's MTA adds its header to every message (and removes forged ones
        # with its id): without it, nothing vouches for the sender.
        results = [r for r in results if str(r.authserv_id).lower() == authserv_id]
        if not results:
            return False
    if not results:
        # No checks recorded: nothing to go by but the From header.
        return True
    domain = sender.rpartition("@")[2]
    for result in results[0].results:  # the topmost: added last, by the MTA that handed it over
        if str(result.result).lower() != "pass":
            continue
        method = str(result.method).lower()
        if method == "dmarc":
            return True
        for prop in result.properties:
            value = str(prop.value or "").lower()
            aligned = value == domain or value.rpartition("@")[2] == domain
            if method == "dkim" and prop.type == "header" and prop.name == "d" and aligned:
                return True
            if method == "spf" and prop.type == "smtp" and prop.name == "mailfrom" and aligned:
                return True
    return False


def new_text(message: EmailMessage) -> str:
    """The reply's own words: its text part (or its HTML as text) without what it quotes."""
    body = message.get_body(preferencelist=("plain", "html"))
    if body is None:
        return ""
    content = body.get_content()
    if not isinstance(content, str):
        return ""
    if body.get_content_type() == "text/html":
        content = get_text(content)
    return strip_quotes(content)


def strip_quotes(text: str) -> str:
    """``text`` without quoted history, reply headers and signature."""
    text = text.replace("\r\n", "\n")
    parsed = EmailReplyParser(languages=REPLY_LANGUAGES).read(text)
    if not parsed.replies:
        return ""
    latest = parsed.replies[0]
    if latest.headers:
        return ""  # the message starts with the quote: nothing new was written
    lines = [line for line in latest.body.splitlines() if not QUOTED.match(line)]
    return "\n".join(lines).strip()


def _attachments(message: EmailMessage) -> list[IncomingFile]:
    """The files the reply carries, wherever the client put them (attached, or a photo
    pasted into the text), but not the small pictures its HTML shows from its signature
    (a logo): an inline image the HTML refers to, under SIGNATURE_IMAGE_MAX bytes."""
    html = message.get_body(preferencelist=("html",))
    shown = html.get_content() if html is not None else ""
    found = []
    for part in message.walk():
        if part.is_multipart() or not isinstance(part, Message):
            continue
        disposition = part.get_content_disposition()
        if part.get_content_maintype() == "text" and disposition != "attachment":
            continue  # the body (and its alternatives)
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes) or not data:
            continue
        content_id = str(part.get("Content-ID", "")).strip("<> ")
        in_html = bool(content_id) and f"cid:{content_id}" in shown
        if in_html and disposition != "attachment" and len(data) < SIGNATURE_IMAGE_MAX:
            continue
        name = part.get_filename() or f"attachment.{part.get_content_subtype()}"
        found.append(IncomingFile(name, data))
    return found
