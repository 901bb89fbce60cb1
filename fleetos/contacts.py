"""Contacts: e-mail addresses and phone numbers that emerge when first used.

The canonical form here is the one the database function
``get_or_create_contact`` computes (migration 0002): e-mail trimmed and
lower-cased, phones in E.164. Tests hold the two to the same answers.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert

from .extensions import db
from .models import Contact


class InvalidContact(ValueError):
    """An address that is neither a valid e-mail address nor a phone number."""


@dataclass(frozen=True)
class ContactAddress:
    value: str
    contact_type: str  # "email" or "phone"


class ContactService:
    """Canonicalise, find and create contacts. Never commits: the caller's unit of work does."""

    @staticmethod
    def canonicalise(raw: str, *, default_region: str | None = None) -> ContactAddress:
        """Return the canonical e-mail address or phone number, or raise InvalidContact."""
        value = (raw or "").strip()
        if not value:
            raise InvalidContact("Enter an e-mail address or phone number.")
        if "@" in value:
            return ContactAddress(canonical_email(value), "email")
        return ContactAddress(canonical_phone(value, default_region), "phone")

    @classmethod
    def get_or_create(
        cls,
        raw: str,
        *,
        company_id: uuid.UUID,
        display_name: str | None = None,
    ) -> tuple[Contact, bool]:
        """Return the contact for ``raw`` (new ones in ``company_id``) and whether it is new.

        The contact is using FleetOS now, so ``last_seen_at`` moves forward. A
        single ``INSERT ... ON CONFLICT`` makes concurrent first uses of one
        address yield one row. An existing contact keeps its own company.
        """
        address = cls.canonicalise(raw)
        name = (display_name or "").strip() or None
        stmt = insert(Contact).values(
            company_id=company_id,
            contact_value=address.value,
            contact_type=address.contact_type,
            display_name=name,
            first_seen_at=func.now(),
            last_seen_at=func.now(),
        )
        upsert = stmt.on_conflict_do_update(
            index_elements=[Contact.contact_value],
            set_={
                "last_seen_at": func.now(),
                "display_name": func.coalesce(Contact.display_name, stmt.excluded.display_name),
            },
        ).returning(Contact.contact_id, text("(xmax = 0) AS inserted"))
        contact_id, inserted = db.session.execute(upsert).one()
        contact = db.session.get(Contact, contact_id, populate_existing=True)
        assert contact is not None
        return contact, bool(inserted)

    @staticmethod
    def find(raw: str) -> Contact | None:
        """Return the existing contact for an address, or None (also for invalid input)."""
        try:
            address = ContactService.canonicalise(raw)
        except InvalidContact:
            return None
        return db.session.scalar(select(Contact).where(Contact.contact_value == address.value))

    @staticmethod
    def last_active(company_id: uuid.UUID) -> Contact | None:
        """Return the company's most recently seen contact (the routing fallback)."""
        contact_id = db.session.scalar(
            text("SELECT contact_id FROM get_last_active_contact(:company_id)"),
            {"company_id": company_id},
        )
        return db.session.get(Contact, contact_id) if contact_id else None


def canonical_email(value: str) -> str:
    try:
        # Syntax only: a contact's domain may not resolve from every network.
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidContact(f"{value} is not a valid e-mail address: {exc}") from None
    return value.strip().lower()


def canonical_phone(value: str, default_region: str | None = None) -> str:
    region = default_region or current_app.config.get("PHONE_DEFAULT_REGION") or None
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        raise InvalidContact(f"{value} is not a valid phone number.") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidContact(f"{value} is not a valid phone number.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
