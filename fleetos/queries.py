"""Reading the work: what a contact may see, and the lists pages and messages show.

Every query here starts from a company: a request is visible to the contacts
of its fleet and of its supplier, and to nobody else ("not found", never
"forbidden", so an outsider learns nothing). Queries never write.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import ColumnElement, or_, select

from .domain_errors import NotFound
from .extensions import db
from .lifecycle import OFF_THE_TIMELINE, STATUSES, STEPS
from .models import (
    Attachment,
    Company,
    Contact,
    EventLog,
    Invitation,
    RequestStatusCount,
    ServiceRequest,
)


def owned_by(company_id: uuid.UUID) -> ColumnElement[bool]:
    """The SQL condition "this company owns the request", as fleet or as supplier."""
    return or_(
        ServiceRequest.fleet_company_id == company_id,
        ServiceRequest.supplier_company_id == company_id,
    )


def visible_request(
    contact: Contact, request_id: uuid.UUID, *, lock: bool = False
) -> ServiceRequest:
    """The request, if ``contact``'s company owns it; else NotFound."""
    query = select(ServiceRequest).where(
        ServiceRequest.request_id == request_id, owned_by(contact.company_id)
    )
    if lock:
        query = query.with_for_update()
    found = db.session.scalar(query)
    if found is None:
        raise NotFound()
    return found


def visible_attachment(
    contact: Contact, request_id: uuid.UUID, attachment_id: uuid.UUID
) -> Attachment:
    """The attachment, if it is on ``request_id`` and ``contact``'s company owns that; else
    NotFound (the same as for a request that does not exist)."""
    found = db.session.scalar(
        select(Attachment)
        .join(ServiceRequest, ServiceRequest.request_id == Attachment.request_id)
        .where(
            Attachment.attachment_id == attachment_id,
            Attachment.request_id == request_id,
            owned_by(contact.company_id),
        )
    )
    if found is None:
        raise NotFound()
    return found


def attachments_of(service_request: ServiceRequest) -> list[Attachment]:
    """The request's photos and documents, oldest first (the caller may see the request)."""
    return list(
        db.session.scalars(
            select(Attachment)
            .where(Attachment.request_id == service_request.request_id)
            .order_by(Attachment.created_at, Attachment.attachment_id)
        )
    )


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


def colleagues(contact: Contact) -> list[Contact]:
    """The contacts of ``contact``'s company, by name."""
    return list(
        db.session.scalars(
            select(Contact)
            .where(Contact.company_id == contact.company_id)
            .order_by(Contact.display_name.nulls_last(), Contact.contact_value)
        )
    )


def colleague(contact: Contact, contact_id: uuid.UUID | None) -> Contact | None:
    """The contact ``contact_id`` if it is in ``contact``'s company."""
    if contact_id is None:
        return None
    return db.session.scalar(
        select(Contact).where(
            Contact.contact_id == contact_id, Contact.company_id == contact.company_id
        )
    )


def timeline(service_request: ServiceRequest) -> list[EventLog]:
    """The request's events, oldest first (who opened which file is in the log, not here)."""
    return list(
        db.session.scalars(
            select(EventLog)
            .where(
                EventLog.target_request_id == service_request.request_id,
                EventLog.event_type.not_in(OFF_THE_TIMELINE),
            )
            .order_by(EventLog.created_at, EventLog.event_id)
        )
    )


def has_event(service_request: ServiceRequest, event_type: str) -> bool:
    return (
        db.session.scalar(
            select(EventLog.event_id)
            .where(
                EventLog.target_request_id == service_request.request_id,
                EventLog.event_type == event_type,
            )
            .limit(1)
        )
        is not None
    )


def last_step_event(service_request: ServiceRequest) -> EventLog | None:
    """The latest lifecycle step recorded on the request (who moved it last, and when)."""
    return db.session.scalar(
        select(EventLog)
        .where(
            EventLog.target_request_id == service_request.request_id,
            EventLog.event_type.in_([step.event_type for step in STEPS.values()]),
        )
        .order_by(EventLog.created_at.desc(), EventLog.event_id.desc())
        .limit(1)
    )


def side_of(company: Company) -> str:
    return "supplier" if company.is_supplier else "fleet"


def status_counts(company: Company) -> dict[str, int]:
    """Requests per status on the company's side, read from the trigger-kept table (five
    rows of its primary key, however much work the company has)."""
    rows = db.session.execute(
        select(RequestStatusCount.status, RequestStatusCount.n).where(
            RequestStatusCount.company_id == company.company_id,
            RequestStatusCount.side == side_of(company),
        )
    )
    found = {status: n for status, n in rows}
    return {status: found.get(status, 0) for status in STATUSES}


def status_counts_for(
    company_ids: Iterable[uuid.UUID], side: str
) -> dict[uuid.UUID, dict[str, int]]:
    """Requests per status for each of ``company_ids`` on ``side`` (every status, zeros too)."""
    ids = list(company_ids)
    counts = {company_id: dict.fromkeys(STATUSES, 0) for company_id in ids}
    if not ids:
        return counts
    rows = db.session.execute(
        select(
            RequestStatusCount.company_id, RequestStatusCount.status, RequestStatusCount.n
        ).where(RequestStatusCount.company_id.in_(ids), RequestStatusCount.side == side)
    )
    for company_id, status, n in rows:
        if status in counts[company_id]:
            counts[company_id][status] = n
    return counts


def company_contacts(company: Company) -> list[Contact]:
    """The company's contacts, most recently seen first."""
    return list(
        db.session.scalars(
            select(Contact)
            .where(Contact.company_id == company.company_id)
            .order_by(Contact.last_seen_at.desc().nulls_last(), Contact.contact_value)
        )
    )


def activity(company: Company, limit: int = 50) -> list[EventLog]:
    """The company's latest events: what its contacts did, and what happened to its requests."""
    owner = (
        ServiceRequest.supplier_company_id
        if company.is_supplier
        else ServiceRequest.fleet_company_id
    )
    ours = select(ServiceRequest.request_id).where(owner == company.company_id)
    return list(
        db.session.scalars(
            select(EventLog)
            .where(
                or_(EventLog.company_id == company.company_id, EventLog.target_request_id.in_(ours))
            )
            .order_by(EventLog.created_at.desc(), EventLog.event_id.desc())
            .limit(limit)
        )
    )


def open_invitations(company: Company) -> list[Invitation]:
    """The company's invitations nobody has used or withdrawn yet, newest first."""
    return list(
        db.session.scalars(
            select(Invitation)
            .where(
                Invitation.company_id == company.company_id,
                Invitation.accepted_at.is_(None),
                Invitation.revoked_at.is_(None),
            )
            .order_by(Invitation.created_at.desc())
            .limit(100)
        )
    )
