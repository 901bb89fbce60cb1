"""Acting on service requests: send one, move it along, assign it, discuss it, look at it.

Every channel calls these same functions: the request page and the dashboard
row today, an SMS or a mail reply later. Each one checks that the contact may
act, applies the change (conditional on what the person saw, where two
people may race), records the event (with the ``channel`` it came by), routes
the notification, commits all of it as one unit of work, and returns what
happened, or raises a domain error and changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlalchemy import func, text, update

from .. import abuse, lifecycle, queries
from ..companies import CompanyService
from ..contacts import ContactService, InvalidContact, ensure_mailable, ensure_reachable
from ..domain_errors import Conflict, Forbidden, Invalid
from ..events import EventLogService
from ..extensions import db
from ..lifecycle import Step
from ..messaging import notify
from ..models import Company, Contact, EventLog, ServiceRequest
from ..text import clean_line, clean_text, shorten
from ..unit_of_work import atomic
from . import attachments as files
from .attachments import Attachable

WEB = "web"


# ---------------------------------------------------------------------------
# Sending a request
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class NewRequest:
    """What a fleet asks for, already well-formed (the channel's form checked that)."""

    vehicle: str
    title: str
    description: str | None = None
    priority: str = lifecycle.DEFAULT_PRIORITY
    odometer: int | None = None
    location: str | None = None
    # The supplier: one the fleet has worked with, or else an address to send it to.
    supplier_id: uuid.UUID | None = None
    supplier_address: str | None = None


@dataclass(frozen=True)
class Created:
    service_request: ServiceRequest
    supplier: Company
    # Whom the fleet is told it went to: the address it typed (the company behind a
    # new address is not the sender's to learn from this answer), else the supplier.
    sent_to: str


def ensure_may_send(contact: Contact) -> None:
    """Only fleets send requests (a channel may ask before it shows a form)."""
    if not contact.company.is_fleet:
        raise Forbidden("Only fleet companies send service requests.")


@atomic
def create_request(
    contact: Contact,
    new: NewRequest,
    *,
    attachments: Sequence[Attachable] = (),
    channel: str = WEB,
) -> Created:
    """Send ``new`` (with its photos and documents) to its supplier (which may emerge from
    the address), and tell them."""
    ensure_may_send(contact)
    new = _plain(new)
    taken = files.take_in(attachments)
    try:
        supplier, typed_address = _resolve_supplier(contact, new, channel)
    except Invalid as refusal:
        # The supplier's and the files' faults together (nothing is kept: the unit rolls back).
        files.refuse_if_wrong(taken, refusal.errors)
        raise
    files.refuse_if_wrong(taken, {})
    if typed_address is not None:  # a new address for this fleet spends its daily budget
        abuse.write_to(contact.company_id, typed_address, company_name=contact.company.name)

    service_request = ServiceRequest(
        fleet_company_id=contact.company_id,
        submitted_by_contact_id=contact.contact_id,
        supplier_company_id=supplier.company_id,
        status=lifecycle.INITIAL_STATUS,
        vehicle=new.vehicle,
        title=new.title,
        description=new.description,
        priority=new.priority,
        odometer=new.odometer,
        location=new.location,
    )
    db.session.add(service_request)
    db.session.flush()
    db.session.refresh(service_request)
    route = notify.for_new_request(service_request, typed_address)
    service_request.supplier_email = route.address if route else None
    attached = files.summary(taken.held)
    if typed_address:
        # What that address is sent (the request, or a note that it is another
        # company's) is the delivery worker's decision: see messaging/decisions.py.
        facts = notify.decided_at_delivery(
            route, service_request, kind="request_new", attached=attached
        )
    else:
        facts = notify.notify(
            route,
            service_request,
            kind="request_new",
            subject=f"New service request from {contact.company.label}: {service_request.title}",
            fleet=contact.company,
            submitter=contact,
            attached=attached,
        )
    event = EventLogService.record(
        "request.created",
        company_id=contact.company_id,
        contact_id=contact.contact_id,
        request_id=service_request.request_id,
        supplier_company_id=str(supplier.company_id),
        channel=channel,
        **files.audit_facts(taken.held),
        **facts,
    )
    files.attach(
        taken.held, service_request=service_request, contact=contact, event=event, channel=channel
    )
    abuse.spend(abuse.REQUESTS, contact)
    sent_to = typed_address or supplier.label
    return Created(service_request, supplier, sent_to)


def _plain(new: NewRequest) -> NewRequest:
    """``new`` with its one-line fields on one line and no control characters anywhere,
    and a supplier address FleetOS can write to."""
    if new.supplier_id is None and new.supplier_address and "@" in new.supplier_address:
        try:
            ensure_mailable(new.supplier_address)
        except InvalidContact as exc:
            raise Invalid("supplier_address", str(exc)) from None
    return replace(
        new,
        vehicle=clean_line(new.vehicle, "vehicle"),
        title=clean_line(new.title, "title"),
        location=clean_line(new.location, "location") or None,
        description=clean_text(new.description, "description") or None,
    )


def _resolve_supplier(
    contact: Contact, new: NewRequest, channel: str
) -> tuple[Company, str | None]:
    """The supplier, and the address typed if the fleet typed one."""
    if new.supplier_id is not None:
        for supplier in queries.suppliers_worked_with(contact.company_id):
            if supplier.company_id == new.supplier_id:
                return supplier, None
        # Not in this fleet's list: whatever it is, it is not this fleet's to pick.
        raise Invalid(
            "supplier",
            "Choose a supplier from the list, or enter an e-mail address or mobile number.",
        )
    if not new.supplier_address:
        raise Invalid(
            "supplier",
            "Choose a supplier, or enter the supplier's e-mail address or mobile number.",
        )
    try:
        address = ContactService.canonicalise(new.supplier_address)
        ensure_reachable(address)
    except InvalidContact as exc:
        raise Invalid("supplier_address", str(exc)) from None
    # The same steps whoever the address is (its supplier, or one emerging for it):
    # nothing here may answer differently for an address that uses FleetOS.
    resolved = CompanyService.supplier_for_address(
        address.value, introduced_by=contact, channel=channel
    )
    return resolved.company, address.value


# ---------------------------------------------------------------------------
# The lifecycle
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Moved:
    service_request: ServiceRequest
    step: Step
    seen: str  # the status it moved from


@atomic
def transition(
    contact: Contact,
    request_id: uuid.UUID,
    to: str,
    *,
    reason: str = "",
    seen: str | None = None,
    channel: str = WEB,
) -> Moved:
    """Move a request from the status its viewer saw (``seen``) to ``to``.

    Without ``seen`` (a reply by mail, say), the status it has now. Of two
    people acting at once on what they both saw, one wins; the other gets a
    Conflict that says who moved it, and when.
    """
    service_request = queries.visible_request(contact, request_id)
    step = lifecycle.STEPS.get(to)
    if step is None:
        raise Invalid("to", f"{shorten(to) or 'That'} is not a step a request can take.")
    if not lifecycle.may_take(step, service_request, contact):
        raise Forbidden("Only the supplier moves a request through its lifecycle.")
    if seen is None and service_request.status == to:
        # A reply that says nothing of what its sender saw, to a step someone took already.
        raise Conflict(_already_moved(service_request))
    seen = seen or service_request.status
    if not lifecycle.can_move(seen, to):
        raise Conflict(_impossible(seen, step))
    reason = clean_line(reason, "reason")
    if step.needs_reason and not reason:
        raise Invalid("reason", "Say why you decline, so the fleet can act on it.")
    if len(reason) > lifecycle.REASON_MAX:
        raise Invalid("reason", f"Keep the reason under {lifecycle.REASON_MAX} characters.")

    moved = db.session.execute(
        update(ServiceRequest)
        .where(
            ServiceRequest.request_id == service_request.request_id, ServiceRequest.status == seen
        )
        .values(status=to, updated_at=func.now())
        .returning(ServiceRequest.request_id)
    ).scalar()
    if moved is None:
        db.session.refresh(service_request)
        raise Conflict(_already_moved(service_request))
    db.session.refresh(service_request)
    facts = _tell_other_side(
        service_request,
        contact,
        subject=f"{step.verb} by {contact.company.name}",
        headline=f"{contact.label} {step.verb} this request",
        reason=reason,
    )
    EventLogService.record(
        step.event_type,
        company_id=contact.company_id,
        contact_id=contact.contact_id,
        request_id=service_request.request_id,
        **{"from": seen, "to": to},
        **({"reason": reason} if reason else {}),
        channel=channel,
        **facts,
    )
    return Moved(service_request, step, seen)


def acknowledge(
    contact: Contact, request_id: uuid.UUID, *, seen: str | None = None, channel: str = WEB
) -> Moved:
    return transition(contact, request_id, "acknowledged", seen=seen, channel=channel)


def start(
    contact: Contact, request_id: uuid.UUID, *, seen: str | None = None, channel: str = WEB
) -> Moved:
    return transition(contact, request_id, "in_progress", seen=seen, channel=channel)


def complete(
    contact: Contact, request_id: uuid.UUID, *, seen: str | None = None, channel: str = WEB
) -> Moved:
    return transition(contact, request_id, "completed", seen=seen, channel=channel)


def decline(
    contact: Contact,
    request_id: uuid.UUID,
    reason: str,
    *,
    seen: str | None = None,
    channel: str = WEB,
) -> Moved:
    return transition(contact, request_id, "declined", reason=reason, seen=seen, channel=channel)


def _impossible(seen: str, step: Step) -> str:
    if lifecycle.is_final(seen):
        return f"This request is {seen}; it cannot be {step.verb} any more."
    return f"A request that is {lifecycle.status_label(seen)} cannot be {step.verb}."


def _already_moved(service_request: ServiceRequest) -> str:
    """Explain why a move found the request elsewhere: who moved it, and when; or, when no
    step of ours explains where it stands (the page was older than that), say so."""
    now = lifecycle.status_label(service_request.status)
    last = queries.last_step_event(service_request)
    if last is None or (last.metadata_ or {}).get("to") != service_request.status:
        return (
            f"This page was out of date: the request is {now} now. "
            "Nothing was changed; here is where it stands now."
        )
    step = lifecycle.STEPS[service_request.status]
    who = f" by {last.contact.label}" if last.contact is not None else ""
    when = f" ({last.created_at:%d %b %Y, %H:%M} UTC)" if last.created_at else ""
    return (
        f"This request was already {step.verb}{who}{when}. "
        "Nothing was changed; here is where it stands now."
    )


def _tell_other_side(
    service_request: ServiceRequest,
    actor: Contact,
    *,
    subject: str,
    headline: str,
    reason: str,
    attached: str = "",
) -> dict[str, object]:
    """Tell the other side about a change to ``service_request``; return the route taken.

    ``attached`` says what came with it ("2 photos attached"): mail carries the
    words and the link, never the files.
    """
    return notify.notify(
        notify.for_news(service_request, actor),
        service_request,
        kind="request_update",
        subject=f"{service_request.title}: {subject}",
        actor=actor,
        headline=headline,
        reason=reason,
        attached=attached,
    )


# ---------------------------------------------------------------------------
# Assignment, notes, read receipts
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Assigned:
    service_request: ServiceRequest
    assignee: Contact


@atomic
def assign(
    contact: Contact, request_id: uuid.UUID, assignee_id: uuid.UUID | None, *, channel: str = WEB
) -> Assigned:
    """Assign the request to a contact of the supplier (the actor or a colleague)."""
    service_request = queries.visible_request(contact, request_id)
    if lifecycle.side_of(service_request, contact) != lifecycle.SUPPLIER:
        raise Forbidden("Only the supplier assigns its requests.")
    if lifecycle.is_final(service_request.status):
        raise Conflict(
            f"This request is {service_request.status}; there is nothing left to assign."
        )
    assignee = queries.colleague(contact, assignee_id)
    if assignee is None:
        raise Invalid("contact_id", "Choose someone from your own company.")
    service_request.assigned_to_contact_id = assignee.contact_id
    service_request.updated_at = func.now()
    facts: dict[str, object] = {}
    if assignee.contact_id != contact.contact_id:
        facts = notify.notify(
            notify.Route(assignee.contact_value, "assigned to them", assignee.contact_id),
            service_request,
            kind="request_update",
            subject=f"{service_request.title}: assigned to you",
            actor=contact,
            headline=f"{contact.label} assigned this request to you",
            reason="",
        )
    EventLogService.record(
        "request.assigned",
        company_id=contact.company_id,
        contact_id=contact.contact_id,
        request_id=service_request.request_id,
        assignee_id=str(assignee.contact_id),
        assignee=assignee.label,
        channel=channel,
        **facts,
    )
    db.session.flush()
    db.session.refresh(service_request)
    return Assigned(service_request, assignee)


@dataclass(frozen=True)
class Noted:
    service_request: ServiceRequest
    event: EventLog


@atomic
def add_note(
    contact: Contact,
    request_id: uuid.UUID,
    body: str,
    *,
    attachments: Sequence[Attachable] = (),
    channel: str = WEB,
) -> Noted:
    """Add a note (words, photos and documents) to the request's thread (either side), and
    tell the other side.

    A mail reply or an MMS calls this with the files it carried, as a form does.
    """
    service_request = queries.visible_request(contact, request_id)
    taken = files.take_in(attachments, service_request)
    body = clean_text(body, "body")
    errors: dict[str, str] = {}
    if not body and not taken.held and not taken.refused:
        errors["body"] = "Write something first, or attach a photo or document."
    elif len(body) > lifecycle.NOTE_MAX:
        errors["body"] = f"Keep a note under {lifecycle.NOTE_MAX} characters (it has {len(body)})."
    files.refuse_if_wrong(taken, errors)
    attached = files.summary(taken.held)
    facts = _tell_other_side(
        service_request,
        contact,
        subject=f"a note from {contact.company.name}",
        headline=f"{contact.label} added a note",
        reason=body,
        attached=attached,
    )
    abuse.spend(abuse.NOTES, contact)
    event = EventLogService.record(
        "request.note",
        company_id=contact.company_id,
        contact_id=contact.contact_id,
        request_id=service_request.request_id,
        body=body,
        channel=channel,
        **files.audit_facts(taken.held),
        **facts,
    )
    files.attach(
        taken.held, service_request=service_request, contact=contact, event=event, channel=channel
    )
    return Noted(service_request, event)


@atomic
def record_view(contact: Contact, service_request: ServiceRequest, *, channel: str = WEB) -> bool:
    """The supplier's first look is a read receipt for the fleet; later looks add nothing.

    Returns whether this look was the first.
    """
    if lifecycle.side_of(service_request, contact) != lifecycle.SUPPLIER:
        return False
    # Two colleagues opening it at once must not both be "first".
    db.session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
        {"key": f"viewed:{service_request.request_id}"},
    )
    if queries.has_event(service_request, "request.viewed"):
        return False
    EventLogService.record(
        "request.viewed",
        company_id=contact.company_id,
        contact_id=contact.contact_id,
        request_id=service_request.request_id,
        channel=channel,
    )
    return True
