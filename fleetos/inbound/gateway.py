"""``flask fleetos mail-gateway``: replies by SMTP or LMTP, on aiosmtpd.

For an MTA that relays to a host and port (Postfix ``transport_maps`` with
``smtp:`` or ``lmtp:``), or for the MX itself behind a firewall. Each step
answers as ``receive-mail`` exits (``fleetos/inbound/receive.py``):

* ``RCPT TO`` an address that is not a working reply address: 550, so the
  sending MTA bounces at once and FleetOS stores nothing;
* a message over ``INBOUND_MAIL_MAX_BYTES``: 552 (aiosmtpd's SIZE limit,
  announced in EHLO, so a client can tell before sending);
* the database unreachable: 451, so the sender retries;
* ``DATA``: each recipient's reply is processed like ``receive-mail``; LMTP
  answers once per recipient, as the protocol asks.

The database work runs in worker threads, each in an app context of its own,
so a slow database never stops the server from talking to other clients.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session
from flask import Flask

from ..extensions import db
from .receive import Received, Status, check_recipient, receive_mail

REPLIES = {
    Status.ACCEPTED: "250 2.0.0 Accepted",
    Status.DATAERR: "554 5.6.0 Message not readable",
    Status.NOUSER: "550 5.1.1 No such reply address",
    Status.TEMPFAIL: "451 4.3.0 Temporarily unable to accept the message; try again later",
}


class ReplyHandler:
    """aiosmtpd's handler: checks recipients, then hands each message to receive_mail."""

    def __init__(self, app: Flask, *, lmtp: bool = False) -> None:
        self.app = app
        self.lmtp = lmtp

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        checked = await self._in_thread(check_recipient, address)
        if checked.status is Status.ACCEPTED:
            envelope.rcpt_tos.append(address)
        return REPLIES[checked.status] if checked.status is not Status.ACCEPTED else "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        sender = envelope.mail_from or ""
        results = [
            await self._in_thread(
                functools.partial(
                    receive_mail, raw, envelope_sender=sender, envelope_recipients=[recipient]
                )
            )
            for recipient in envelope.rcpt_tos
        ]
        if self.lmtp:  # one answer per recipient, in RCPT order
            return "\r\n".join(REPLIES[result.status] for result in results)
        # SMTP has one answer for all: a temporary failure makes the client try again
        # (recipients already done find their Message-ID processed and do nothing twice).
        for status in (Status.TEMPFAIL, Status.DATAERR, Status.NOUSER):
            if any(result.status is status for result in results):
                return REPLIES[status]
        return REPLIES[Status.ACCEPTED]

    async def _in_thread(self, work: Callable[..., Received], *args: Any) -> Received:
        return await asyncio.to_thread(self._in_app, work, *args)

    def _in_app(self, work: Callable[..., Received], *args: Any) -> Received:
        with self.app.app_context():
            try:
                return work(*args)
            except Exception:  # a bug with this message: the sender retries, the server lives
                self.app.logger.exception("mail gateway: a message could not be processed")
                return Received(Status.TEMPFAIL, "internal error")
            finally:
                db.session.remove()


class GatewayController(Controller):
    """aiosmtpd's threaded controller, speaking LMTP instead of SMTP when asked."""

    def __init__(self, handler: ReplyHandler, *, lmtp: bool, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.lmtp = lmtp

    def factory(self) -> SMTP:
        server_class = LMTP if self.lmtp else SMTP
        return server_class(self.handler, **self.SMTP_kwargs)


def gateway(app: Flask, host: str, port: int, *, lmtp: bool = False) -> GatewayController:
    """A gateway for ``app`` on ``host:port`` (not started: call ``start()``)."""
    return GatewayController(
        ReplyHandler(app, lmtp=lmtp),
        lmtp=lmtp,
        hostname=host,
        port=port,
        data_size_limit=int(app.config["INBOUND_MAIL_MAX_BYTES"]),
        # The raw bytes are what receive_mail reads (no decoding to str on the way).
        decode_data=False,
        server_hostname=app.config.get("INBOUND_MAIL_DOMAIN") or None,
    )
