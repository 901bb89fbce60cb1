"""What the delivery worker sends to an address, decided when it sends, not when asked.

A form anyone can fill in (sign in, start a company) or a signed-in person
can point at any address (invite a colleague, send a request to an address)
must not tell whether that address uses FleetOS: not by its answer, and not
by the work it does. So those web requests queue one row of the same shape
whatever the address (``outbox.queue_for_worker``), and the composers here,
run by the worker, look the address up and decide:

* sign in: a sign-in link if the address belongs to a company, else how to
  start one;
* start a company: a sign-up link, or a sign-in link if the address is
  already a contact (an address never founds a second company);
* an invitation: the link, or, to an address that is another company's
  contact, a note saying so to its owner (nothing if it joined meanwhile);
* a request sent to an address: the request with its link, or, to an address
  whose contact is in another company (a fleet: it cannot take requests), a
  note to its owner saying who sent what, so they can answer the sender
  directly. The fleet sees its request as sent and not yet answered, exactly
  as for any address that has not answered.

Each owner learns about their own address only.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from ..companies import CompanyService
from ..contacts import ContactService, is_phone_number
from ..extensions import db
from ..models import Company, Contact, OutboxMessage, ServiceRequest
from ..outbox import Composed, ReplyAs, compose, composes
from .credentials import code_for
from .links import Purpose, external_url, link_url, make_token, site_path

log = logging.getLogger(__name__)


def _context(message: OutboxMessage) -> dict[str, Any]:
    return dict(message.context or {})


@composes("sign_in")
def sign_in_or_how_to_start(message: OutboxMessage) -> Composed | None:
    address = message.recipient
    company = CompanyService.for_address(address)
    if company is None and is_phone_number(address):
        # Texting strangers costs money per message (SMS pumping): a number no
        # company knows is sent nothing. The page said the same either way.
        return None
    if company is None:
        return compose(
            "unknown_address", "Signing in to FleetOS", signup_url=external_url("auth.signup")
        )
    return sign_in_mail(address, company, _context(message).get("next_path"))


def sign_in_mail(address: str, company: Company, next_path: str | None) -> Composed:
    token = make_token(Purpose.SIGN_IN, address, company_id=company.company_id, next_path=next_path)
    return compose(
        "sign_in",
        "Your FleetOS sign-in link",
        link=link_url(token),
        company=company,
        minutes=Purpose.SIGN_IN.max_age // 60,
        **code_context(token),
    )


@composes("sign_up")
def sign_up_or_sign_in(message: OutboxMessage) -> Composed | None:
    address = message.recipient
    contact = ContactService.find(address)
    if contact is not None:
        return sign_in_mail(contact.contact_value, contact.company, None)
    if is_phone_number(address) and _sign_up_texts_spent():
        log.warning("sign-up SMS withheld: SMS_SIGN_UPS_PER_DAY reached")
        return None
    signup = _context(message)
    token = make_token(
        Purpose.SIGN_UP,
        address,
        next_path=signup.get("next_path"),
        company_name=signup.get("company_name", ""),
        company_type=signup.get("company_type", ""),
        display_name=signup.get("display_name", ""),
    )
    return compose(
        "sign_up",
        f"Confirm {signup.get('company_name', '')} on FleetOS",
        link=link_url(token),
        company_name=signup.get("company_name", ""),
        minutes=Purpose.SIGN_UP.max_age // 60,
        **code_context(token),
    )


def _sign_up_texts_spent() -> bool:
    """Whether SMS_SIGN_UPS_PER_DAY sign-up texts went out in the last 24 hours.

    A sign-up goes to a number nobody vouches for, with a text anyone can cause:
    the classic SMS-pumping fraud (numbers that pay their owner per text received).
    The per-IP and per-address limits cannot bound it (new numbers, many IPs);
    this does, for all companies together. Over it, the sign-up is withheld, and
    the page that asked said what it says to everyone.
    """
    budget = int(current_app.config["SMS_SIGN_UPS_PER_DAY"])
    if budget <= 0:
        return False
    sent = db.session.scalar(
        select(func.count())
        .select_from(OutboxMessage)
        .where(
            OutboxMessage.kind == "sign_up",
            OutboxMessage.status == "sent",
            OutboxMessage.recipient.startswith("+"),
            OutboxMessage.sent_at > func.now() - timedelta(hours=24),
        )
    )
    return (sent or 0) >= budget


def invite_subject(company: Company, inviter: Contact | None) -> str:
    if inviter is not None:
        return f"{inviter.label} invited you to {company.label} on FleetOS"
    return f"Your invitation to {company.label} on FleetOS"


@composes("invite")
def invitation_or_note(message: OutboxMessage) -> Composed | None:
    address = message.recipient
    invite = _context(message)
    company = CompanyService.get(invite.get("company_id"))
    if company is None:
        return None  # the company is gone: nothing to join
    inviter = _contact(invite.get("inviter_id"))
    contact = ContactService.find(address)
    if contact is not None and contact.company_id == company.company_id:
        return None  # joined meanwhile: nothing to say
    if contact is not None:
        return compose(
            "invite_elsewhere",
            invite_subject(company, inviter),
            company=company,
            inviter=inviter,
            own_company=contact.company,
        )
    token = make_token(
        Purpose.INVITE,
        address,
        company_id=company.company_id,
        next_path=invite.get("next_path"),
        invited_by=invite.get("inviter_id"),
        display_name=invite.get("display_name", ""),
        **({"invitation": invite["invitation"]} if invite.get("invitation") else {}),
    )
    return compose(
        "invite",
        invite_subject(company, inviter),
        link=link_url(token),
        inviter=inviter,
        company=company,
        days=Purpose.INVITE.max_age // 86400,
        **code_context(token),
    )


@composes("request_new")
def request_or_note(message: OutboxMessage) -> Composed | None:
    """A new request, to the address the fleet typed."""
    address = message.recipient
    service_request = _request(_context(message).get("request_id"))
    if service_request is None or service_request.fleet_company is None:
        return None
    fleet = service_request.fleet_company
    submitter = service_request.submitted_by
    subject = f"New service request from {fleet.label}: {service_request.title}"
    contact = ContactService.find(address)
    if contact is not None and contact.company_id != service_request.supplier_company_id:
        return compose(
            "request_elsewhere",
            subject,
            service_request=service_request,
            fleet=fleet,
            submitter=submitter,
            own_company=contact.company,
        )
    token = make_token(
        Purpose.NOTIFICATION,
        address,
        company_id=service_request.supplier_company_id,
        next_path=site_path("requests.show", request_id=service_request.request_id),
    )
    # A reply to it acts on the request, for the supplier the request resolved to.
    reply_as = (
        ReplyAs(service_request.request_id, service_request.supplier_company_id)
        if service_request.supplier_company_id
        else None
    )
    return compose(
        "request_new",
        subject,
        reply_as=reply_as,
        service_request=service_request,
        link=link_url(token),
        fleet=fleet,
        submitter=submitter,
        attached=str(_context(message).get("attached") or ""),
    )


def code_context(token: str) -> dict[str, Any]:
    """The one-time code that goes beside ``token``'s link, and where to type it."""
    return {"code": code_for(token), "code_page": external_url("auth.code")}


def _contact(contact_id: object) -> Contact | None:
    try:
        return db.session.get(Contact, uuid.UUID(str(contact_id)))
    except ValueError:
        return None


def _request(request_id: object) -> ServiceRequest | None:
    try:
        return db.session.get(ServiceRequest, uuid.UUID(str(request_id)))
    except ValueError:
        return None
