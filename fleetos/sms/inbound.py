"""Replies by SMS: a verified gateway's message becomes a step or a note on a request.

The gateway (Twilio's webhook, or the webhook backend's signed JSON) has
already been verified by the view; here a reply is read and acted on through
the same actions as the web buttons (``fleetos/actions/requests.py``), with
``channel='sms'``, so the same permission and conflict rules hold:

* ``OK`` / ``ACK``: acknowledge; ``START``: start work; ``DONE``: complete;
  ``DECLINE <reason>``: decline; ``STOP``: no more SMS to this number
  (recorded; ``START`` from a number that stopped re-subscribes, as carriers
  require); anything else is a note.
* The request is the one its ``Ref`` names (refs are per number), else the
  number's only open request; with several and no ref, the number is texted
  the list of refs.
* A number that is not a contact yet but that the request was sent to emerges
  now (``access.emerge_on_reply``), exactly as on a first sign-in.

The sender always hears back: a short confirmation, or why nothing was done.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.dialects.postgresql import insert

from .. import lifecycle
from ..actions import access
from ..actions import requests as request_actions
from ..actions.attachments import Attachable
from ..contacts import ContactService, InvalidContact
from ..domain_errors import DomainError
from ..events import EventLogService
from ..extensions import db
from ..models import Contact, ServiceRequest, SmsReceived
from ..outbox import queue_mail
from ..text import one_line, shorten
from ..unit_of_work import atomic
from . import refs

SMS = "sms"

STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_WORDS = frozenset({"START", "UNSTOP"})
# The words of a reply by mail (lifecycle.REPLY_WORDS), upper-case as texts are
# read here, and "OK", the usual answer to a text (by mail, "OK" alone is more
# often a note than an acknowledgement).
STEP_WORDS = {word.upper(): to for word, to in lifecycle.REPLY_WORDS.items()} | {
    "OK": "acknowledged"
}
# "Ref 4821" anywhere, or a ref right after the command word ("DONE 4821").
REF_ANYWHERE = re.compile(r"\bref\s*[:#]?\s*(\d{4,8})\b", re.IGNORECASE)
REF_AFTER_COMMAND = re.compile(r"^(\w+)\s+(\d{4,8})\b")


@dataclass(frozen=True)
class InboundSms:
    """One SMS (or MMS) a gateway received for FleetOS, already verified as the gateway's."""

    sender: str
    body: str
    media: Sequence[Attachable] = ()
    # The gateway's own id of the message (Twilio's MessageSid), when it gives one.
    gateway_id: str | None = None


@dataclass(frozen=True)
class Reply:
    """What the sender is texted back (queued in the outbox), and what happened."""

    outcome: str  # "moved", "noted", "refused", "asked", "stopped", "started", "ignored"
    text: str


@dataclass(frozen=True)
class Parsed:
    word: str  # the first word, upper-case ("" when there is none)
    ref: str | None
    rest: str  # the text after the command word (a decline's reason)
    text: str  # the whole message without its ref (a note)


def parse(body: str) -> Parsed:
    text = one_line(body)
    ref = None
    found = REF_ANYWHERE.search(text)
    if found:
        ref = found.group(1)
        text = one_line(text[: found.start()] + text[found.end() :])
    else:
        after = REF_AFTER_COMMAND.match(text)
        if after and after.group(1).upper() in STEP_WORDS:
            ref = after.group(2)
            text = one_line(after.group(1) + text[after.end() :])
    word, _, rest = text.partition(" ")
    return Parsed(word.upper().strip(".!,:;"), ref, rest.strip(), text)


@atomic
def receive(sms: InboundSms) -> Reply:
    """Act on one reply and queue the answer to its sender, as one unit of work."""
    try:
        number = ContactService.canonicalise(sms.sender).value
    except InvalidContact:
        return Reply("ignored", "")  # no number to answer (a gateway test message, say)
    if sms.gateway_id and not _first_time(sms.gateway_id):
        return Reply("ignored", "")  # posted again (a retry): acted on already
    parsed = parse(sms.body)
    if parsed.word in STOP_WORDS and not parsed.rest:
        return _stop(number)
    if parsed.word in START_WORDS and not parsed.rest and refs.opted_out(number):
        return _start(number)
    if ContactService.find(number) is None and not refs.was_ever_texted_about_a_request(number):
        # A stranger FleetOS never texted: nothing to act on, and no answer, so that
        # nobody can make FleetOS pay for texts to numbers of their choosing.
        return Reply("ignored", "")
    return _act(number, parsed, sms.media)


def _first_time(gateway_id: str) -> bool:
    """Record the gateway's id; False if it was recorded before (in this unit of work's
    commit, so a message is acted on once however often it is posted)."""
    recorded = db.session.scalar(
        insert(SmsReceived)
        .values(gateway_id=gateway_id[:100])
        .on_conflict_do_nothing()
        .returning(SmsReceived.gateway_id)
    )
    return recorded is not None


def _stop(number: str) -> Reply:
    refs.opt_out(number)
    _record_number_event("contact.sms_stopped", number)
    text = "You will get no more SMS from FleetOS. Text START to get them again."
    _answer(number, text, kind="sms_stopped")
    return Reply("stopped", text)


def _start(number: str) -> Reply:
    refs.opt_in(number)
    _record_number_event("contact.sms_started", number)
    text = "You will get FleetOS SMS again. Text STOP to stop them."
    _answer(number, text)
    return Reply("started", text)


def _record_number_event(event_type: str, number: str) -> None:
    contact = ContactService.find(number)
    EventLogService.record(
        event_type,
        company_id=contact.company_id if contact else None,
        contact_id=contact.contact_id if contact else None,
        number=number,
        channel=SMS,
    )


def _act(number: str, parsed: Parsed, media: Sequence[Attachable]) -> Reply:
    target = _target(number, parsed.ref)
    if isinstance(target, Reply):
        return target
    _, service_request = target
    contact = access.emerge_on_reply(number, service_request, channel=SMS)
    if contact is None:
        return _refuse(number, "This number cannot act on that request.", None)
    try:
        with db.session.begin_nested():  # a refusal undoes only what this step began
            reply = _apply(contact, service_request, parsed, media)
    except DomainError as refusal:
        EventLogService.record(
            "reply.refused",  # the one event for a refused reply, by mail or SMS
            company_id=contact.company_id,
            contact_id=contact.contact_id,
            request_id=service_request.request_id,
            asked=parsed.word.lower() if parsed.word in STEP_WORDS else "note",
            reason=refusal.message,
            channel=SMS,
        )
        return _refuse(number, refusal.message, service_request)
    db.session.refresh(service_request)
    _answer(number, reply.text, service_request=service_request)
    return reply


def _target(number: str, ref: str | None) -> tuple[str, ServiceRequest] | Reply:
    """The request a reply is about, or the answer that asks which."""
    if ref is not None:
        request_id = refs.request_for_ref(number, ref)
        service_request = db.session.get(ServiceRequest, request_id) if request_id else None
        if service_request is not None:
            return ref, service_request
        return _which(number, f"No request of yours has Ref {ref}.")
    open_requests = refs.open_requests_texted_to(number)
    if len(open_requests) == 1:
        return open_requests[0]
    return _which(number, None)


def _which(number: str, problem: str | None) -> Reply:
    """Text back the number's open requests and their refs (or that there is none)."""
    open_requests = refs.open_requests_texted_to(number)
    if not open_requests:
        text = " ".join(filter(None, [problem, "You have no open request to reply to by SMS."]))
        _answer(number, text)
        return Reply("refused" if problem else "asked", text)
    listed = "; ".join(f"Ref {ref} {shorten(r.title, 24)}" for ref, r in open_requests[:6])
    text = " ".join(
        filter(None, [problem, "Which request? Start your reply with its ref:", listed + "."])
    )
    _answer(number, text)
    return Reply("asked", text)


def _apply(
    contact: Contact, service_request: ServiceRequest, parsed: Parsed, media: Sequence[Attachable]
) -> Reply:
    request_id: uuid.UUID = service_request.request_id
    to = STEP_WORDS.get(parsed.word)
    if to is not None and not media and (to == "declined" or not parsed.rest):
        moved = request_actions.transition(contact, request_id, to, reason=parsed.rest, channel=SMS)
        verb = moved.step.verb.capitalize()
        return Reply("moved", f"{verb}: {moved.service_request.title}.")
    request_actions.add_note(contact, request_id, parsed.text, attachments=list(media), channel=SMS)
    return Reply("noted", f"Note added to {service_request.title}.")


def _refuse(number: str, why: str, service_request: ServiceRequest | None) -> Reply:
    text = f"Nothing was done: {why}"
    _answer(number, text, service_request=service_request)
    return Reply("refused", text)


def _answer(
    number: str,
    text: str,
    *,
    service_request: ServiceRequest | None = None,
    kind: str = "sms_reply",
) -> None:
    """Queue the answer to the sender (through the outbox, like every SMS)."""
    queue_mail(kind, number, "FleetOS", said=text, service_request=service_request)
