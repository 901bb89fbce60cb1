"""Outgoing mail that is never lost.

A message is rendered and written to ``outbox_messages`` in the caller's
transaction, so it exists exactly when the change that caused it commits.
It is sent after the response (never on the request path) and by
``flask fleetos deliver``; workers lock rows with ``FOR UPDATE SKIP LOCKED``,
so several can run at once and each row is sent once.
"""

from __future__ import annotations

import logging
import smtplib
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import Flask, Response, current_app, g, render_template
from flask_mail import Message
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert

from .extensions import db, mail
from .models import OutboxMessage

log = logging.getLogger(__name__)

RETRY_CAP = timedelta(hours=1)


def queue_mail(
    kind: str,
    recipient: str,
    subject: str,
    *,
    dedupe_key: str | None = None,
    **context: object,
) -> int | None:
    """Render ``templates/email/<kind>.txt|.html`` into the outbox; return its id.

    With a ``dedupe_key`` that is already in the outbox, nothing is added and
    None is returned. The caller's unit of work commits.
    """
    values = {
        "kind": kind,
        "recipient": recipient,
        "subject": subject,
        "text_body": render_template(f"email/{kind}.txt", subject=subject, **context),
        "html_body": render_template(f"email/{kind}.html", subject=subject, **context),
        "dedupe_key": dedupe_key,
    }
    statement = insert(OutboxMessage).values(values)
    if dedupe_key:
        statement = statement.on_conflict_do_nothing(index_elements=[OutboxMessage.dedupe_key])
    message_id = db.session.scalar(statement.returning(OutboxMessage.message_id))
    if message_id is not None:
        g.setdefault("outbox_ids", []).append(message_id)
    return message_id


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.sent + self.retrying + self.failed


def deliver_due(*, limit: int = 100, only_ids: list[int] | None = None) -> DeliveryReport:
    """Send up to ``limit`` due messages, one transaction each."""
    report = DeliveryReport()
    for _ in range(limit):
        outcome = deliver_one(only_ids)
        if outcome is None:
            break
        setattr(report, outcome, getattr(report, outcome) + 1)
    return report


def deliver_one(only_ids: list[int] | None = None) -> str | None:
    """Lock one due message, send it, record the outcome; None when nothing is due."""
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= func.now())
        .order_by(OutboxMessage.message_id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if only_ids is not None:
        query = query.where(OutboxMessage.message_id.in_(only_ids))
    message = db.session.scalar(query)
    if message is None:
        db.session.rollback()
        return None
    try:
        transmit(message)
    except (smtplib.SMTPException, OSError) as exc:
        outcome = _record_failure(message, exc)
    else:
        message.status, message.sent_at = "sent", _utcnow()
        # The bodies hold sign-in links; once sent, keep only the envelope.
        message.text_body = message.html_body = None
        outcome = "sent"
    db.session.commit()
    return outcome


def transmit(message: OutboxMessage) -> None:
    """Hand one message to SMTP, or print it when no MAIL_SERVER is set (development)."""
    if not current_app.config.get("MAIL_SERVER"):
        if current_app.config.get("FLEETOS_ENV") == "production":
            raise OSError("MAIL_SERVER is not set")
        print_to_console(message)
        return
    mail.send(
        Message(
            subject=message.subject,
            recipients=[message.recipient],
            body=message.text_body,
            html=message.html_body,
            extra_headers={"Auto-Submitted": "auto-generated"},
        )
    )


def print_to_console(message: OutboxMessage) -> None:
    # Development only: a newcomer needs to click the link in the message.
    banner = "-" * 72
    print(
        f"\n{banner}\nTo: {message.recipient}\nSubject: {message.subject}\n\n"
        f"{message.text_body}\n{banner}",
        file=sys.stderr,
        flush=True,
    )


def _record_failure(message: OutboxMessage, exc: BaseException) -> str:
    message.attempts += 1
    message.last_error = f"{type(exc).__name__}: {exc}"[:500]
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


def register_mail(app: Flask) -> None:
    """Send the messages a request queued once its response has gone out."""

    @app.after_request
    def deliver_after_response(response: Response) -> Response:
        outbox_ids = g.pop("outbox_ids", None)
        if outbox_ids and app.config["MAIL_DELIVER_AFTER_RESPONSE"]:
            response.call_on_close(lambda: _deliver_in_new_context(app, outbox_ids))
        return response


def _deliver_in_new_context(app: Flask, outbox_ids: list[int]) -> None:
    with app.app_context():
        try:
            deliver_due(only_ids=outbox_ids)
        except Exception:  # the worker retries; the response has gone already
            log.exception("delivery after response failed; the deliver worker will retry")
            db.session.rollback()
