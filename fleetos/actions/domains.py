"""Claiming a mail domain: a company proves it controls the domain before the domain counts.

A verified domain routes requests sent to new addresses there to the company,
and lets people at the domain sign in to it. So it must be proved, not
asserted: the company publishes ``fleetos-verification=<token>`` as a TXT
record of the domain, and a check (the company page's button, or
``flask fleetos verify-domain DOMAIN``) looks for it. A mailbox at a shared
domain (hotmail.fr, a former employer's) gives no way to publish that record.
Public and free-mail domains cannot even be claimed. One company holds a
domain: the unique index on ``companies.email_domain`` decides a race.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError

from ..dns_check import DnsUnavailable, txt_records
from ..domain_errors import Conflict, Invalid, NotFound
from ..domains import InvalidDomain, canonical_domain, domain_of, is_public_mail_domain
from ..events import EventLogService
from ..extensions import db
from ..models import Company, Contact, DomainClaim
from ..unit_of_work import atomic

WEB = "web"


def _claimable(raw: str, *, field: str = "domain") -> str:
    try:
        domain = canonical_domain(raw)
    except InvalidDomain as exc:
        raise Invalid(field, str(exc)) from None
    if is_public_mail_domain(domain):
        raise Invalid(
            field,
            f"{domain} is a public mail domain: anyone can have an address there, "
            "so no company can claim it.",
        )
    return domain


def suggested_domain(contact: Contact) -> str:
    """The domain a contact would most likely claim: their own address's, unless public."""
    domain = domain_of(contact.contact_value) if contact.contact_type == "email" else ""
    return "" if not domain or is_public_mail_domain(domain) else domain


def claims_of(company: Company) -> list[DomainClaim]:
    """The company's claims still to prove, newest first."""
    return list(
        db.session.scalars(
            select(DomainClaim)
            .where(DomainClaim.company_id == company.company_id, DomainClaim.verified_at.is_(None))
            .order_by(DomainClaim.created_at.desc())
        )
    )


@atomic
def claim_domain(contact: Contact, raw_domain: str, *, channel: str = WEB) -> DomainClaim:
    """Start (or find) ``contact``'s company's claim to a domain: the record to publish."""
    company = contact.company
    domain = _claimable(raw_domain)
    if company.verified_domain:
        raise Invalid("domain", f"{company.name} has verified {company.verified_domain} already.")
    db.session.execute(
        insert(DomainClaim)
        .values(
            company_id=company.company_id,
            domain=domain,
            token=secrets.token_hex(16),
            claimed_by_contact_id=contact.contact_id,
        )
        .on_conflict_do_nothing(index_elements=[DomainClaim.company_id, DomainClaim.domain])
    )
    claim = _claim(company, domain)
    EventLogService.record(
        "domain.claimed",
        company_id=company.company_id,
        contact_id=contact.contact_id,
        domain=domain,
        channel=channel,
    )
    return claim


def _claim(company: Company, domain: str) -> DomainClaim:
    claim = db.session.scalar(
        select(DomainClaim).where(
            DomainClaim.company_id == company.company_id, DomainClaim.domain == domain
        )
    )
    if claim is None:
        raise NotFound("Your company has not claimed that domain.")
    return claim


@dataclass(frozen=True)
class Checked:
    claim: DomainClaim
    verified: bool
    message: str


@atomic
def check_claim(
    company: Company, raw_domain: str, *, contact: Contact | None = None, channel: str = WEB
) -> Checked:
    """Look up the domain's TXT records; verify the company's claim if its record is there.

    Conflict if another company holds the domain (only someone who could
    publish the record gets this far); DnsUnavailable becomes a message to
    try again, and changes nothing.
    """
    domain = _claimable(raw_domain)
    claim = _claim(company, domain)
    if claim.verified_at is not None and company.verified_domain == domain:
        return Checked(claim, True, f"{domain} is verified for {company.name}.")
    try:
        published = txt_records(domain)
    except DnsUnavailable:
        return Checked(
            claim,
            False,
            f"FleetOS could not get an answer from DNS about {domain} just now. "
            "Nothing changed; check again in a few minutes.",
        )
    claim.checked_at = func.now()
    if claim.record not in (record.strip() for record in published):
        db.session.flush()
        return Checked(
            claim,
            False,
            f"No TXT record {claim.record} on {domain} yet. DNS changes can take an hour "
            "or more to show; check again later.",
        )
    _hold(company, domain)
    claim.verified_at = func.now()
    db.session.flush()
    EventLogService.record(
        "domain.verified",
        company_id=company.company_id,
        contact_id=contact.contact_id if contact else None,
        domain=domain,
        channel=channel,
    )
    return Checked(
        claim,
        True,
        f"{domain} is verified: requests to new addresses at {domain} now reach "
        f"{company.name}, and people there can sign in to it.",
    )


def _hold(company: Company, domain: str) -> None:
    """Make ``domain`` the company's; Conflict if another company holds it (also mid-race)."""
    try:
        with db.session.begin_nested():
            company.email_domain = domain
            db.session.flush()
    except IntegrityError:
        db.session.refresh(company)
        raise Conflict(
            f"{domain} is verified for another company on FleetOS. If your company "
            "controls it now, tell us (see the security page) and we will sort it out."
        ) from None


@dataclass(frozen=True)
class OperatorCheck:
    company: Company
    checked: Checked | None
    refusal: str | None


def check_all_claims(raw_domain: str) -> list[OperatorCheck]:
    """Check every company's pending claim to a domain (``flask fleetos verify-domain``)."""
    domain = _claimable(raw_domain)
    claims = list(
        db.session.scalars(
            select(DomainClaim)
            .where(DomainClaim.domain == domain)
            .order_by(DomainClaim.created_at, DomainClaim.claim_id)
        )
    )
    results = []
    for claim in claims:
        company = claim.company
        try:
            checked = check_claim(company, domain, channel="cli")
        except Conflict as refusal:
            results.append(OperatorCheck(company, None, refusal.message))
        else:
            results.append(OperatorCheck(company, checked, None))
    return results
