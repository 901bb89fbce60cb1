"""Companies: who owns the work, and which company an address belongs to.

An address belongs to a company when it is that company's contact, or when a
supplier emerged from a request sent to exactly that address, or when the
company has *verified* the address's domain (a DNS record, see
``fleetos/actions/domains.py``). Signing up never claims a domain, and a
public mail domain never identifies anyone.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from sqlalchemy import func, select, text

from .domains import domain_of, is_public_mail_domain
from .extensions import db
from .models import Company, Contact


@dataclass(frozen=True)
class Resolved:
    """The supplier a request to an address goes to, and whether it emerged just now."""

    company: Company
    emerged: bool


# One statement, whatever the address: the address's supplier (its contact's
# company, else the supplier that verified its domain), else the supplier that
# emerged from it, made now if there is none. The web request that sends work
# to an address must take the same steps whether or not the address uses
# FleetOS (they would show in its timing), and ten requests racing to one new
# address must end with one company: the upsert on the unique
# emerged_from_address takes care of that (DO UPDATE, not DO NOTHING, so the
# loser of the race gets the winner's row back). A new company's event goes
# into the same statement.
SUPPLIER_FOR_ADDRESS = text("""
WITH known AS (
    SELECT company_id FROM (
        SELECT co.company_id, 1 AS preference
          FROM contacts k JOIN companies co ON co.company_id = k.company_id
         WHERE k.contact_value = :address AND co.company_type = 'supplier'
        UNION ALL
        SELECT co.company_id, 2
          FROM companies co
         WHERE lower(btrim(co.email_domain)) = :domain AND btrim(co.email_domain) <> ''
           AND co.company_type = 'supplier' AND NOT :public_domain
    ) found
    ORDER BY preference
    LIMIT 1
), emerged AS (
    INSERT INTO companies (name, company_type, emerged_from_address)
    SELECT :address, 'supplier', :address
     WHERE NOT EXISTS (SELECT 1 FROM known)
    ON CONFLICT (emerged_from_address)
    DO UPDATE SET emerged_from_address = excluded.emerged_from_address
    RETURNING company_id, (xmax = 0) AS inserted
), recorded AS (
    INSERT INTO event_log (event_type, company_id, contact_id, metadata)
    SELECT 'company.created', company_id, :contact_id, CAST(:event AS jsonb)
      FROM emerged WHERE inserted
)
SELECT company_id, false AS inserted FROM known
UNION ALL
SELECT company_id, inserted FROM emerged
""")


class CompanyService:
    """Find and create companies. Never commits: the caller's unit of work does."""

    @staticmethod
    def get(company_id: object) -> Company | None:
        try:
            return db.session.get(Company, uuid.UUID(str(company_id)))
        except ValueError:
            return None

    @staticmethod
    def for_domain(address: str, *, company_type: str | None = None) -> Company | None:
        """The company that verified ``address``'s domain; never for a public mail domain."""
        domain = domain_of(address)
        if not domain or is_public_mail_domain(domain):
            return None
        query = select(Company).where(func.lower(func.btrim(Company.email_domain)) == domain)
        if company_type:
            query = query.where(Company.company_type == company_type)
        return db.session.scalar(query)

    @staticmethod
    def emerged_from(address: str) -> Company | None:
        """The supplier that emerged from a request sent to ``address`` (canonical)."""
        return db.session.scalar(select(Company).where(Company.emerged_from_address == address))

    @classmethod
    def for_address(cls, address: str) -> Company | None:
        """The company a canonical address belongs to, if FleetOS can tell.

        Its contact's company; else the supplier that emerged from a request
        sent to exactly this address (it has no contact yet); else the company
        that verified its domain.
        """
        contact = db.session.scalar(select(Contact).where(Contact.contact_value == address))
        if contact is not None:
            return contact.company
        return cls.emerged_from(address) or cls.for_domain(address)

    @staticmethod
    def supplier_for_address(address: str, *, introduced_by: Contact, channel: str) -> Resolved:
        """The supplier that work sent to ``address`` (canonical e-mail or number) goes to.

        Its contact's company if that is a supplier, else the supplier that
        verified its domain, else the supplier that emerged from the address
        (emerging now, recorded, if this is the first request there). An
        address whose contact is in a fleet gets a supplier of its own like
        any new address: what its owner is told is the delivery worker's
        decision (``fleetos/messaging/decisions.py``), never the request's.
        """
        domain = domain_of(address) if "@" in address else ""  # a mobile number has none
        event = {
            "via": "request",
            "address": address,
            "introduced_by": str(introduced_by.contact_id),
            "channel": channel,
        }
        company_id, emerged = db.session.execute(
            SUPPLIER_FOR_ADDRESS,
            {
                "address": address,
                "domain": domain,
                "public_domain": is_public_mail_domain(domain),
                "contact_id": introduced_by.contact_id,
                "event": json.dumps(event),
            },
        ).one()
        company = db.session.get(Company, company_id)
        assert company is not None  # the statement just found or made it
        return Resolved(company, bool(emerged))

    @staticmethod
    def create(*, name: str, company_type: str) -> Company:
        """Create a company. It has no domain until it proves one (claims never come free)."""
        company = Company(name=name, company_type=company_type)
        db.session.add(company)
        db.session.flush()
        return company

    @staticmethod
    def verified_name_taken(name: str) -> Company | None:
        """A company with a verified domain that already has exactly this name (any case)."""
        wanted = " ".join(name.split()).lower()
        candidates = db.session.scalars(
            select(Company).where(
                func.lower(func.btrim(Company.name)) == wanted,
                func.btrim(func.coalesce(Company.email_domain, "")) != "",
            )
        )
        return next((c for c in candidates if c.verified_domain), None)
