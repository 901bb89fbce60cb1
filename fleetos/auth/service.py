"""Sign-in rules: who gets which link, and what using a link does.

Views call one function each; every function here runs in the caller's
request and commits its own unit of work, so a link's mail is stored in the
same transaction as whatever caused it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import delete, func, or_, select, text
from sqlalchemy.dialects.postgresql import insert

from ..companies import CompanyService
from ..contacts import ContactAddress, ContactService, InvalidContact
from ..events import EventLogService
from ..extensions import db
from ..models import COMPANY_TYPES, Company, Contact, ServiceRequest, UsedLinkToken
from ..outbox import queue_mail
from .tokens import Link, LinkError, Purpose, make_token, read_token, safe_next

OPEN_STATUSES = ("new", "acknowledged", "in_progress")


class AuthError(ValueError):
    """Input the person can correct; ``field`` names the form field at fault."""

    def __init__(self, message: str, field: str = "email") -> None:
        super().__init__(message)
        self.field = field


def link_url(token: str) -> str:
    # Always from BASE_URL: the Host header is the client's to choose.
    return f"{current_app.config['BASE_URL']}/auth/link/{token}"


def email_address(raw: str) -> ContactAddress:
    """Canonicalise an address typed into an ``email`` field, or raise AuthError."""
    try:
        address = ContactService.canonicalise(raw)
    except InvalidContact as exc:
        raise AuthError(str(exc)) from None
    if address.contact_type != "email":
        raise AuthError("Enter an e-mail address, like dana@acme-fleet.com.")
    return address


# ---------------------------------------------------------------------------
# Asking for links
# ---------------------------------------------------------------------------


def request_sign_in(raw_email: str, next_path: str | None = None) -> None:
    """Mail a sign-in link if the address is known, was sent work, or is on a registered domain.

    The caller shows the same page either way. An unknown address is told
    (by mail, to its owner only) how to start instead.
    """
    address = email_address(raw_email)
    company = CompanyService.for_address(address.value)
    if company is None:
        queue_mail(
            "unknown_address",
            address.value,
            "Signing in to FleetOS",
            signup_url=f"{current_app.config['BASE_URL']}/auth/signup",
        )
    else:
        _queue_sign_in(address.value, company, next_path)
    db.session.commit()


def _queue_sign_in(address: str, company: Company, next_path: str | None) -> None:
    token = make_token(Purpose.SIGN_IN, address, company_id=company.company_id, next_path=next_path)
    queue_mail(
        "sign_in",
        address,
        "Your FleetOS sign-in link",
        link=link_url(token),
        company=company,
        minutes=Purpose.SIGN_IN.max_age // 60,
    )


@dataclass(frozen=True)
class SignUp:
    company_name: str
    company_type: str
    email: str
    display_name: str

    def validated(self) -> tuple[SignUp, dict[str, str]]:
        """Return the cleaned sign-up and a message per faulty field."""
        errors: dict[str, str] = {}
        name = " ".join(self.company_name.split())
        if not name:
            errors["company_name"] = "Enter your company's name."
        elif len(name) > 120:
            errors["company_name"] = "Keep the company name under 120 characters."
        if self.company_type not in COMPANY_TYPES:
            errors["company_type"] = "Choose whether your company runs a fleet or services one."
        display_name = " ".join(self.display_name.split())
        if len(display_name) > 120:
            errors["display_name"] = "Keep your name under 120 characters."
        email = self.email.strip()
        try:
            email = email_address(self.email).value
        except AuthError as exc:
            errors["email"] = str(exc)
        return SignUp(name, self.company_type, email, display_name), errors


def request_sign_up(signup: SignUp) -> None:
    """Mail a sign-up link; nothing but the message is stored until it is used.

    An address that is already a contact gets a sign-in link instead: one
    address never founds a second company.
    """
    contact = ContactService.find(signup.email)
    if contact is not None:
        _queue_sign_in(contact.contact_value, contact.company, None)
    else:
        token = make_token(
            Purpose.SIGN_UP,
            signup.email,
            next_path="/dashboard",
            company_name=signup.company_name,
            company_type=signup.company_type,
            display_name=signup.display_name,
        )
        queue_mail(
            "sign_up",
            signup.email,
            f"Confirm {signup.company_name} on FleetOS",
            link=link_url(token),
            company_name=signup.company_name,
            minutes=Purpose.SIGN_UP.max_age // 60,
        )
    db.session.commit()


def invite_colleague(inviter: Contact, raw_email: str, display_name: str = "") -> str:
    """Mail an invite link to join the inviter's company; return the canonical address."""
    address = email_address(raw_email)
    existing = ContactService.find(address.value)
    if existing is not None and existing.company_id == inviter.company_id:
        raise AuthError(f"{address.value} is already a colleague at {inviter.company.name}.")
    if existing is not None:
        raise AuthError(f"{address.value} already belongs to another company on FleetOS.")
    name = " ".join(display_name.split())[:120]
    token = make_token(
        Purpose.INVITE,
        address.value,
        company_id=inviter.company_id,
        next_path="/dashboard",
        invited_by=str(inviter.contact_id),
        display_name=name,
    )
    queue_mail(
        "invite",
        address.value,
        f"{inviter.label} invited you to {inviter.company.name} on FleetOS",
        link=link_url(token),
        inviter=inviter,
        company=inviter.company,
        days=Purpose.INVITE.max_age // 86400,
    )
    EventLogService.record(
        "contact.invited",
        company_id=inviter.company_id,
        contact_id=inviter.contact_id,
        invitee=address.value,
    )
    db.session.commit()
    return address.value


def send_fresh_link(token: str) -> str:
    """Mail a new link like an expired or used one, to the same address; return it."""
    link = _read_ignoring_expiry(token)
    if link.purpose is Purpose.SIGN_UP and ContactService.find(link.contact_value) is None:
        extra = {k: link.extra.get(k, "") for k in ("company_name", "company_type", "display_name")}
        request_sign_up(
            SignUp(
                extra["company_name"],
                extra["company_type"],
                link.contact_value,
                extra["display_name"],
            )
        )
    elif link.purpose is Purpose.INVITE and ContactService.find(link.contact_value) is None:
        fresh = make_token(
            Purpose.INVITE,
            link.contact_value,
            company_id=link.company_id,
            next_path=link.next_path,
            **link.extra,
        )
        company = CompanyService.get(link.company_id)
        if company is None:
            raise LinkError("invalid")
        queue_mail(
            "invite",
            link.contact_value,
            f"Your invitation to {company.name} on FleetOS",
            link=link_url(fresh),
            inviter=None,
            company=company,
            days=Purpose.INVITE.max_age // 86400,
        )
        db.session.commit()
    else:
        request_sign_in(link.contact_value, link.next_path)
    return link.contact_value


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
    link = read_token(token)
    if db.session.get(UsedLinkToken, link.jti) is not None:
        raise LinkError("used", link)
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
    created: bool


def sign_in_with_link(token: str, *, client_ip: str | None = None) -> SignIn:
    """Use a link once: consume it, let the contact (and company) emerge, record it, commit."""
    link = read_token(token)
    _consume(link)
    # One address at a time: two different links for one new address must
    # not both found a company.
    db.session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:a))"), {"a": link.contact_value}
    )
    contact, created = _contact_for(link)
    if created:
        EventLogService.record(
            "contact.created",
            company_id=contact.company_id,
            contact_id=contact.contact_id,
            via=link.purpose.value,
            **_introduction(link),
        )
    EventLogService.record(
        "contact.signed_in",
        company_id=contact.company_id,
        contact_id=contact.contact_id,
        via=link.purpose.value,
        ip=client_ip,
    )
    db.session.commit()
    return SignIn(contact, safe_next(link.next_path), created)


def _consume(link: Link) -> None:
    """Record the link's id; a second use (even a concurrent one) finds it taken."""
    inserted = db.session.scalar(
        insert(UsedLinkToken)
        .values(jti=link.jti, purpose=link.purpose.value, contact_value=link.contact_value)
        .on_conflict_do_nothing()
        .returning(UsedLinkToken.jti)
    )
    if inserted is None:
        db.session.rollback()
        raise LinkError("used", link)


def _contact_for(link: Link) -> tuple[Contact, bool]:
    existing = ContactService.find(link.contact_value)
    if existing is not None:
        # Whatever the link's purpose, a known contact just signs in, in its own company.
        contact, _ = ContactService.get_or_create(
            existing.contact_value, company_id=existing.company_id
        )
        return contact, False
    if link.purpose is Purpose.DAILY_ACCESS:
        raise LinkError("invalid")
    if link.purpose is Purpose.SIGN_UP:
        company = CompanyService.create(
            name=str(link.extra.get("company_name") or link.contact_value),
            company_type=str(link.extra.get("company_type") or "fleet"),
            first_address=link.contact_value,
        )
        EventLogService.record(
            "company.created",
            company_id=company.company_id,
            via="sign-up",
            founder=link.contact_value,
        )
    else:
        company = CompanyService.get(link.company_id)
        if company is None:
            raise LinkError("invalid")
    name = str(link.extra.get("display_name") or "") or None
    return ContactService.get_or_create(
        link.contact_value, company_id=company.company_id, display_name=name
    )


def _introduction(link: Link) -> dict[str, str]:
    invited_by = link.extra.get("invited_by")
    return {"introduced_by": str(invited_by)} if invited_by else {}


def record_sign_out(contact: Contact) -> None:
    EventLogService.record(
        "contact.signed_out", company_id=contact.company_id, contact_id=contact.contact_id
    )
    db.session.commit()


# ---------------------------------------------------------------------------
# Daily access links
# ---------------------------------------------------------------------------


def send_daily_links(*, now: datetime | None = None) -> int:
    """Queue today's dashboard link for each supplier contact active in the last 30 days.

    The outbox's unique ``dedupe_key`` (contact and UTC date) makes a second
    run on the same day add nothing. Returns how many were queued.
    """
    now = now or datetime.now(UTC).replace(tzinfo=None)
    contacts = db.session.scalars(
        select(Contact)
        .join(Company, Company.company_id == Contact.company_id)
        .where(Company.company_type == "supplier", Contact.last_seen_at >= now - timedelta(days=30))
        .order_by(Contact.company_id, Contact.contact_id)
    ).all()
    counts = _open_counts({c.company_id for c in contacts})
    queued = 0
    for contact in contacts:
        token = make_token(
            Purpose.DAILY_ACCESS,
            contact.contact_value,
            company_id=contact.company_id,
            next_path="/dashboard",
        )
        company_counts = counts.get(contact.company_id, {})
        queued += (
            queue_mail(
                "daily_access",
                contact.contact_value,
                f"FleetOS today: {sum(company_counts.values())} open requests"
                f" for {contact.company.name}",
                dedupe_key=f"daily-access:{contact.contact_id}:{now.date().isoformat()}",
                link=link_url(token),
                contact=contact,
                company=contact.company,
                counts={status: company_counts.get(status, 0) for status in OPEN_STATUSES},
            )
            is not None
        )
    db.session.commit()
    return queued


def _open_counts(company_ids: set) -> dict:
    if not company_ids:
        return {}
    rows = db.session.execute(
        select(ServiceRequest.supplier_company_id, ServiceRequest.status, func.count())
        .where(
            ServiceRequest.supplier_company_id.in_(company_ids),
            ServiceRequest.status.in_(OPEN_STATUSES),
        )
        .group_by(ServiceRequest.supplier_company_id, ServiceRequest.status)
    ).all()
    counts: dict = {}
    for company_id, status, n in rows:
        counts.setdefault(company_id, {})[status] = n
    return counts


# ---------------------------------------------------------------------------
# Housekeeping
# ---------------------------------------------------------------------------


# Clocks of app servers and the database may disagree a little; keep ids this much longer.
USED_LINK_CLOCK_MARGIN = timedelta(hours=1)


def forget_expired_links(*, now: datetime | None = None) -> int:
    """Delete the ids of used links that have expired since; return how many went.

    A link is signed before it is used, so once its purpose's lifetime has passed
    since its use, its signature has expired too and ``read_token`` refuses it
    without asking this table: the row guards nothing any more. Ids of purposes
    this version does not know are kept.
    """
    now = now or datetime.now(UTC).replace(tzinfo=None)
    expired = [
        (UsedLinkToken.purpose == purpose.value)
        & (
            UsedLinkToken.used_at
            < now - timedelta(seconds=purpose.max_age) - USED_LINK_CLOCK_MARGIN
        )
        for purpose in Purpose
    ]
    deleted = db.session.execute(delete(UsedLinkToken).where(or_(*expired))).rowcount
    db.session.commit()
    return deleted
