"""Getting in: asking for links, using them once, and contacts (and companies) emerging.

Every sign-in rides on a message FleetOS sends. Asking for a link stores
nothing but that message; using a link consumes it (once, even under a race),
lets its contact emerge in the right company, and records it all. Each
function is one unit of work; refusals are domain errors (``Invalid``) or
``LinkError`` (a link that cannot be used, and why).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any

from flask import current_app
from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert

from .. import abuse
from ..companies import CompanyService
from ..contacts import ContactAddress, ContactService, InvalidContact, ensure_reachable
from ..domain_errors import Conflict, Invalid, NotFound
from ..events import EventLogService
from ..extensions import db
from ..messaging import credentials
from ..messaging.decisions import code_context, invite_subject
from ..messaging.links import (
    Link,
    LinkError,
    Purpose,
    link_url,
    make_token,
    read_token,
    safe_next,
    site_path,
)
from ..models import (
    COMPANY_TYPES,
    Company,
    Contact,
    Invitation,
    ServiceRequest,
    UsedLinkToken,
    WebSession,
)
from ..outbox import queue_for_worker, queue_mail
from ..text import clean_line
from ..unit_of_work import atomic

WEB = "web"


def contact_address(raw: str, *, field: str = "address") -> ContactAddress:
    """Canonicalise an address typed where a contact's address belongs (an e-mail address
    or a mobile number), or raise Invalid.

    FleetOS must be able to write to it (``ensure_reachable``: no landline, say).
    """
    try:
        address = ContactService.canonicalise(raw)
        ensure_reachable(address)
    except InvalidContact as exc:
        raise Invalid(field, str(exc)) from None
    return address


# ---------------------------------------------------------------------------
# Asking for links
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkSent:
    """A message is on its way to ``address``; what it says, the worker decides."""

    address: str  # canonical
    message: str  # what was asked for: "sign_in", "sign_up" or "invite"


@atomic
def ask_for_sign_in(raw_address: str, next_path: str | None = None) -> LinkSent:
    """Queue the answer to a sign-in: a link if the address belongs to a company, else how
    to start one (the worker decides, see ``messaging/decisions.py``).

    Nothing is looked up here: the page, and the work behind it, are the same
    for every address, so neither tells who uses FleetOS.
    """
    address = contact_address(raw_address)
    queue_for_worker("sign_in", address.value, next_path=next_path)
    return LinkSent(address.value, "sign_in")


@dataclass(frozen=True)
class SignUp:
    """A company to start and its first contact, as asked for (well-formed already)."""

    company_name: str
    company_type: str
    address: str  # e-mail address or mobile number
    display_name: str = ""


@atomic
def ask_for_sign_up(signup: SignUp) -> LinkSent:
    """Queue a sign-up link; nothing but the message is stored until it is used.

    An address that is already a contact gets a sign-in link instead (the
    worker decides): one address never founds a second company.
    """
    address = contact_address(signup.address).value
    signup = replace(
        signup,
        company_name=clean_line(signup.company_name, "company_name"),
        display_name=clean_line(signup.display_name, "display_name"),
    )
    if signup.company_type not in COMPANY_TYPES:
        raise Invalid("company_type", "Choose whether your company runs a fleet or services one.")
    ensure_name_is_free(signup.company_name)
    queue_for_worker(
        "sign_up",
        address,
        next_path=site_path("dashboard.index"),
        company_name=signup.company_name,
        company_type=signup.company_type,
        display_name=signup.display_name,
    )
    return LinkSent(address, "sign_up")


def ensure_name_is_free(name: str, *, field: str = "company_name") -> None:
    """Refuse the exact name of a company with a verified domain: no look-alike supplier.

    Such a company shows its domain beside its name everywhere, so it is known
    to everyone it works with; saying it exists tells nobody anything new.
    """
    taken = CompanyService.verified_name_taken(name)
    if taken is not None:
        raise Invalid(
            field,
            f"{taken.label} is already on FleetOS under that name. "
            "Use your company's own full name (add your town, say).",
        )


@atomic
def invite_colleague(
    inviter: Contact, raw_address: str, display_name: str = "", *, channel: str = WEB
) -> LinkSent:
    """Queue an invitation to join the inviter's company (the worker decides what it says).

    The inviter is told the same whether or not the address is another
    company's: that is its owner's to know, and the worker tells them.
    """
    address = contact_address(raw_address)
    existing = ContactService.find(address.value)
    if existing is not None and existing.company_id == inviter.company_id:
        # Colleagues are on the company page already: this tells the inviter nothing new.
        raise Invalid(
            "address", f"{address.value} is already a colleague at {inviter.company.name}."
        )
    name = clean_line(display_name, "display_name")[:120]
    abuse.write_to(inviter.company_id, address.value, company_name=inviter.company.name)
    # Stored whoever the address is: the company page lists what its people sent,
    # and a revoked invitation's link stops working.
    invitation = Invitation(
        company_id=inviter.company_id,
        address=address.value,
        display_name=name or None,
        invited_by_contact_id=inviter.contact_id,
    )
    db.session.add(invitation)
    db.session.flush()
    queue_for_worker(
        "invite",
        address.value,
        company_id=str(inviter.company_id),
        inviter_id=str(inviter.contact_id),
        display_name=name,
        next_path=site_path("dashboard.index"),
        invitation=str(invitation.invitation_id),
    )
    EventLogService.record(
        "contact.invited",
        company_id=inviter.company_id,
        contact_id=inviter.contact_id,
        invitee=address.value,
        channel=channel,
    )
    return LinkSent(address.value, "invite")


def _queue_invite(address: str, company: Company, token: str, *, inviter: Contact | None) -> None:
    queue_mail(
        "invite",
        address,
        invite_subject(company, inviter),
        link=link_url(token),
        inviter=inviter,
        company=company,
        days=Purpose.INVITE.max_age // 86400,
        **code_context(token),
    )


@atomic
def send_fresh_link(token: str) -> LinkSent:
    """Mail a new link like an expired or used one, to the same address."""
    link = _read_ignoring_expiry(token)
    if link.purpose is Purpose.SIGN_UP and ContactService.find(link.contact_value) is None:
        extra = {k: str(link.extra.get(k, "")) for k in ("company_name", "company_type")}
        return ask_for_sign_up(
            SignUp(
                extra["company_name"],
                extra["company_type"],
                link.contact_value,
                str(link.extra.get("display_name", "")),
            )
        )
    elif link.purpose is Purpose.INVITE and ContactService.find(link.contact_value) is None:
        ensure_invitation_stands(link)
        company = CompanyService.get(link.company_id)
        if company is None:
            raise LinkError("invalid")
        fresh = make_token(
            Purpose.INVITE,
            link.contact_value,
            company_id=link.company_id,
            next_path=link.next_path,
            **link.extra,
        )
        _queue_invite(link.contact_value, company, fresh, inviter=None)
        return LinkSent(link.contact_value, "invite")
    return ask_for_sign_in(link.contact_value, link.next_path)


def link_address(token: str) -> str | None:
    """The address a link (good, expired or used) was for; None for a token that is not ours."""
    try:
        return _read_ignoring_expiry(token).contact_value
    except LinkError:
        return None


def ensure_invitation_stands(link: Link) -> Invitation | None:
    """An invitation link works (and may be renewed) only while it is not revoked and its
    inviter is still a contact of that company; LinkError("revoked") otherwise.

    Returns the invitation (None for another kind of link, or one sent before
    invitations were stored, which only its inviter vouches for).
    """
    if link.purpose is not Purpose.INVITE:
        return None
    invitation = None
    if link.extra.get("invitation"):
        try:
            invitation = db.session.get(Invitation, uuid.UUID(str(link.extra["invitation"])))
        except ValueError:
            invitation = None
        if invitation is None or str(invitation.company_id) != link.company_id:
            raise LinkError("revoked")
        if invitation.revoked_at is not None:
            raise LinkError("revoked")
    if not _inviter_still_there(link):
        raise LinkError("revoked")
    return invitation


def _inviter_still_there(link: Link) -> bool:
    try:
        inviter = db.session.get(Contact, uuid.UUID(str(link.extra.get("invited_by"))))
    except ValueError:
        return False
    return inviter is not None and str(inviter.company_id) == link.company_id


@atomic
def revoke_invitation(
    contact: Contact, invitation_id: uuid.UUID, *, channel: str = WEB
) -> Invitation:
    """Withdraw an invitation of ``contact``'s company (and any other still open to that
    address): its link, and any fresh one asked for with it, stop working."""
    invitation = db.session.get(Invitation, invitation_id)
    if invitation is None or invitation.company_id != contact.company_id:
        raise NotFound("There is no such invitation.")
    if invitation.accepted_at is not None:
        raise Conflict(f"{invitation.address} has already joined; there is nothing to withdraw.")
    db.session.execute(
        update(Invitation)
        .where(
            Invitation.company_id == contact.company_id,
            Invitation.address == invitation.address,
            Invitation.revoked_at.is_(None),
            Invitation.accepted_at.is_(None),
        )
        .values(revoked_at=func.now(), revoked_by_contact_id=contact.contact_id)
        .execution_options(synchronize_session=False)
    )
    EventLogService.record(
        "invitation.revoked",
        company_id=contact.company_id,
        contact_id=contact.contact_id,
        invitee=invitation.address,
        invitation_id=str(invitation.invitation_id),
        channel=channel,
    )
    db.session.refresh(invitation)
    return invitation


def _read_ignoring_expiry(token: str) -> Link:
    """The link in a token whose signature is good, even if it expired (recently) or was used."""
    try:
        return read_token(token)
    except LinkError as exc:
        if exc.link is None:
            raise
        return exc.link


# ---------------------------------------------------------------------------
# Using links
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkPreview:
    """What the confirmation page shows; reading it changes nothing."""

    link: Link
    address: str
    company_name: str


def preview_link(token: str) -> LinkPreview:
    """What using ``token`` would do (LinkError if it cannot be used); changes nothing."""
    link = read_token(token)
    if db.session.get(UsedLinkToken, link.jti) is not None:
        raise LinkError("used", link)
    ensure_invitation_stands(link)
    return LinkPreview(link, link.contact_value, _company_name(link))


def _company_name(link: Link) -> str:
    contact = ContactService.find(link.contact_value)
    if contact is not None:
        return contact.company.name
    if link.purpose is Purpose.SIGN_UP:
        return str(link.extra.get("company_name", ""))
    company = CompanyService.get(link.company_id)
    if company is None:
        raise LinkError("invalid")
    return company.name


@dataclass(frozen=True)
class SignIn:
    contact: Contact
    next_path: str
    created: bool  # the contact emerged with this sign-in
    session_id: uuid.UUID  # the session it opened (the web keeps it in its cookie)


@atomic
def sign_in_with_link(
    token: str,
    *,
    client_ip: str | None = None,
    user_agent: str | None = None,
    replacing: uuid.UUID | None = None,
    channel: str = WEB,
) -> SignIn:
    """Use a link once: consume it, let the contact (and company) emerge, open a session,
    record it. The session ``replacing`` (this browser's previous one) ends."""
    link = read_token(token)
    invitation = ensure_invitation_stands(link)
    _consume(link)
    credentials.burn(link.jti)  # its code and short link die with it
    # One address at a time: two different links for one new address must
    # not both found a company.
    db.session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:a))"), {"a": link.contact_value}
    )
    contact, created = _emerge(link, channel)
    if invitation is not None and invitation.accepted_at is None:
        invitation.accepted_at = func.now()
    if created:
        EventLogService.record(
            "contact.created",
            company_id=contact.company_id,
            contact_id=contact.contact_id,
            via=link.purpose.value,
            channel=channel,
            **_introduction(link),
        )
    EventLogService.record(
        "contact.signed_in",
        company_id=contact.company_id,
        contact_id=contact.contact_id,
        via=link.purpose.value,
        ip=client_ip,
        channel=channel,
    )
    if replacing is not None:
        _end_sessions(WebSession.session_id == replacing)
    session = WebSession(
        contact_id=contact.contact_id,
        expires_at=func.now() + current_app.permanent_session_lifetime,
        user_agent=(user_agent or "")[:USER_AGENT_MAX] or None,
    )
    db.session.add(session)
    db.session.flush()
    return SignIn(contact, safe_next(link.next_path), created, session.session_id)


@atomic
def sign_in_with_code(
    raw_address: str,
    code: str,
    *,
    client_ip: str | None = None,
    user_agent: str | None = None,
    replacing: uuid.UUID | None = None,
    channel: str = WEB,
) -> SignIn | None:
    """Type the code a message carried beside its link: sign in on this device exactly as
    the link's button would (the contact emerging on first use), burning the link too.

    None when the code is wrong, dead (used, expired, 5 wrong tries) or there
    is no code for that address: never told apart. The wrong try is counted
    (and committed with this unit of work).
    """
    address = contact_address(raw_address)
    typed = "".join(code.split())
    if not (typed.isascii() and typed.isdigit() and len(typed) == credentials.CODE_DIGITS):
        raise Invalid("code", "Type the 6 digits of the code in the message.")
    found = credentials.check_code(address.value, typed)
    if found.token is None:
        return None
    return sign_in_with_link(
        found.token,
        client_ip=client_ip,
        user_agent=user_agent,
        replacing=replacing,
        channel=channel,
    )


def _consume(link: Link) -> None:
    """Record the link's id; a second use (even a concurrent one) finds it taken."""
    inserted = db.session.scalar(
        insert(UsedLinkToken)
        .values(jti=link.jti, purpose=link.purpose.value, contact_value=link.contact_value)
        .on_conflict_do_nothing()
        .returning(UsedLinkToken.jti)
    )
    if inserted is None:
        raise LinkError("used", link)


def _emerge(link: Link, channel: str) -> tuple[Contact, bool]:
    """The link's contact, emerging (in its company, founding it for a sign-up) if new."""
    existing = ContactService.find(link.contact_value)
    if existing is not None:
        # Whatever the link's purpose, a known contact just signs in, in its own company.
        contact, _ = ContactService.get_or_create(
            existing.contact_value, company_id=existing.company_id
        )
        return contact, False
    if link.purpose is Purpose.DAILY_ACCESS:
        raise LinkError("invalid")
    company: Company | None
    if link.purpose is Purpose.SIGN_UP:
        company_name = str(link.extra.get("company_name") or link.contact_value)
        ensure_name_is_free(company_name)  # taken since the link was asked for
        # No domain: a company proves its domain on its company page, never by signing up.
        company = CompanyService.create(
            name=company_name, company_type=str(link.extra.get("company_type") or "fleet")
        )
        EventLogService.record(
            "company.created",
            company_id=company.company_id,
            via="sign-up",
            founder=link.contact_value,
            channel=channel,
        )
    else:
        company = CompanyService.get(link.company_id)
        if company is None:
            raise LinkError("invalid")
    name = str(link.extra.get("display_name") or "") or None
    return ContactService.get_or_create(
        link.contact_value, company_id=company.company_id, display_name=name
    )


def emerge_on_reply(
    address: str,
    service_request: ServiceRequest,
    *,
    channel: str,
    company_id: uuid.UUID | None = None,
) -> Contact | None:
    """The contact replying from ``address`` (canonical) about ``service_request``: a reply
    is an access like any other, whatever its channel (mail or SMS).

    An address that is not a contact yet emerges now, as on a first sign-in
    (``contact.created``, via ``reply``), in ``company_id`` (the company a mail
    reply address acts for) or, without one, in the supplier company the request
    resolved to, if the request was sent to this address. The caller has proved
    that the reply comes from ``address`` about this request (a signed reply
    address; a verified SMS webhook and the number's ref). Nobody is signed in:
    a reply opens no session. None: the address is no contact and the request
    was not sent to it. In the caller's unit of work.
    """
    # One address at a time, as for a sign-in: two first replies make one contact.
    db.session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:a))"), {"a": address})
    existing = ContactService.find(address)
    if existing is not None:
        return existing
    if company_id is None and service_request.supplier_email == address:
        company_id = service_request.supplier_company_id
    if company_id is None:
        return None
    contact, created = ContactService.get_or_create(address, company_id=company_id)
    if created:
        EventLogService.record(
            "contact.created",
            company_id=contact.company_id,
            contact_id=contact.contact_id,
            request_id=service_request.request_id,
            via="reply",
            channel=channel,
        )
    return contact


def _introduction(link: Link) -> dict[str, Any]:
    invited_by = link.extra.get("invited_by")
    return {"introduced_by": str(invited_by)} if invited_by else {}


# ---------------------------------------------------------------------------
# Sessions
# ---------------------------------------------------------------------------

USER_AGENT_MAX = 300


def session_contact(session_id: object) -> tuple[Contact, WebSession] | None:
    """The contact signed in on ``session_id`` and its session, if it is still open."""
    try:
        key = uuid.UUID(str(session_id))
    except ValueError:
        return None
    session = db.session.scalar(
        select(WebSession).where(
            WebSession.session_id == key,
            WebSession.is_open(),
        )
    )
    return (session.contact, session) if session is not None else None


def open_sessions(contact: Contact) -> list[WebSession]:
    """The contact's sessions still open (its signed-in browsers), newest first."""
    return list(
        db.session.scalars(
            select(WebSession)
            .where(
                WebSession.contact_id == contact.contact_id,
                WebSession.is_open(),
            )
            .order_by(WebSession.created_at.desc())
        )
    )


def _end_sessions(*where: Any) -> int:
    result = db.session.execute(
        update(WebSession)
        .where(WebSession.ended_at.is_(None), *where)
        .values(ended_at=func.now())
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0))


@atomic
def sign_out(contact: Contact, session_id: uuid.UUID | None, *, channel: str = WEB) -> None:
    """End ``contact``'s session ``session_id``: any copy of its cookie is refused from now."""
    if session_id is not None:
        _end_sessions(
            WebSession.session_id == session_id, WebSession.contact_id == contact.contact_id
        )
    EventLogService.record(
        "contact.signed_out",
        company_id=contact.company_id,
        contact_id=contact.contact_id,
        channel=channel,
    )


@atomic
def sign_out_everywhere(contact: Contact, *, channel: str = WEB) -> int:
    """End every session of ``contact`` (every browser, this one too); return how many."""
    ended = _end_sessions(WebSession.contact_id == contact.contact_id)
    EventLogService.record(
        "contact.signed_out_everywhere",
        company_id=contact.company_id,
        contact_id=contact.contact_id,
        sessions=ended,
        channel=channel,
    )
    return ended
