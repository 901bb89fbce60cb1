"""Contacts: e-mail addresses and phone numbers that emerge when first used.

The canonical form here is the one the database function
``get_or_create_contact`` computes (migration 0002): e-mail trimmed and
lower-cased, phones in E.164. Tests hold the two to the same answers.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import phonenumbers
from confusable_homoglyphs import categories
from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert

from .extensions import db
from .models import Contact
from .text import shorten

# Longer than any e-mail address (RFC 5321: 254) or phone number can be.
ADDRESS_MAX = 320


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
        if len(value) > ADDRESS_MAX:
            raise InvalidContact("That is too long to be an e-mail address or a phone number.")
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


# Scripts that one word may mix (Unicode TS #39, "highly restrictive"): Japanese
# writes Han, Hiragana and Katakana together, Chinese and Korean their own pairs.
# Any other mix of scripts in one word (a Cyrillic U+0430 among Latin letters) is
# the look-alike of another address.
MIXABLE_SCRIPTS = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)
NEUTRAL_SCRIPTS = frozenset({"COMMON", "INHERITED"})


def ensure_mailable(address: str) -> None:
    """Refuse an address FleetOS should not write to, saying why (InvalidContact).

    * A local part or domain label that mixes scripts (``dana@`` with its
      first ``a`` the Cyrillic U+0430) is the look-alike of another mailbox:
      always refused.
    * A non-ASCII local part (``josé@``) needs SMTPUTF8 from the mail relay:
      refused unless the operator says the relay has it (``MAIL_SMTPUTF8``).
    * A non-ASCII domain (``bücher.example``) goes out in its ASCII form: fine.
    """
    local, _, domain = address.strip().rpartition("@")
    for word in (local, *domain.split(".")):
        odd = _odd_script_characters(word)
        if odd:
            raise InvalidContact(
                f"This address mixes alphabets: {odd} in “{shorten(word, 40)}” only looks "
                "like the letter it stands beside. Type the address again by hand."
            )
    if not local.isascii() and not current_app.config.get("MAIL_SMTPUTF8"):
        raise InvalidContact(
            "FleetOS cannot send mail to an address with accents or other non-Latin letters "
            "before the @ (like josé@…). Use the mailbox's plain-letter address if it has one."
        )


def _odd_script_characters(word: str) -> str:
    """The characters of ``word`` outside its main script, if it mixes scripts it may not."""
    if word.isascii():
        return ""
    scripts = [categories.aliases_categories(character)[0] for character in word]
    used = set(scripts) - NEUTRAL_SCRIPTS
    if len(used) <= 1 or any(used <= allowed for allowed in MIXABLE_SCRIPTS):
        return ""
    main = max(used, key=scripts.count)
    odd = [
        f"“{character}” ({script.title()})"
        for character, script in zip(word, scripts, strict=True)
        if script not in NEUTRAL_SCRIPTS | {main}
    ]
    return ", ".join(dict.fromkeys(odd))


def ensure_reachable(address: ContactAddress) -> None:
    """Refuse an address FleetOS cannot write to, saying why (InvalidContact): an e-mail
    address it cannot mail (``ensure_mailable``), or a number that cannot take an SMS
    (a landline)."""
    if address.contact_type == "email":
        ensure_mailable(address.value)
        return
    kind = phonenumbers.number_type(phonenumbers.parse(address.value))
    if kind in (phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.TOLL_FREE):
        raise InvalidContact(
            f"{address.value} looks like a landline: FleetOS texts mobile numbers. "
            "Enter a mobile number or an e-mail address."
        )


def is_phone_number(address: str) -> bool:
    """Whether a canonical contact value is a phone number (E.164), which FleetOS texts."""
    return address.startswith("+") and "@" not in address


def mailbox(raw: str) -> str:
    """The mailbox ``raw`` reaches, for counting: canonical, with a plus-tag folded
    (``a+1@x`` and ``a+2@x`` are both ``a@x``); text that is no address, as typed."""
    try:
        address = ContactService.canonicalise(raw)
    except InvalidContact:
        return " ".join(raw.split()).lower()[:ADDRESS_MAX]
    local, at, domain = address.value.rpartition("@")
    return f"{local.split('+', 1)[0]}{at}{domain}" if at else address.value


def canonical_email(value: str) -> str:
    try:
        # Syntax only: a contact's domain may not resolve from every network.
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidContact(f"{shorten(value)} is not a valid e-mail address: {exc}") from None
    return value.strip().lower()


def canonical_phone(value: str, default_region: str | None = None) -> str:
    region = default_region or current_app.config.get("PHONE_DEFAULT_REGION") or None
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        raise InvalidContact(f"{shorten(value)} is not a valid phone number.") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidContact(f"{shorten(value)} is not a valid phone number.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
