"""The short refs SMS about a request carry ("Ref 4821"), and the numbers that texted STOP.

A ref is per number: ``4821`` from +447700900123 names one request of theirs,
and nothing of anyone else's.
"""

from __future__ import annotations

import secrets
import uuid

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert

from ..contacts import is_phone_number
from ..extensions import db
from ..lifecycle import OPEN_STATUSES
from ..models import ServiceRequest, SmsOptOut, SmsRequestRef

# Four digits while a number has few refs; a number with thousands of them gets longer ones.
REF_DIGITS = (4, 5, 6, 8)


def ref_for(address: str, request_id: uuid.UUID) -> str:
    """The ref of ``request_id`` for ``address``, made on first use."""
    existing = db.session.scalar(
        select(SmsRequestRef.ref).where(
            SmsRequestRef.address == address, SmsRequestRef.request_id == request_id
        )
    )
    if existing is not None:
        return existing
    for digits in REF_DIGITS:
        for _ in range(5):
            ref = str(10 ** (digits - 1) + secrets.randbelow(9 * 10 ** (digits - 1)))
            made = db.session.scalar(
                insert(SmsRequestRef)
                .values(address=address, request_id=request_id, ref=ref)
                .on_conflict_do_nothing()
                .returning(SmsRequestRef.ref)
            )
            if made is not None:
                return str(made)
            # Taken (by another request of this number), or this request's ref was just
            # made by a concurrent message: look again before trying another.
            existing = db.session.scalar(
                select(SmsRequestRef.ref).where(
                    SmsRequestRef.address == address, SmsRequestRef.request_id == request_id
                )
            )
            if existing is not None:
                return existing
    raise RuntimeError(f"no free ref for {address}")


def request_for_ref(address: str, ref: str) -> uuid.UUID | None:
    return db.session.scalar(
        select(SmsRequestRef.request_id).where(
            SmsRequestRef.address == address, SmsRequestRef.ref == ref
        )
    )


def open_requests_texted_to(address: str) -> list[tuple[str, ServiceRequest]]:
    """The open requests ``address`` was texted about, with their refs, oldest first."""
    rows = db.session.execute(
        select(SmsRequestRef.ref, ServiceRequest)
        .join(ServiceRequest, ServiceRequest.request_id == SmsRequestRef.request_id)
        .where(SmsRequestRef.address == address, ServiceRequest.status.in_(OPEN_STATUSES))
        .order_by(SmsRequestRef.created_at, SmsRequestRef.ref)
    ).all()
    return [(ref, service_request) for ref, service_request in rows]


def was_ever_texted_about_a_request(address: str) -> bool:
    return (
        db.session.scalar(
            select(SmsRequestRef.ref).where(SmsRequestRef.address == address).limit(1)
        )
        is not None
    )


def was_texted_about(address: str, request_id: uuid.UUID) -> bool:
    return db.session.get(SmsRequestRef, {"address": address, "request_id": request_id}) is not None


# The one SMS a number that just texted STOP is still sent: that it worked (carriers ask for it).
SENT_AFTER_STOP = frozenset({"sms_stopped"})


def texting_refused(recipient: str, kind: str) -> bool:
    """Whether the worker must not send this message: an SMS to a number that texted STOP."""
    return is_phone_number(recipient) and kind not in SENT_AFTER_STOP and opted_out(recipient)


def opted_out(address: str) -> bool:
    return db.session.get(SmsOptOut, address) is not None


def opt_out(address: str) -> bool:
    """Send ``address`` no more SMS; False if it had opted out already."""
    made = db.session.scalar(
        insert(SmsOptOut)
        .values(address=address)
        .on_conflict_do_nothing()
        .returning(SmsOptOut.address)
    )
    return made is not None


def opt_in(address: str) -> bool:
    """Text ``address`` again; False if it had not opted out."""
    removed = db.session.execute(
        delete(SmsOptOut).where(SmsOptOut.address == address).returning(SmsOptOut.address)
    ).first()
    return removed is not None
