"""Companies: who owns the work, and which company an address belongs to."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from .domains import domain_of, is_public_mail_domain
from .extensions import db
from .models import Company, Contact, ServiceRequest


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
        """The company that registered ``address``'s domain; never for a public mail domain."""
        domain = domain_of(address)
        if not domain or is_public_mail_domain(domain):
            return None
        query = select(Company).where(func.lower(func.btrim(Company.email_domain)) == domain)
        if company_type:
            query = query.where(Company.company_type == company_type)
        return db.session.scalar(query.order_by(Company.created_at, Company.company_id).limit(1))

    @classmethod
    def for_address(cls, address: str) -> Company | None:
        """The company a canonical address belongs to, if FleetOS can tell.

        Its contact's company; else the supplier a request was last sent to
        at exactly this address (a supplier that emerged from a request has
        no contact yet); else the company that registered its domain.
        """
        contact = db.session.scalar(select(Contact).where(Contact.contact_value == address))
        if contact is not None:
            return contact.company
        reached = db.session.scalar(
            select(Company)
            .join(ServiceRequest, ServiceRequest.supplier_company_id == Company.company_id)
            .where(func.lower(func.btrim(ServiceRequest.supplier_email)) == address)
            .order_by(ServiceRequest.created_at.desc())
            .limit(1)
        )
        return reached or cls.for_domain(address)

    @classmethod
    def create(cls, *, name: str, company_type: str, first_address: str | None = None) -> Company:
        """Create a company, registering ``first_address``'s domain if private and unclaimed."""
        domain = domain_of(first_address) if first_address else None
        if (
            first_address
            and domain
            and (is_public_mail_domain(domain) or cls.for_domain(first_address))
        ):
            domain = None
        company = Company(name=name, company_type=company_type, email_domain=domain)
        db.session.add(company)
        db.session.flush()
        return company
