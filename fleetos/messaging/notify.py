"""Who hears about a request, and why, and the message that tells them.

A new request goes to the address the fleet typed, else the supplier's last
active contact, else the address the supplier was first reached at. Later
news goes to the other side: the fleet's submitting contact; the supplier's
assignee, else its last active contact, else the address the request was
sent to. Every event records the route it took.

Which channel carries the message (mail today; SMS later) is decided here,
once, for every action that tells someone.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from ..contacts import ContactService
from ..extensions import db
from ..models import Contact, HeldReply, ServiceRequest
from ..outbox import ReplyAs, queue_for_worker, queue_mail
from .links import Purpose, external_url, link_url, make_token, site_path


@dataclass(frozen=True)
class Route:
    address: str
    reason: str
    contact_id: uuid.UUID | None = None

    def as_metadata(self) -> dict[str, Any]:
        return {
            "routed_to": self.address,
            "routed_contact_id": str(self.contact_id) if self.contact_id else None,
            "route_reason": self.reason,
        }


NO_ROUTE = {"routed_to": None, "routed_contact_id": None, "route_reason": "no address known"}


def for_new_request(service_request: ServiceRequest, typed_address: str | None) -> Route | None:
    if typed_address:
        # Whose address it is, the worker finds out when it sends (decisions.py).
        return Route(typed_address, "the address the fleet typed")
    return _to_supplier(service_request, first_contact=True)


def for_news(service_request: ServiceRequest, actor: Contact) -> Route | None:
    """Route news of ``service_request`` caused by ``actor`` to the other side."""
    if actor.company_id == service_request.supplier_company_id:
        return _to_fleet(service_request)
    return _to_supplier(service_request, first_contact=False)


def _to_fleet(service_request: ServiceRequest) -> Route | None:
    if service_request.submitted_by is not None:
        return Route(
            service_request.submitted_by.contact_value,
            "submitting contact",
            service_request.submitted_by.contact_id,
        )
    return _last_active(
        service_request.fleet_company_id, "last active contact: no submitting contact"
    )


def _to_supplier(service_request: ServiceRequest, *, first_contact: bool) -> Route | None:
    if not first_contact and service_request.assigned_to is not None:
        return Route(
            service_request.assigned_to.contact_value,
            "assigned contact",
            service_request.assigned_to.contact_id,
        )
    reason = "last active contact" if first_contact else "last active contact: no assignee"
    route = _last_active(service_request.supplier_company_id, reason)
    if route is not None:
        return route
    if first_contact:
        first = first_reached_address(service_request.supplier_company_id)
        return Route(first, "the address the supplier was first reached at") if first else None
    if service_request.supplier_email:
        return Route(
            service_request.supplier_email,
            "the address the request was sent to: no contact yet",
        )
    return None


def _last_active(company_id: uuid.UUID | None, reason: str) -> Route | None:
    contact = ContactService.last_active(company_id) if company_id else None
    return Route(contact.contact_value, reason, contact.contact_id) if contact else None


def first_reached_address(company_id: uuid.UUID | None) -> str | None:
    if company_id is None:
        return None
    return db.session.scalar(
        select(ServiceRequest.supplier_email)
        .where(
            ServiceRequest.supplier_company_id == company_id,
            ServiceRequest.supplier_email.is_not(None),
        )
        .order_by(ServiceRequest.created_at, ServiceRequest.request_id)
        .limit(1)
    )


def notify(
    route: Route | None,
    service_request: ServiceRequest,
    *,
    kind: str,
    subject: str,
    in_reply_to: str | None = None,
    **context: Any,
) -> dict[str, Any]:
    """Queue ``kind`` mail along ``route``; return the routing facts for the event."""
    if route is None:
        return dict(NO_ROUTE)
    company_id = _recipient_company(route, service_request)
    token = make_token(
        Purpose.NOTIFICATION,
        route.address,
        company_id=company_id,
        next_path=site_path("requests.show", request_id=service_request.request_id),
    )
    # A reply to it acts on the request, as the company the recipient acts for.
    reply_as = ReplyAs(service_request.request_id, company_id, in_reply_to) if company_id else None
    queue_mail(
        kind,
        route.address,
        subject,
        reply_as=reply_as,
        service_request=service_request,
        link=link_url(token),
        **context,
    )
    return route.as_metadata()


def decided_at_delivery(
    route: Route | None, service_request: ServiceRequest, *, kind: str, attached: str = ""
) -> dict[str, Any]:
    """Queue ``kind`` along ``route`` for the worker to compose (``messaging/decisions.py``)."""
    if route is None:
        return dict(NO_ROUTE)
    queue_for_worker(
        kind, route.address, request_id=str(service_request.request_id), attached=attached
    )
    return route.as_metadata()


def _recipient_company(route: Route, service_request: ServiceRequest) -> uuid.UUID | None:
    """The company the recipient signs in to.

    A route to a known contact names it; every other route is a supplier
    address with no contact yet, which emerges in the supplier company.
    """
    if route.contact_id is not None:
        contact = db.session.get(Contact, route.contact_id)
        return contact.company_id if contact else None
    return service_request.supplier_company_id


# -- answers to replies (fleetos/actions/replies.py) -----------------------------------------


def answer_reply(
    contact: Contact,
    service_request: ServiceRequest,
    said: str,
    *,
    done: bool,
    in_reply_to: str | None = None,
) -> dict[str, Any]:
    """Tell ``contact`` what their reply did, or why it did nothing (never silence).

    The answer is itself mail about the request: a reply to it acts again. With
    ``in_reply_to`` (the reply's Message-ID), it goes into the reply's thread.
    """
    outcome = "done" if done else "not done"
    return notify(
        Route(contact.contact_value, "the reply's sender", contact.contact_id),
        service_request,
        in_reply_to=in_reply_to,
        kind="reply_answer",
        subject=f"{service_request.title}: {outcome}",
        said=said,
        done=done,
    )


def ask_about_held_reply(
    address: str,
    company_id: uuid.UUID,
    service_request: ServiceRequest,
    held: HeldReply,
    *,
    review: str,
) -> None:
    """Ask ``address`` (whom a reply address was sent to) whether a reply from someone
    else is their note; ``review`` is the token of the page that decides it."""
    queue_mail(
        "reply_held",
        address,
        f"{service_request.title}: a reply from {held.sender} is waiting for you",
        reply_as=ReplyAs(service_request.request_id, company_id),
        service_request=service_request,
        held=held,
        review_link=external_url("replies.held", token=review),
    )
