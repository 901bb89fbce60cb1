"""One message to one address over SMTP, with the standard library's ``email`` and ``smtplib``.

Flask-Mail, used before, opened connections without a timeout, did not check
the certificate after STARTTLS, and raised ``UnicodeEncodeError`` for an
address with a non-ASCII local part (``josé@…``). Here:

* an address with a non-ASCII local part goes out with SMTPUTF8 when the
  server offers it (``smtplib`` turns it on), and is :class:`Unsendable` when
  it does not; a non-ASCII domain is sent in its ASCII (IDNA) form, which
  needs no extension;
* a message that cannot be composed (a line break in its subject, an address
  that is not one) is :class:`Unsendable`: it would fail the same way every time;
* every step waits at most ``MAIL_TIMEOUT`` seconds; STARTTLS verifies the
  server's certificate.
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any

import idna


class Unsendable(Exception):
    """This message can never be sent as it is: retrying would fail the same way."""


@dataclass(frozen=True)
class Outgoing:
    """What one outbox row becomes on the wire."""

    message_id: str
    recipient: str
    subject: str
    text: str
    html: str | None
    # Where replies go: a reply address (fleetos/messaging/reply_to.py), or none.
    reply_to: str | None = None
    # The Message-ID this message answers (In-Reply-To and References), or none.
    in_reply_to: str | None = None


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool
    use_ssl: bool
    timeout: float
    sender: str

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], *, timeout: float | None = None
    ) -> SmtpSettings:
        return cls(
            host=config["MAIL_SERVER"],
            port=int(config["MAIL_PORT"]),
            username=config.get("MAIL_USERNAME"),
            password=config.get("MAIL_PASSWORD"),
            use_tls=bool(config.get("MAIL_USE_TLS")),
            use_ssl=bool(config.get("MAIL_USE_SSL")),
            timeout=float(timeout or config["MAIL_TIMEOUT"]),
            sender=config["MAIL_DEFAULT_SENDER"],
        )


def new_message_id(sender: str) -> str:
    """A globally unique ``Message-ID`` in the sender's domain."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "fleetos.invalid"
    return f"<{uuid.uuid4()}@{domain}>"


def wire_address(address: str) -> str:
    """``address`` as it goes into the envelope and the To header: its domain in ASCII.

    The local part stays as it is; if it is not ASCII, sending needs SMTPUTF8.
    """
    local, at, domain = address.strip().rpartition("@")
    if not at or not local or not domain:
        raise Unsendable("the recipient is not an e-mail address")
    if not domain.isascii():
        try:
            domain = idna.encode(domain, uts46=True).decode()
        except idna.IDNAError as exc:
            raise Unsendable(f"the recipient's domain is not a valid domain name ({exc})") from None
    return f"{local}@{domain}"


def compose(outgoing: Outgoing, sender: str) -> EmailMessage:
    """The message as a MIME document; :class:`Unsendable` if it cannot be one."""
    try:
        message = EmailMessage()
        message["Message-ID"] = outgoing.message_id
        message["Date"] = format_datetime(datetime.now(UTC))
        message["From"] = sender
        message["To"] = wire_address(outgoing.recipient)
        message["Subject"] = outgoing.subject
        if outgoing.reply_to:
            message["Reply-To"] = outgoing.reply_to
        if outgoing.in_reply_to:
            message["In-Reply-To"] = message["References"] = outgoing.in_reply_to
        # Tells auto-responders not to answer (RFC 3834).
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(outgoing.text)
        if outgoing.html:
            message.add_alternative(outgoing.html, subtype="html")
    except Unsendable:
        raise
    except Exception as exc:  # whatever the email package refuses, it refuses every time
        raise Unsendable(f"the message cannot be composed: {type(exc).__name__}: {exc}") from None
    if len(message["To"].addresses) != 1:
        raise Unsendable("the recipient is not exactly one e-mail address")
    return message


def send(outgoing: Outgoing, settings: SmtpSettings) -> None:
    """Hand one message to the SMTP server; raise if it did not take it."""
    message = compose(outgoing, settings.sender)
    recipient = wire_address(outgoing.recipient)
    envelope_sender = parseaddr(settings.sender)[1]
    context = ssl.create_default_context()
    if settings.use_ssl:
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(
            settings.host, settings.port, timeout=settings.timeout, context=context
        )
    else:
        smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    try:
        if settings.use_tls and not settings.use_ssl:
            smtp.starttls(context=context)
        if settings.username and settings.password:
            smtp.login(settings.username, settings.password)
        smtp.ehlo_or_helo_if_needed()
        if not recipient.isascii() and not smtp.has_extn("smtputf8"):
            raise Unsendable(
                "the mail server does not offer SMTPUTF8, which this address needs "
                "(it has non-ASCII characters before the @)"
            )
        smtp.send_message(message, from_addr=envelope_sender, to_addrs=[recipient])
        # The server has the message: a failed goodbye changes nothing.
        with contextlib.suppress(smtplib.SMTPException, OSError):
            smtp.quit()
    finally:
        smtp.close()


def is_permanent(error: BaseException) -> bool:
    """Whether sending again can never succeed (as opposed to a server down or busy)."""
    if isinstance(error, Unsendable):
        return True
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        # 5xx: the server says this address will not take mail (RFC 5321 4.2.1).
        return all(code >= 500 for code, _ in error.recipients.values())
    if isinstance(error, smtplib.SMTPDataError):
        return error.smtp_code >= 500  # the content itself was refused
    return False
