"""Outgoing mail that is never lost, never blocks a web request, and never stops the worker.

A message is rendered and written to ``outbox_messages`` in the caller's
transaction, so it exists exactly when the change that caused it commits; a
trigger then NOTIFYs ``fleetos_outbox`` (migration 0006). Web requests never
talk to SMTP. The delivery worker (``flask fleetos deliver --loop``) LISTENs,
so it sends within a moment of the commit, and also polls in case a
notification was missed. Workers lock rows with ``FOR UPDATE SKIP LOCKED``, so
several can run at once.

Delivery is at least once: a worker killed after the server took a message but
before it recorded so sends it again. Each message gets its ``Message-ID`` when
it is queued and keeps it for every attempt, so receivers (and FleetOS's own
reply handling) can drop the duplicate.

A message to a phone number (a contact whose address is E.164) is an SMS: the
same row, rendered from ``templates/sms/`` to fit one segment, handed to the
SMS gateway (``fleetos/sms/backends.py``) instead of SMTP, with the same
retries; a number that texted STOP is sent nothing (``withheld``).

One message that cannot be sent never holds up the others. Every failure is
recorded on its row: a message that can never be sent (no SMTPUTF8 for its
address, a line break in its subject, an address refused for good) fails at
once; anything else is retried with backoff up to ``MAIL_MAX_ATTEMPTS``. A
message whose link expired before it could be sent is not sent at all
(``expired``): the person gets a fresh link on their next try.

Some messages are composed by the worker, not by the web request that queued
them (:func:`queue_for_worker`): what an address is sent may depend on whom
it belongs to (a sign-in link or how to start; an invitation or a note that
the address is another company's), and a web request that looked that up
would answer, or take, differently for addresses that use FleetOS. The request
queues the same row whatever the address; the worker decides, and may decide
to send nothing (``withheld``).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from flask import Flask, Response, current_app, g
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError

from .contacts import is_phone_number
from .database import connect_directly, describe, is_unavailable
from .extensions import db
from .logs import OncePerBurst
from .messaging import reply_to
from .messaging.unlinked import render_mail, unlinked
from .models import OutboxMessage
from .sms.backends import send_sms
from .sms.compose import render_sms
from .sms.refs import texting_refused
from .smtp import Outgoing, SmtpSettings, is_permanent, new_message_id, send

log = logging.getLogger(__name__)

RETRY_CAP = timedelta(hours=1)
CHANNEL = "fleetos_outbox"

# Messages that answer a person's own request for a link are worthless once
# the link has expired, and the person asks again anyway; they expire with it.
# (``unknown_address`` is the answer to a sign-in from an address FleetOS does
# not know: it must fare exactly like a sign-in link.) Other messages go out
# late rather than never: their expired link still offers a fresh one.
EXPIRES_WITH_ITS_LINK = {
    "sign_in": "MAGIC_LINK_MAX_AGE",
    "sign_up": "MAGIC_LINK_MAX_AGE",
    "unknown_address": "MAGIC_LINK_MAX_AGE",
    "daily_access": "DAILY_LINK_MAX_AGE",
}


def queue_mail(
    kind: str,
    recipient: str,
    subject: str,
    *,
    dedupe_key: str | None = None,
    reply_as: ReplyAs | None = None,
    **context: object,
) -> int | None:
    """Render ``templates/email/<kind>.txt|.html`` into the outbox; return its id.

    With ``reply_as`` (a request and the company the recipient acts for on it),
    the worker gives the message a reply address (``Reply-To``) when it sends it.

    Links in what people typed are shown as text, never linked (see
    ``fleetos.messaging.unlinked``); FleetOS's own links stay links.

    With a ``dedupe_key`` that is already in the outbox, nothing is added and
    None is returned. The caller's unit of work commits.
    """
    subject = unlinked(subject)  # user text in a subject: a link in it is shown, not linked
    text_body, html_body = render_bodies(kind, recipient, subject, context)
    values: dict[str, Any] = {
        "kind": kind,
        "recipient": recipient,
        "subject": subject,
        "text_body": text_body,
        "html_body": html_body,
        "dedupe_key": dedupe_key,
        "email_message_id": new_message_id(current_app.config["MAIL_DEFAULT_SENDER"]),
    }
    if reply_as is not None:
        values["context"] = {"reply": reply_as.as_context()}
    lifetime = EXPIRES_WITH_ITS_LINK.get(kind)
    if lifetime:
        values["expires_at"] = func.now() + timedelta(seconds=int(current_app.config[lifetime]))
    statement = insert(OutboxMessage).values(values)
    if dedupe_key:
        statement = statement.on_conflict_do_nothing(index_elements=[OutboxMessage.dedupe_key])
    message_id = db.session.scalar(statement.returning(OutboxMessage.message_id))
    if message_id is not None:
        g.setdefault("outbox_ids", []).append(message_id)
    return message_id


@dataclass(frozen=True)
class ReplyAs:
    """A message about ``request_id`` whose recipient acts for ``company_id`` on it: the
    worker gives it a reply address, so that a reply acts on the request."""

    request_id: uuid.UUID
    company_id: uuid.UUID
    # The Message-ID of the mail this one answers (a reply's): mail clients thread them.
    in_reply_to: str | None = None

    def as_context(self) -> dict[str, str]:
        return {
            "request_id": str(self.request_id),
            "company_id": str(self.company_id),
            **({"in_reply_to": self.in_reply_to} if self.in_reply_to else {}),
        }


def reply_address_of(message: OutboxMessage) -> str | None:
    """The Reply-To of ``message``, made now (None without INBOUND_MAIL_DOMAIN, or for a
    message that is about no request)."""
    about = (message.context or {}).get("reply")
    if not current_app.config.get("INBOUND_MAIL_DOMAIN") or not isinstance(about, dict):
        return None
    try:
        with db.session.begin_nested():  # a request deleted since: the mail goes, unanswerable
            row = reply_to.issue(
                uuid.UUID(str(about["request_id"])),
                message.recipient,
                uuid.UUID(str(about["company_id"])),
            )
    except IntegrityError:
        log.warning("mail %s goes without a reply address: its request is gone", message.message_id)
        return None
    return reply_to.address_for(row)


# -- messages the worker composes -------------------------------------------------------------


def render_bodies(
    kind: str, recipient: str, subject: str, context: dict[str, Any]
) -> tuple[str, str | None]:
    """The text and HTML bodies of a ``kind`` message to ``recipient``.

    The address decides the channel: a phone number (E.164) is sent an SMS
    (``templates/sms/<kind>.txt``, one segment, no HTML); an e-mail address a
    mail (``templates/email/<kind>.txt|.html``).
    """
    if is_phone_number(recipient):
        return render_sms(kind, recipient, {"subject": subject, **context}), None
    return (
        render_mail(f"email/{kind}.txt", subject=subject, **context),
        render_mail(f"email/{kind}.html", subject=subject, **context),
    )


@dataclass(frozen=True)
class Composed:
    """A message as the worker decided it: which template, to say what (rendered for the
    recipient's channel when the worker sends it), and, for a message about a request,
    as whom its recipient may reply by mail."""

    kind: str
    subject: str
    context: dict[str, Any]
    reply_as: ReplyAs | None = None


def compose(
    kind: str, subject: str, *, reply_as: ReplyAs | None = None, **context: object
) -> Composed:
    """The ``kind`` message (user text in it shown, never linked)."""
    return Composed(kind, unlinked(subject), dict(context), reply_as)


Composer = Callable[[OutboxMessage], "Composed | None"]
COMPOSERS: dict[str, Composer] = {}


def composes(kind: str) -> Callable[[Composer], Composer]:
    """Register the function the worker calls to compose a ``kind`` message (None: send nothing)."""

    def register(composer: Composer) -> Composer:
        COMPOSERS[kind] = composer
        return composer

    return register


def queue_for_worker(kind: str, recipient: str, **context: Any) -> int:
    """Queue a ``kind`` message that the worker composes at delivery; return its id.

    The row has the same shape whoever ``recipient`` is, and queuing it looks
    nothing up. ``context`` (JSON, never a secret: tokens are made when the
    message is composed) is what the composer needs.
    """
    values: dict[str, Any] = {
        "kind": kind,
        "recipient": recipient,
        "subject": "",
        "context": context,
        "email_message_id": new_message_id(current_app.config["MAIL_DEFAULT_SENDER"]),
    }
    lifetime = EXPIRES_WITH_ITS_LINK.get(kind)
    if lifetime:
        values["expires_at"] = func.now() + timedelta(seconds=int(current_app.config[lifetime]))
    message_id: int = db.session.execute(
        insert(OutboxMessage).values(values).returning(OutboxMessage.message_id)
    ).scalar_one()
    g.setdefault("outbox_ids", []).append(message_id)
    return message_id


def _compose_now(message: OutboxMessage) -> bool:
    """Compose a worker-composed message in place; False when the worker sends nothing."""
    composer = COMPOSERS.get(message.kind)
    if composer is None:
        raise LookupError(f"no composer for {message.kind} messages")
    composed = composer(message)
    if composed is None:
        return False
    message.kind = composed.kind
    message.subject = composed.subject
    message.text_body, message.html_body = render_bodies(
        composed.kind, message.recipient, composed.subject, composed.context
    )
    if composed.reply_as is not None:
        message.context = {**(message.context or {}), "reply": composed.reply_as.as_context()}
    return True


# -- delivering -------------------------------------------------------------------------------


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    expired: int = 0
    withheld: int = 0

    @property
    def total(self) -> int:
        return self.sent + self.retrying + self.failed + self.expired + self.withheld

    def __str__(self) -> str:
        return (
            f"sent {self.sent}, retrying later {self.retrying}, failed {self.failed}, "
            f"expired {self.expired}, withheld {self.withheld}"
        )


def deliver_due(
    *,
    limit: int = 100,
    only_ids: list[int] | None = None,
    smtp_timeout: float | None = None,
    stop: Callable[[], bool] | None = None,
) -> DeliveryReport:
    """Send up to ``limit`` due messages, one transaction each.

    Database errors propagate (the worker backs off); a message's own failure
    never does.
    """
    report = DeliveryReport()
    for _ in range(limit):
        if stop is not None and stop():
            break
        outcome = deliver_one(only_ids, smtp_timeout=smtp_timeout)
        if outcome is None:
            break
        setattr(report, outcome, getattr(report, outcome) + 1)
    return report


def deliver_one(
    only_ids: list[int] | None = None, *, smtp_timeout: float | None = None
) -> str | None:
    """Lock one due message, send it, record the outcome; None when nothing is due."""
    query = (
        select(OutboxMessage, (OutboxMessage.expires_at <= func.now()).label("expired"))
        .where(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= func.now())
        .order_by(OutboxMessage.message_id)
        .limit(1)
        .with_for_update(of=OutboxMessage, skip_locked=True)
    )
    if only_ids is not None:
        query = query.where(OutboxMessage.message_id.in_(only_ids))
    row = db.session.execute(query).first()
    if row is None:
        db.session.rollback()
        return None
    message, expired = row
    if not message.email_message_id:  # queued before 0006 by code that gave it none
        message.email_message_id = new_message_id(current_app.config["MAIL_DEFAULT_SENDER"])
    if expired:
        outcome = _finish(message, "expired")
        log.info("mail %s not sent: its link expired before it could go", message.message_id)
    elif texting_refused(message.recipient, message.kind):
        outcome = _finish(message, "withheld")
        log.info("SMS %s not sent: its number texted STOP", message.message_id)
    else:
        try:
            if message.context is not None and message.text_body is None:
                with db.session.begin_nested():  # a composer's failed query spoils nothing else
                    composed = _compose_now(message)
                if not composed:
                    outcome = _finish(message, "withheld")
                    db.session.commit()
                    return outcome
            transmit(message, smtp_timeout=smtp_timeout)
        except Exception as exc:  # any failure of this one message is recorded, never raised
            outcome = _record_failure(message, exc)
        else:
            outcome = _finish(message, "sent")
    db.session.commit()
    return outcome


def transmit(message: OutboxMessage, *, smtp_timeout: float | None = None) -> None:
    """Hand one message to SMTP (or its SMS to the gateway), or print it when no
    MAIL_SERVER is set (development)."""
    if is_phone_number(message.recipient):
        send_sms(
            message.recipient, message.text_body or "", idempotency_key=message.email_message_id
        )
        return
    outgoing = Outgoing(
        message_id=message.email_message_id or "",
        recipient=message.recipient,
        subject=message.subject,
        text=message.text_body or "",
        html=message.html_body,
        reply_to=reply_address_of(message),
        in_reply_to=str((message.context or {}).get("reply", {}).get("in_reply_to") or "") or None,
    )
    config = current_app.config
    if not config.get("MAIL_SERVER"):
        if config.get("FLEETOS_ENV") == "production":
            raise OSError("MAIL_SERVER is not set")
        print_to_console(outgoing)
        return
    send(outgoing, SmtpSettings.from_config(config, timeout=smtp_timeout))


def print_to_console(message: Outgoing) -> None:
    # Development only: a newcomer needs to click the link in the message.
    banner = "-" * 72
    print(
        f"\n{banner}\nTo: {message.recipient}\n"
        + (f"Reply-To: {message.reply_to}\n" if message.reply_to else "")
        + f"Subject: {message.subject}\n\n"
        f"{message.text}\n{banner}",
        file=sys.stderr,
        flush=True,
    )


def _finish(message: OutboxMessage, status: str) -> str:
    message.status = status
    if status == "sent":
        message.sent_at = _utcnow()
    # The bodies hold sign-in links; once done with, keep only the envelope.
    message.text_body = message.html_body = None
    return status


def _record_failure(message: OutboxMessage, exc: BaseException) -> str:
    message.attempts += 1
    message.last_error = f"{type(exc).__name__}: {exc}"[:500]
    if is_permanent(exc):
        log.error("mail %s failed for good (%s)", message.message_id, type(exc).__name__)
        message.status = "failed"
        return "failed"
    if message.attempts >= current_app.config["MAIL_MAX_ATTEMPTS"]:
        message.status = "failed"
        log.error(
            "mail %s to recipient gave up after %d attempts", message.message_id, message.attempts
        )
        return "failed"
    base = timedelta(seconds=current_app.config["MAIL_RETRY_BASE_SECONDS"])
    delay = min(base * 2 ** (message.attempts - 1), RETRY_CAP)
    message.next_attempt_at = _utcnow() + delay
    log.warning(
        "mail %s not sent (%s); retrying in %s", message.message_id, type(exc).__name__, delay
    )
    return "retrying"


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


# -- the worker -------------------------------------------------------------------------------

# While the database is unreachable, the worker tries again after this long,
# doubling up to the longest pause: mail queued meanwhile waits at most that.
FIRST_PAUSE = 0.5
LONGEST_PAUSE = 5.0


class Listener:
    """The worker's own connection, LISTENing on ``fleetos_outbox``."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.connection: psycopg.Connection | None = None

    def open(self) -> None:
        if self.connection is None or self.connection.closed:
            connection = connect_directly(db.engine, self.app, autocommit=True)
            connection.execute(f"LISTEN {CHANNEL}")
            self.connection = connection

    def wait(self, seconds: float, stopping: threading.Event) -> None:
        """Return on a notification, after ``seconds``, or soon after ``stopping`` is set."""
        if self.connection is None:
            return
        deadline = time.monotonic() + seconds
        while not stopping.is_set() and (remaining := deadline - time.monotonic()) > 0:
            # Short slices: a SIGTERM is noticed within half a second.
            woken = list(self.connection.notifies(timeout=min(remaining, 0.5), stop_after=1))
            if woken:
                return

    def close(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(psycopg.Error):
                self.connection.close()
            self.connection = None


class Outage:
    """Says once that delivery paused, and once that it resumed."""

    def __init__(self) -> None:
        self.since: float | None = None
        self.unexpected = OncePerBurst(log)

    def began(self, exc: BaseException) -> None:
        if not is_unavailable(exc):
            # Not the database being away: a fault worth its traceback, once per burst.
            self.unexpected.log(logging.ERROR, "delivery failed: %s", describe(exc))
            log.debug("delivery failure", exc_info=exc)
        if self.since is None:
            self.since = time.monotonic()
            log.warning(
                "database unavailable, delivery paused; retrying every %g s at most: %s",
                LONGEST_PAUSE,
                describe(exc),
            )

    def ended(self) -> None:
        if self.since is not None:
            log.warning(
                "database reachable again after %.1f s; delivery resumed",
                time.monotonic() - self.since,
            )
            self.since = None


def run_worker(
    app: Flask,
    *,
    interval: float,
    batch: int,
    stopping: threading.Event,
    report: Callable[[DeliveryReport], None],
) -> None:
    """Deliver until ``stopping`` is set, riding through database outages."""
    listener = Listener(app)
    outage = Outage()
    pause = FIRST_PAUSE
    try:
        while not stopping.is_set():
            try:
                listener.open()
                delivered = deliver_due(limit=batch, stop=stopping.is_set)
            except Exception as exc:  # the worker must outlive any outage
                _drop_session()
                listener.close()
                outage.began(exc)
                stopping.wait(pause)
                pause = min(pause * 2, LONGEST_PAUSE)
                continue
            outage.ended()
            pause = FIRST_PAUSE
            if delivered.total:
                report(delivered)
            if delivered.total < batch:  # drained: sleep until mail is queued (or a retry is due)
                try:
                    listener.wait(interval, stopping)
                except psycopg.Error:
                    listener.close()  # reopened on the next pass, which tells whether it is down
    finally:
        listener.close()
        _drop_session()


def _drop_session() -> None:
    try:
        db.session.remove()
    except Exception:  # its connection is gone already; the pool discards it
        log.debug("could not close the session after a database fault", exc_info=True)


# -- MAIL_DELIVER_AFTER_RESPONSE: a worker inside the web process ----------------------------

# Mail sent from a web process waits on SMTP at most this long per step (the
# worker's own MAIL_TIMEOUT may be longer), and at most this many requests'
# mail wait for the thread; beyond that the deliver worker sends it.
BACKGROUND_SMTP_TIMEOUT = 10.0
BACKGROUND_QUEUE = 100


class BackgroundSender:
    """One thread per web process that sends what its requests queued, as their responses go out.

    For a single process without a deliver worker (``flask run``, tests):
    a request thread never waits on it, even when SMTP hangs.
    """

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.queue: queue.Queue[list[int]] = queue.Queue(maxsize=BACKGROUND_QUEUE)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.errors = OncePerBurst(log)

    def submit(self, outbox_ids: list[int]) -> None:
        self._start()
        try:
            self.queue.put_nowait(outbox_ids)
        except queue.Full:  # SMTP is slow or hung; the worker will send these
            self.errors.warning("background mail sender is behind; leaving mail to the worker")

    def _start(self) -> None:
        with self._lock:  # started on first use: after gunicorn forks, in the process that sends
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="mail-after-response", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            outbox_ids = self.queue.get()
            with self.app.app_context():
                try:
                    deliver_due(only_ids=outbox_ids, smtp_timeout=BACKGROUND_SMTP_TIMEOUT)
                except Exception as exc:  # the worker retries; nobody is waiting on this
                    self.errors.warning("mail after response failed (%s)", describe(exc))
                finally:
                    _drop_session()


def register_mail(app: Flask) -> None:
    """With MAIL_DELIVER_AFTER_RESPONSE, hand a request's mail to the background sender."""
    if not app.config["MAIL_DELIVER_AFTER_RESPONSE"]:
        return
    sender = BackgroundSender(app)
    app.extensions["fleetos_background_sender"] = sender

    @app.after_request
    def deliver_after_response(response: Response) -> Response:
        outbox_ids = g.pop("outbox_ids", None)
        if outbox_ids:
            # Handed over here, not from response.call_on_close: the request's unit of
            # work has committed (actions commit before they return), submitting only
            # queues for the sender's thread, and a server may never call close():
            # Werkzeug's skips it when the client resets the connection while the server
            # drains the request, which left a note's mail unsent in a browser test.
            sender.submit(outbox_ids)
        return response
