"""Replies: a reply to a FleetOS message acts on its request, whatever channel it came by.

A channel (mail today: ``fleetos/inbound/mail.py``; SMS next) reads a reply
into a :class:`Reply` (who sent it, the new text only, its files, its message
id, whether a machine sent it) and finds whom the message replied to went to,
about which request (an :class:`Addressee`). :func:`receive_reply` then, in
one unit of work:

* processes each message id once, however often it arrives;
* records an auto-reply on the timeline and does nothing else (no loops);
* holds a reply from another sender than the addressee, and asks the
  addressee to accept it as their note or discard it;
* does nothing with an empty reply;
* lets the addressee's contact emerge on its first reply
  (:func:`fleetos.actions.access.emerge_on_reply`);
* reads a command on the first line (``ack``, ``start``, ``done``,
  ``decline <reason>``, ``assign me``) and takes it through the same action
  functions as the buttons, with their permission and conflict rules; anything
  else is a note (with the reply's files);
* answers the contact: what was done, or why nothing was. Never silence, but
  for a reply over the contact's note limit (a flood: answering it could feed a
  loop with a mail system that answers every mail without saying so).

Every event carries the ``channel`` in its metadata.

A channel without reply addresses (SMS: the number that replies is the one
written to) builds its :class:`Addressee` from the request it resolved (its
``Ref``, or the sender's only open request) with ``reply_address`` None; such
a reply is never held. Its answer goes through ``notify.answer_reply``, where
the channel that carries a message to an address is decided.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert

from .. import lifecycle
from ..attachments.content import IncomingFile
from ..clock import utcnow
from ..contacts import ContactService
from ..domain_errors import DomainError, Invalid, NotFound, TooMany
from ..events import EventLogService
from ..extensions import db
from ..messaging import notify, reply_to
from ..models import Contact, HeldReply, InboundMessage, ReplyAddress, ServiceRequest
from ..unit_of_work import atomic
from . import access
from . import attachments as files
from . import requests as act
from .attachments import HeldFile

log = logging.getLogger(__name__)

MAIL = "mail"
SMS = "sms"


@dataclass(frozen=True)
class Reply:
    """A reply as its channel read it."""

    channel: str
    sender: str  # the canonical address (or number) it came from
    text: str  # the new text only: quotes, signatures and reply headers gone
    attachments: Sequence[IncomingFile] = ()
    # The channel's id for the message (mail: its Message-ID): processed once.
    message_id: str | None = None
    # Sent by a machine (out of office, a bounce): recorded, never posted or answered.
    automatic: bool = False
    # The channel's own checks of the sender (mail: Authentication-Results) did not fail.
    sender_verified: bool = True
    # What the answer refers to, to land in the reply's thread (mail: its Message-ID).
    thread: str | None = None


@dataclass(frozen=True)
class Addressee:
    """Whom the message being replied to went to, about which request, acting for whom."""

    service_request: ServiceRequest
    address: str  # canonical
    company_id: uuid.UUID  # the company that address acts for on the request
    reply_address: ReplyAddress | None = None  # mail: the reply address written to


@dataclass(frozen=True)
class Handled:
    """What became of a reply; ``answer`` is what its sender was told ("" for nothing)."""

    outcome: str  # duplicate, auto_reply, held, empty, noted, <step>, assigned, refused
    answer: str = ""
    held: HeldReply | None = None


class UnknownReplyAddress(Exception):
    """Not one of FleetOS's reply addresses, or one that no longer works: nothing is done."""


# ---------------------------------------------------------------------------
# Whom a reply address names
# ---------------------------------------------------------------------------


def addressee_of(token: str) -> Addressee:
    """The addressee a reply address's token names, if it still works.

    UnknownReplyAddress for a token that is not FleetOS's (tampered, made up),
    and for one that died: revoked, its request closed for longer than
    REPLY_ADDRESS_CLOSED_DAYS, its address's contact gone to another company
    or gone altogether, or its company no longer a side of the request.
    Changes nothing (the gateway asks at RCPT TO).
    """
    row = reply_to.read(token)
    if row is None or row.revoked_at is not None or _has_died(row):
        raise UnknownReplyAddress()
    return Addressee(row.service_request, row.address, row.company_id, row)


def _has_died(row: ReplyAddress) -> bool:
    service_request = row.service_request
    if row.company_id not in (
        service_request.fleet_company_id,
        service_request.supplier_company_id,
    ):
        return True
    if lifecycle.is_final(service_request.status):
        days = int(current_app.config["REPLY_ADDRESS_CLOSED_DAYS"])
        if service_request.updated_at < utcnow() - timedelta(days=days):
            return True
    contact = ContactService.find(row.address)
    if contact is not None:
        return contact.company_id != row.company_id  # left for another company
    # No contact: only the address a request was sent to may emerge by replying; any
    # other address was a contact's when it was mailed, and that contact has left.
    return not _may_emerge(row)


def _may_emerge(row: ReplyAddress) -> bool:
    service_request = row.service_request
    if row.company_id != service_request.supplier_company_id:
        return False
    sent_to = (service_request.supplier_email or "").strip().lower()
    return row.address in (sent_to, row.company.emerged_from_address)


@atomic
def revoke(token: str) -> bool:
    """Stop a reply address from working (any later mail about the request gets a new
    one); False if the token is not FleetOS's or was revoked already."""
    row = reply_to.read(token)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = func.now()
    return True


# ---------------------------------------------------------------------------
# Receiving one
# ---------------------------------------------------------------------------


@atomic
def receive_reply(to: Addressee, reply: Reply) -> Handled:
    """Do what ``reply`` (to a message sent to ``to``) asks, once; see the module."""
    service_request = to.service_request
    if not _first_time(reply, service_request):
        return Handled("duplicate")
    handled = _handle(to, reply)
    _record_outcome(reply, handled)
    return handled


def _handle(to: Addressee, reply: Reply) -> Handled:
    if reply.automatic:
        EventLogService.record(
            "request.auto_reply",
            company_id=to.company_id,
            request_id=to.service_request.request_id,
            sender=reply.sender,
            channel=reply.channel,
        )
        return Handled("auto_reply")
    if reply.sender != to.address or not reply.sender_verified:
        return _hold(to, reply)
    if not reply.text.strip() and not reply.attachments:
        return Handled("empty")
    contact = access.emerge_on_reply(
        to.address, to.service_request, company_id=to.company_id, channel=reply.channel
    )
    assert contact is not None  # a company was given: the contact is found or made
    return _act(contact, to, reply)


def _first_time(reply: Reply, service_request: ServiceRequest) -> bool:
    """Claim ``reply``'s message id; False if it was processed before (or is being now:
    the second waits for the first to commit, then finds it)."""
    if not reply.message_id:
        return True
    claimed = db.session.scalar(
        insert(InboundMessage)
        .values(
            message_key=_message_key(reply),
            channel=reply.channel,
            request_id=service_request.request_id,
            outcome="processing",
        )
        .on_conflict_do_nothing()
        .returning(InboundMessage.message_key)
    )
    return claimed is not None


def _message_key(reply: Reply) -> str:
    return f"{reply.channel}:{(reply.message_id or '').strip()}"[:1000]


def _record_outcome(reply: Reply, handled: Handled) -> None:
    if reply.message_id:
        db.session.execute(
            update(InboundMessage)
            .where(InboundMessage.message_key == _message_key(reply))
            .values(outcome=handled.outcome)
        )


# ---------------------------------------------------------------------------
# Commands and notes
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """What a reply asks for: a step, an assignment, or (``name`` None) a note."""

    name: str | None
    argument: str = ""  # decline: the reason
    rest: str = ""  # the text after the command line (a note of its own)


PUNCTUATION = ".!,;:"


def interpret(text: str) -> Command:
    """The command on ``text``'s first line (``ack``, ``start``, ``done``/``complete``,
    ``decline <reason>``, ``assign me``), else a note of all of ``text``.

    Only a first line that *is* the command counts ("Done." is one; "done by
    Friday, promise" is a note), except ``decline``, whose reason follows it.
    """
    first, _, rest = text.strip().partition("\n")
    words = first.strip().split(None, 1)
    if not words:
        return Command(None)
    word = words[0].lower().rstrip(PUNCTUATION)
    after = words[1].strip() if len(words) > 1 else ""
    rest = rest.strip()
    if word == "decline":
        return Command("declined", argument=after or rest, rest=rest if after else "")
    if word in lifecycle.REPLY_WORDS and not after.strip(PUNCTUATION):
        return Command(lifecycle.REPLY_WORDS[word], rest=rest)
    if word == "assign" and after.lower().rstrip(PUNCTUATION) == "me":
        return Command("assigned", rest=rest)
    return Command(None, rest=text.strip())


def _act(contact: Contact, to: Addressee, reply: Reply) -> Handled:
    service_request = to.service_request
    command = interpret(reply.text)
    request_id = service_request.request_id
    try:
        # A savepoint: a refusal undoes the action's own writes, while the emergence,
        # the message id and the answer below stay.
        with db.session.begin_nested():
            done = _run(contact, request_id, command, reply)
    except DomainError as refusal:
        answer = _refusal(refusal, command)
        EventLogService.record(
            "reply.refused",
            company_id=contact.company_id,
            contact_id=contact.contact_id,
            request_id=request_id,
            asked=command.name or "note",
            reason=answer,
            channel=reply.channel,
        )
        if isinstance(refusal, TooMany):
            # A flood (a mail system answering every answer without saying it is a
            # machine): answering each refusal would keep the loop going.
            return Handled("refused")
        _answer(contact, service_request, answer, done=False, thread=reply.thread)
        return Handled("refused", answer)
    db.session.refresh(service_request)
    _answer(contact, service_request, done, done=True, thread=reply.thread)
    return Handled(command.name or "noted", done)


def _run(contact: Contact, request_id: uuid.UUID, command: Command, reply: Reply) -> str:
    """Take ``command``; return what to tell the contact. A domain error refuses it all."""
    said: list[str] = []
    channel = reply.channel
    if command.name == "assigned":
        act.assign(contact, request_id, contact.contact_id, channel=channel)
        said.append("The request is assigned to you.")
    elif command.name is not None:
        moved = act.transition(
            contact, request_id, command.name, reason=command.argument, channel=channel
        )
        said.append(f"You {moved.step.verb} the request.")
    if command.rest or reply.attachments:
        said.append(_note(contact, request_id, command.rest, reply, after_step=bool(said)))
    return " ".join(said)


def _note(
    contact: Contact, request_id: uuid.UUID, body: str, reply: Reply, *, after_step: bool
) -> str:
    """Add the reply's words and files as a note; a file refused (its type, its size)
    is named in the answer, and the rest goes in without it."""
    refused = ""
    try:
        with db.session.begin_nested():
            noted = act.add_note(
                contact, request_id, body, attachments=reply.attachments, channel=reply.channel
            )
    except Invalid as refusal:
        kept: Sequence[HeldFile] = refusal.held
        if set(refusal.errors) != {"files"} or not (body or kept):
            raise
        noted = act.add_note(contact, request_id, body, attachments=kept, channel=reply.channel)
        refused = refusal.errors["files"].replace(" The other files are kept.", "")
    if after_step:
        # Every event of one transaction has the same now(): the timeline would order the
        # step and the note below it by chance. The note is written after the step.
        noted.event.created_at = func.clock_timestamp()
    if refused:
        return f"Your note was added. {refused}"
    carried = (noted.event.metadata_ or {}).get("attachments") or []
    attached = files.summary(
        [HeldFile(f["name"], f["type"], f["size"], f["sha256"]) for f in carried]
    )
    return f"Your note was added{f' ({attached})' if attached else ''}."


def _refusal(refusal: DomainError, command: Command) -> str:
    asked = {
        None: "Your note was not added",
        "assigned": "The request was not assigned to you",
    }.get(command.name, f"The request was not {_verb(command.name)}")
    return f"{asked}: {refusal.message}"


def _verb(status: str | None) -> str:
    step = lifecycle.STEPS.get(status or "")
    return step.verb if step else "changed"


def _answer(
    contact: Contact, service_request: ServiceRequest, text: str, *, done: bool, thread: str | None
) -> None:
    notify.answer_reply(contact, service_request, text, done=done, in_reply_to=thread)


# ---------------------------------------------------------------------------
# Held replies
# ---------------------------------------------------------------------------


def _hold(to: Addressee, reply: Reply) -> Handled:
    """Keep a reply from someone else than the addressee, and ask the addressee about it.

    The sender is told nothing (they may be anyone; an answer would make FleetOS
    a mail relay for them). Files are taken in now (checked, cleaned, stored),
    so accepting needs nothing more; refused ones are dropped.
    """
    if to.reply_address is None:
        # A channel without reply addresses (SMS: the number is the sender) never holds.
        raise UnknownReplyAddress()
    if not reply.text.strip() and not reply.attachments:
        return Handled("empty")
    if _held_today(to.reply_address) >= int(current_app.config["HELD_REPLIES_PER_DAY"]):
        # Anyone who has seen a reply address (a forward, a CC) could otherwise have its
        # addressee mailed their text again and again, and fill the store with files.
        EventLogService.record(
            "reply.not_held",
            company_id=to.company_id,
            request_id=to.service_request.request_id,
            sender=reply.sender,
            addressee=to.address,
            channel=reply.channel,
        )
        return Handled("refused")
    taken = files.take_in(reply.attachments, to.service_request)
    held = HeldReply(
        request_id=to.service_request.request_id,
        reply_address_id=to.reply_address.reply_address_id,
        channel=reply.channel,
        sender=reply.sender,
        body=reply.text.strip()[: lifecycle.NOTE_MAX],
        attachments=[f.as_dict() for f in taken.held] or None,
    )
    db.session.add(held)
    db.session.flush()
    EventLogService.record(
        "reply.held",
        company_id=to.company_id,
        request_id=to.service_request.request_id,
        sender=reply.sender,
        addressee=to.address,
        held_reply_id=str(held.held_reply_id),
        verified=reply.sender_verified,
        channel=reply.channel,
    )
    notify.ask_about_held_reply(
        to.address,
        to.company_id,
        to.service_request,
        held,
        review=reply_to.held_reply_token(held.held_reply_id, to.address),
    )
    return Handled("held", held=held)


def _held_today(reply_address: ReplyAddress) -> int:
    """Replies held for ``reply_address`` in the last 24 hours (under a lock on the row,
    so that replies arriving at once count one another)."""
    db.session.execute(
        select(ReplyAddress.reply_address_id)
        .where(ReplyAddress.reply_address_id == reply_address.reply_address_id)
        .with_for_update()
    )
    held = db.session.scalar(
        select(func.count())
        .select_from(HeldReply)
        .where(
            HeldReply.reply_address_id == reply_address.reply_address_id,
            HeldReply.created_at > func.now() - timedelta(hours=24),
        )
    )
    return int(held or 0)


@dataclass(frozen=True)
class HeldForReview:
    held: HeldReply
    service_request: ServiceRequest
    address: str
    files: list[HeldFile] = field(default_factory=list)


def held_for_review(token: str) -> HeldForReview:
    """The held reply a review link names (NotFound if the link is no good, or it is not
    held any more); changes nothing."""
    found = reply_to.read_held_reply_token(token)
    if found is None:
        raise NotFound("This link does not work any more.")
    held_reply_id, address = found
    held = db.session.get(HeldReply, held_reply_id)
    if held is None or held.reply_address.address != address:
        raise NotFound("This link does not work any more.")
    return HeldForReview(
        held,
        held.reply_address.service_request,
        address,
        [HeldFile.from_dict(raw) for raw in held.attachments or []],
    )


@atomic
def decide_held_reply(token: str, *, accept: bool, channel: str = act.WEB) -> Handled:
    """The addressee's decision on a held reply: their note (files and all), or gone.

    Taken once; a second decision (the other button, the link again) changes
    nothing and says what was decided.
    """
    review = held_for_review(token)
    held = db.session.scalar(
        select(HeldReply)
        .where(HeldReply.held_reply_id == review.held.held_reply_id)
        .with_for_update(of=HeldReply)
    )
    assert held is not None
    if held.decided_at is not None:
        return Handled(held.decision or "decided", f"This reply was already {held.decision}.")
    row = held.reply_address
    if row.revoked_at is not None or _has_died(row):
        raise NotFound("This link does not work any more.")
    held.decided_at = func.now()
    held.decision = "accepted" if accept else "discarded"
    contact: Contact | None = None
    if accept:
        contact = access.emerge_on_reply(
            row.address, row.service_request, company_id=row.company_id, channel=channel
        )
        assert contact is not None  # a company was given: the contact is found or made
        act.add_note(
            contact, held.request_id, held.body, attachments=review.files, channel=held.channel
        )
    else:
        contact = ContactService.find(row.address)
    EventLogService.record(
        f"reply.{held.decision}",
        company_id=row.company_id,
        contact_id=contact.contact_id if contact else None,
        request_id=held.request_id,
        sender=held.sender,
        held_reply_id=str(held.held_reply_id),
        channel=channel,
    )
    answer = "Added as your note." if accept else "Discarded: nothing was added."
    return Handled(held.decision, answer, held=held)
