"""The work itself: fleets send requests, suppliers move them through their lifecycle.

Every function takes the signed-in contact and sees only requests its
company owns (as fleet or as supplier); anything else is "not found". Each
change, its event and its notification commit together.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, or_, select, text, update

from ..companies import CompanyService
from ..contacts import ContactService, InvalidContact
from ..events import EventLogService
from ..extensions import db
from ..models import PRIORITIES, Company, Contact, EventLog, ServiceRequest
from . import routing

LIMITS = {"vehicle": 100, "title": 200, "description": 5000, "location": 200}
ODOMETER_MAX = 10_000_000
NOTE_MAX = 5000
REASON_MAX = 1000

ACTION_LABELS = {
    "acknowledged": "Acknowledge",
    "in_progress": "Start work",
    "completed": "Complete",
    "declined": "Decline",
}
STATUS_VERBS = {
    "acknowledged": "acknowledged",
    "in_progress": "started",
    "completed": "completed",
    "declined": "declined",
}


class RequestError(Exception):
    """A refusal the person can read: ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 422, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.field = field


class NotFound(RequestError):
    def __init__(self) -> None:
        super().__init__("There is no such request.", 404)


# ---------------------------------------------------------------------------
# Seeing requests: company ownership, always
# ---------------------------------------------------------------------------


def owned_by(company_id: uuid.UUID):
    """The SQL condition "this company owns the request", as fleet or as supplier."""
    return or_(
        ServiceRequest.fleet_company_id == company_id,
        ServiceRequest.supplier_company_id == company_id,
    )


def visible_request(
    contact: Contact, request_id: uuid.UUID, *, lock: bool = False
) -> ServiceRequest:
    query = select(ServiceRequest).where(
        ServiceRequest.request_id == request_id, owned_by(contact.company_id)
    )
    if lock:
        query = query.with_for_update()
    found = db.session.scalar(query)
    if found is None:
        raise NotFound()
    return found


def is_supplier_of(contact: Contact, request: ServiceRequest) -> bool:
    return contact.company_id == request.supplier_company_id


def suppliers_worked_with(fleet_company_id: uuid.UUID) -> list[Company]:
    """Supplier companies this fleet has sent work to, by name."""
    worked_with = select(ServiceRequest.supplier_company_id).where(
        ServiceRequest.fleet_company_id == fleet_company_id
    )
    return list(
        db.session.scalars(
            select(Company)
            .where(Company.company_id.in_(worked_with), Company.company_type == "supplier")
            .order_by(Company.name)
        )
    )


# ---------------------------------------------------------------------------
# Creating a request
# ---------------------------------------------------------------------------


@dataclass
class RequestForm:
    """What the fleet typed, kept as typed so a refused form shows it again."""

    supplier: str = ""
    supplier_email: str = ""
    vehicle: str = ""
    title: str = ""
    description: str = ""
    priority: str = "normal"
    odometer: str = ""
    location: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, data: Any) -> RequestForm:
        names = (
            "supplier",
            "supplier_email",
            "vehicle",
            "title",
            "description",
            "priority",
            "odometer",
            "location",
        )
        values = {name: (data.get(name) or "") for name in names}
        values["priority"] = values["priority"] or "normal"
        return cls(**values)


def create_request(contact: Contact, form: RequestForm) -> ServiceRequest:
    """Validate, resolve the supplier, store the request, its event and its notification."""
    if not contact.company.is_fleet:
        raise RequestError("Only fleet companies send service requests.", 403)
    values = _validated(form)
    supplier, typed_address = _resolve_supplier(contact, form)
    if form.errors:
        raise RequestError("Check the highlighted fields.", 422)
    if supplier is None:  # only now that nothing else is wrong may a supplier emerge
        supplier = _new_supplier(contact, typed_address)

    request = ServiceRequest(
        fleet_company_id=contact.company_id,
        submitted_by_contact_id=contact.contact_id,
        supplier_company_id=supplier.company_id,
        status="new",
        **values,
    )
    db.session.add(request)
    db.session.flush()
    db.session.refresh(request)
    route = routing.for_new_request(request, typed_address)
    request.supplier_email = route.address if route else None
    facts = routing.notify(
        route,
        request,
        kind="request_new",
        subject=f"New service request from {contact.company.name}: {request.title}",
        fleet=contact.company,
        submitter=contact,
    )
    EventLogService.record(
        "request.created",
        company_id=contact.company_id,
        contact_id=contact.contact_id,
        request_id=request.request_id,
        supplier_company_id=str(supplier.company_id),
        **facts,
    )
    db.session.commit()
    return request


def _validated(form: RequestForm) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, limit in LIMITS.items():
        value = getattr(form, name).strip()
        if len(value) > limit:
            form.errors[name] = f"Keep this under {limit} characters (it has {len(value)})."
        values[name] = value or None
    if not values["vehicle"]:
        form.errors["vehicle"] = "Say which vehicle: unit number, plate or VIN."
    if not values["title"]:
        form.errors["title"] = "Give the request a short title."
    if form.priority not in PRIORITIES:
        form.errors["priority"] = "Choose low, normal, high or urgent."
    values["priority"] = form.priority
    values["odometer"] = _odometer(form)
    return values


def _odometer(form: RequestForm) -> int | None:
    raw = form.odometer.strip().replace(",", "").replace(" ", "")
    if not raw:
        return None
    if not raw.isdigit() or int(raw) > ODOMETER_MAX:
        form.errors["odometer"] = "Enter the odometer as a whole number, like 182400."
        return None
    return int(raw)


def _resolve_supplier(contact: Contact, form: RequestForm) -> tuple[Company | None, str | None]:
    """The supplier and the address typed, if any; (None, address) for a supplier yet to emerge."""
    if form.supplier.strip():
        return _picked_supplier(contact, form), None
    if form.supplier_email.strip():
        return _supplier_for_address(form)
    form.errors["supplier"] = "Choose a supplier, or enter the supplier's e-mail address."
    return None, None


def _picked_supplier(contact: Contact, form: RequestForm) -> Company | None:
    try:
        wanted = uuid.UUID(form.supplier.strip())
    except ValueError:
        wanted = None
    for supplier in suppliers_worked_with(contact.company_id):
        if supplier.company_id == wanted:
            return supplier
    # Not in this fleet's list: whatever it is, it is not this fleet's to pick.
    form.errors["supplier"] = "Choose a supplier from the list, or enter an e-mail address."
    return None


def _supplier_for_address(form: RequestForm) -> tuple[Company | None, str | None]:
    """Resolve like the v1 migration: a contact's company, else a registered supplier domain."""
    try:
        address = ContactService.canonicalise(form.supplier_email)
    except InvalidContact as exc:
        form.errors["supplier_email"] = str(exc)
        return None, None
    if address.contact_type != "email":
        form.errors["supplier_email"] = "Enter the supplier's e-mail address."
        return None, None
    known = ContactService.find(address.value)
    company = (
        known.company
        if known
        else CompanyService.for_domain(address.value, company_type="supplier")
    )
    if company is not None and not company.is_supplier:
        form.errors["supplier_email"] = "That address belongs to a company that is not a supplier."
    return company, address.value


def _new_supplier(contact: Contact, address: str) -> Company:
    """A supplier company for this one address: never grouped by (public) domain."""
    company = Company(name=address, company_type="supplier")
    db.session.add(company)
    db.session.flush()
    EventLogService.record(
        "company.created",
        company_id=company.company_id,
        contact_id=contact.contact_id,
        via="request",
        address=address,
        introduced_by=str(contact.contact_id),
    )
    return company


# ---------------------------------------------------------------------------
# The lifecycle
# ---------------------------------------------------------------------------


def transition(
    contact: Contact,
    request_id: uuid.UUID,
    to: str,
    *,
    reason: str = "",
    seen_status: str | None = None,
) -> ServiceRequest:
    """Move a request from the status its viewer saw to ``to``; only its supplier may."""
    request = visible_request(contact, request_id)
    if not is_supplier_of(contact, request):
        raise RequestError("Only the supplier moves a request through its lifecycle.", 403)
    if to not in ACTION_LABELS:
        raise RequestError(f"{to or 'That'} is not a step a request can take.", 422, "to")
    seen = seen_status or request.status
    if not request.can_move_from(seen, to):
        raise RequestError(_impossible(seen, to), 409)
    reason = " ".join(reason.split())
    if to == "declined" and not reason:
        raise RequestError("Say why you decline, so the fleet can act on it.", 422, "reason")
    if len(reason) > REASON_MAX:
        raise RequestError(f"Keep the reason under {REASON_MAX} characters.", 422, "reason")

    # Conditional on what the person saw: of two people acting at once, one wins.
    moved = db.session.execute(
        update(ServiceRequest)
        .where(ServiceRequest.request_id == request.request_id, ServiceRequest.status == seen)
        .values(status=to, updated_at=func.now())
        .returning(ServiceRequest.request_id)
    ).scalar()
    if moved is None:
        db.session.rollback()
        raise RequestError(already_moved(contact, request_id), 409)
    db.session.refresh(request)
    facts = _tell_other_side(
        request,
        contact,
        subject=f"{STATUS_VERBS[to]} by {contact.company.name}",
        headline=f"{contact.label} {STATUS_VERBS[to]} this request",
        reason=reason,
    )
    EventLogService.record(
        f"request.{to}",
        company_id=contact.company_id,
        contact_id=contact.contact_id,
        request_id=request.request_id,
        **{"from": seen, "to": to},
        **({"reason": reason} if reason else {}),
        **facts,
    )
    db.session.commit()
    return request


def _tell_other_side(
    request: ServiceRequest, actor: Contact, *, subject: str, headline: str, reason: str
) -> dict[str, Any]:
    """Mail news of ``request`` to the other side; return the route for the event."""
    return routing.notify(
        routing.for_news(request, actor),
        request,
        kind="request_update",
        subject=f"{request.title}: {subject}",
        actor=actor,
        headline=headline,
        reason=reason,
    )


def _impossible(seen: str, to: str) -> str:
    if seen in ("completed", "declined"):
        return f"This request is {seen}; it cannot be {STATUS_VERBS[to]} any more."
    return f"A request that is {seen.replace('_', ' ')} cannot be {STATUS_VERBS[to]}."


def already_moved(contact: Contact, request_id: uuid.UUID) -> str:
    """Explain who moved the request first (the loser of a race reads this)."""
    request = visible_request(contact, request_id)
    last = db.session.scalar(
        select(EventLog)
        .where(
            EventLog.target_request_id == request.request_id,
            EventLog.event_type == f"request.{request.status}",
        )
        .order_by(EventLog.created_at.desc())
        .limit(1)
    )
    verb = STATUS_VERBS.get(request.status, request.status.replace("_", " "))
    who = f" by {last.contact.label}" if last is not None and last.contact is not None else ""
    return (
        f"This request was already {verb}{who}. Nothing was changed; here is where it stands now."
    )


def assign(contact: Contact, request_id: uuid.UUID, assignee_id: str) -> ServiceRequest:
    """Assign the request to a contact of the supplier (the actor or a colleague)."""
    request = visible_request(contact, request_id)
    if not is_supplier_of(contact, request):
        raise RequestError("Only the supplier assigns its requests.", 403)
    if request.is_final:
        raise RequestError(
            f"This request is {request.status}; there is nothing left to assign.", 409
        )
    assignee = _colleague(contact, assignee_id)
    request.assigned_to_contact_id = assignee.contact_id
    request.updated_at = func.now()
    facts = {}
    if assignee.contact_id != contact.contact_id:
        facts = routing.notify(
            routing.Route(assignee.contact_value, "assigned to them", assignee.contact_id),
            request,
            kind="request_update",
            subject=f"{request.title}: assigned to you",
            actor=contact,
            headline=f"{contact.label} assigned this request to you",
            reason="",
        )
    EventLogService.record(
        "request.assigned",
        company_id=contact.company_id,
        contact_id=contact.contact_id,
        request_id=request.request_id,
        assignee_id=str(assignee.contact_id),
        assignee=assignee.label,
        **facts,
    )
    db.session.commit()
    return request


def _colleague(contact: Contact, assignee_id: str) -> Contact:
    try:
        wanted = uuid.UUID(str(assignee_id).strip())
    except ValueError:
        wanted = None
    assignee = db.session.scalar(
        select(Contact).where(
            Contact.contact_id == wanted, Contact.company_id == contact.company_id
        )
    )
    if assignee is None:
        raise RequestError("Choose someone from your own company.", 422, "contact_id")
    return assignee


def colleagues(contact: Contact) -> list[Contact]:
    return list(
        db.session.scalars(
            select(Contact)
            .where(Contact.company_id == contact.company_id)
            .order_by(Contact.display_name.nulls_last(), Contact.contact_value)
        )
    )


def add_note(contact: Contact, request_id: uuid.UUID, body: str) -> EventLog:
    """Add a note to the request's thread (either side), and tell the other side."""
    request = visible_request(contact, request_id)
    body = body.strip()
    if not body:
        raise RequestError("Write something first.", 422, "body")
    if len(body) > NOTE_MAX:
        raise RequestError(
            f"Keep a note under {NOTE_MAX} characters (it has {len(body)}).", 422, "body"
        )
    facts = _tell_other_side(
        request,
        contact,
        subject=f"a note from {contact.company.name}",
        headline=f"{contact.label} added a note",
        reason=body,
    )
    event = EventLogService.record(
        "request.note",
        company_id=contact.company_id,
        contact_id=contact.contact_id,
        request_id=request.request_id,
        body=body,
        **facts,
    )
    db.session.commit()
    return event


def record_view(contact: Contact, request: ServiceRequest) -> None:
    """The supplier's first look is a read receipt for the fleet; later looks add nothing."""
    if not is_supplier_of(contact, request):
        return
    # Two colleagues opening it at once must not both be "first".
    db.session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
        {"key": f"viewed:{request.request_id}"},
    )
    seen = db.session.scalar(
        select(func.count())
        .select_from(EventLog)
        .where(
            EventLog.target_request_id == request.request_id,
            EventLog.event_type == "request.viewed",
        )
    )
    if not seen:
        EventLogService.record(
            "request.viewed",
            company_id=contact.company_id,
            contact_id=contact.contact_id,
            request_id=request.request_id,
        )
    db.session.commit()


def timeline(request: ServiceRequest) -> list[EventLog]:
    return list(
        db.session.scalars(
            select(EventLog)
            .where(EventLog.target_request_id == request.request_id)
            .order_by(EventLog.created_at, EventLog.event_id)
        )
    )


def available_actions(contact: Contact, request: ServiceRequest) -> list[tuple[str, str]]:
    """The (status, label) steps this contact may take now."""
    if not is_supplier_of(contact, request):
        return []
    return [(to, ACTION_LABELS[to]) for to in ACTION_LABELS if request.can_move_to(to)]
