"""The FleetOS data model: companies own the work, contacts act on it.

Tables, columns, indexes and constraint names follow the emergent-contacts
plan's SQL object for object (see migrations/versions/0002_emergent_contacts.py).
All timestamps are ``timestamp without time zone`` holding UTC, as in v1: the
app pins every database session to UTC.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ColumnElement,
    ForeignKey,
    Identity,
    Index,
    Text,
    UniqueConstraint,
    and_,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.elements import conv

from .domains import is_public_mail_domain
from .extensions import Model

# Statuses, priorities and the order between statuses are the lifecycle's (lifecycle.py).
from .lifecycle import PRIORITIES as PRIORITIES
from .lifecycle import STATUSES as STATUSES

COMPANY_TYPES = ("fleet", "supplier")
CONTACT_TYPES = ("email", "phone")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _uuid_pk() -> Mapped[uuid.UUID]:
    return mapped_column(primary_key=True, server_default=text("gen_random_uuid()"))


def identifying_domain(email_domain: str | None) -> str | None:
    """A company's verified domain as shown and used, or None.

    A v1 administrator may have registered gmail.com: kept, but it says
    nothing about who works here, so it is never shown or used.
    """
    domain = (email_domain or "").strip().lower()
    return domain if domain and not is_public_mail_domain(domain) else None


def company_label(name: str, email_domain: str | None) -> str:
    """How a company is named to others: with its verified domain, where it has one,
    so a look-alike name cannot pass for it."""
    domain = identifying_domain(email_domain)
    return f"{name} ({domain})" if domain else name


class Company(Model):
    """A fleet (owns vehicles) or a supplier (services them). Companies own the work."""

    __tablename__ = "companies"
    __table_args__ = (
        CheckConstraint(_in("company_type", COMPANY_TYPES), name="company_type"),
        # One verified owner per domain, whatever case or spaces v1 stored it in
        # (migration 0007); this index is what makes two racing checks end with one.
        Index(
            "uq_companies_email_domain",
            text("lower(btrim(email_domain))"),
            unique=True,
            postgresql_where=text("btrim(email_domain) <> ''"),
        ),
    )

    company_id: Mapped[uuid.UUID] = _uuid_pk()
    name: Mapped[str] = mapped_column(Text)
    company_type: Mapped[str] = mapped_column(Text)
    # The company's verified mail domain: proved by a DNS record (or registered
    # by a v1 administrator). Only a verified domain routes requests to the
    # company and lets people at that domain join it.
    email_domain: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=text("now()"))
    # A supplier that emerged from a request sent to an address, before anyone
    # there used FleetOS: that address. Unique, so one new address is one company.
    emerged_from_address: Mapped[str | None] = mapped_column(Text, unique=True)

    contacts: Mapped[list[Contact]] = relationship(back_populates="company", lazy="raise")

    @property
    def is_supplier(self) -> bool:
        return self.company_type == "supplier"

    @property
    def is_fleet(self) -> bool:
        return self.company_type == "fleet"

    @property
    def verified_domain(self) -> str | None:
        """The domain that identifies this company, if it has one (never a public one)."""
        return identifying_domain(self.email_domain)

    @property
    def label(self) -> str:
        """How the company is named to others (see :func:`company_label`)."""
        return company_label(self.name, self.email_domain)

    def __repr__(self) -> str:
        return f"<Company {self.name!r} {self.company_type}>"


class DomainClaim(Model):
    """A company's claim to a mail domain; it counts once a DNS TXT record proves it.

    The company publishes ``fleetos-verification=<token>`` as a TXT record of
    the domain; a check that finds it sets the company's ``email_domain``.
    Several companies may claim one domain; only one can hold it.
    """

    __tablename__ = "domain_claims"
    __table_args__ = (
        UniqueConstraint("company_id", "domain"),
        CheckConstraint("domain = lower(btrim(domain)) AND domain <> ''", name="domain"),
        Index("idx_domain_claims_domain", "domain"),
    )

    claim_id: Mapped[uuid.UUID] = _uuid_pk()
    company_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("companies.company_id", ondelete="CASCADE")
    )
    domain: Mapped[str] = mapped_column(Text)
    token: Mapped[str] = mapped_column(Text, unique=True)
    claimed_by_contact_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("contacts.contact_id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(server_default=text("now()"))
    checked_at: Mapped[datetime | None]
    verified_at: Mapped[datetime | None]
    # What companies.email_domain held before 0007 took it off (a domain a
    # sign-up registered unproved): a downgrade puts it back.
    unverified_registration: Mapped[str | None] = mapped_column(Text)

    company: Mapped[Company] = relationship(lazy="joined")

    @property
    def record(self) -> str:
        """The TXT record's text, as the company publishes it."""
        return f"{VERIFICATION_PREFIX}{self.token}"


VERIFICATION_PREFIX = "fleetos-verification="


class LegacyUser(Model):
    """A v1 account row. Read-only: kept so that a rollback to v1 stays possible."""

    __tablename__ = "users"
    __table_args__ = (Index("idx_users_company", "company_id"),)

    user_id: Mapped[uuid.UUID] = _uuid_pk()
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.company_id"))
    email: Mapped[str] = mapped_column(Text, unique=True)
    full_name: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=text("now()"))
    last_login_at: Mapped[datetime | None]


class Contact(Model):
    """An e-mail address or phone number that has used FleetOS; never signs up."""

    __tablename__ = "contacts"
    __table_args__ = (
        CheckConstraint(_in("contact_type", CONTACT_TYPES), name="contact_type"),
        Index("idx_contacts_company", "company_id"),
        Index("idx_contacts_value", "contact_value"),
        Index("idx_contacts_last_seen", text("last_seen_at DESC")),
        {"comment": "Emergent contacts - created on first access, no signup required"},
    )

    contact_id: Mapped[uuid.UUID] = _uuid_pk()
    company_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("companies.company_id", ondelete="CASCADE")
    )
    contact_value: Mapped[str] = mapped_column(
        Text, unique=True, comment="Canonical email (lowercase) or phone (E.164 format)"
    )
    contact_type: Mapped[str | None] = mapped_column(Text)
    display_name: Mapped[str | None] = mapped_column(Text)
    first_seen_at: Mapped[datetime | None] = mapped_column(
        server_default=text("now()"), comment="When this contact first accessed FleetOS"
    )
    last_seen_at: Mapped[datetime | None] = mapped_column(
        server_default=text("now()"), comment='Most recent access (for "last active" routing)'
    )

    company: Mapped[Company] = relationship(back_populates="contacts", lazy="joined")

    @property
    def label(self) -> str:
        """How the contact is named to others: their name, else their address."""
        return self.display_name or self.contact_value

    def __repr__(self) -> str:
        return f"<Contact {self.contact_value!r}>"


class ServiceRequest(Model):
    """Work a fleet company asks a supplier company to do on one vehicle."""

    __tablename__ = "service_requests"
    __table_args__ = (
        CheckConstraint(_in("priority", PRIORITIES), name="priority"),
        CheckConstraint(_in("status", STATUSES), name=conv("valid_status")),
        CheckConstraint("odometer >= 0", name="odometer"),
        Index("idx_service_requests_created_by", "created_by_user_id"),
        Index("idx_service_requests_fleet_company", "fleet_company_id"),
        Index("idx_service_requests_supplier_company", "supplier_company_id"),
        Index("idx_service_requests_submitted_by", "submitted_by_contact_id"),
        Index("idx_service_requests_assigned_to", "assigned_to_contact_id"),
        Index("idx_service_requests_supplier_address", text("lower(btrim(supplier_email))")),
        # Dashboard pages: one owner, one status, newest first, by keyset.
        Index(
            "idx_service_requests_supplier_status_created",
            "supplier_company_id",
            "status",
            text("created_at DESC"),
            text("request_id DESC"),
        ),
        Index(
            "idx_service_requests_fleet_status_created",
            "fleet_company_id",
            "status",
            text("created_at DESC"),
            text("request_id DESC"),
        ),
    )

    request_id: Mapped[uuid.UUID] = _uuid_pk()
    # v1 columns, kept for the record and for a rollback.
    created_by_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.user_id"))
    supplier_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.user_id"))
    # The address the request was first sent to (a routing fallback).
    supplier_email: Mapped[str | None] = mapped_column(Text)
    vehicle: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    priority: Mapped[str] = mapped_column(Text, server_default="normal")
    status: Mapped[str] = mapped_column(Text, server_default="new")
    created_at: Mapped[datetime] = mapped_column(server_default=text("now()"))
    updated_at: Mapped[datetime] = mapped_column(server_default=text("now()"))
    # Companies own the work; contacts only act on it.
    fleet_company_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("companies.company_id"))
    supplier_company_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("companies.company_id")
    )
    submitted_by_contact_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("contacts.contact_id")
    )
    assigned_to_contact_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("contacts.contact_id")
    )
    odometer: Mapped[int | None]
    location: Mapped[str | None] = mapped_column(Text)

    fleet_company: Mapped[Company | None] = relationship(foreign_keys=[fleet_company_id])
    supplier_company: Mapped[Company | None] = relationship(foreign_keys=[supplier_company_id])
    submitted_by: Mapped[Contact | None] = relationship(foreign_keys=[submitted_by_contact_id])
    assigned_to: Mapped[Contact | None] = relationship(foreign_keys=[assigned_to_contact_id])


class EventLog(Model):
    """The audit trail: one row per access or action."""

    __tablename__ = "event_log"
    __table_args__ = (
        Index("idx_event_log_company", "company_id"),
        Index("idx_event_log_contact", "contact_id"),
        Index("idx_event_log_created", text("created_at DESC")),
        Index("idx_event_log_type", "event_type"),
        Index("idx_event_log_request", "target_request_id", "created_at"),
        {"comment": "Audit trail - tracks every access and action"},
    )

    event_id: Mapped[uuid.UUID] = _uuid_pk()
    event_type: Mapped[str] = mapped_column(Text)
    company_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("companies.company_id", ondelete="CASCADE")
    )
    contact_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("contacts.contact_id", ondelete="SET NULL"),
        comment="Which emergent contact acted",
    )
    target_request_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("service_requests.request_id", ondelete="CASCADE")
    )
    # "metadata" is reserved on declarative classes, hence the trailing underscore.
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONB)
    created_at: Mapped[datetime | None] = mapped_column(server_default=text("now()"))

    contact: Mapped[Contact | None] = relationship(lazy="joined")


# expired: not sent, because the link it carried expired before it could go.
# withheld: the worker decided this address is sent nothing (see outbox.compose_at_delivery).
OUTBOX_STATUSES = ("pending", "sent", "failed", "expired", "withheld")


class OutboxMessage(Model):
    """A message to send, written in the same transaction as the change that causes it.

    The delivery worker (``flask fleetos deliver``) sends it, so a message is
    never lost to a slow or absent SMTP server, and no web request waits on
    one. Bodies are cleared once it is sent or expired: they hold sign-in links.
    """

    __tablename__ = "outbox_messages"
    __table_args__ = (
        CheckConstraint(_in("status", OUTBOX_STATUSES), name="status"),
        Index(
            "idx_outbox_messages_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
    )

    message_id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    kind: Mapped[str] = mapped_column(Text)
    recipient: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    text_body: Mapped[str | None] = mapped_column(Text)
    html_body: Mapped[str | None] = mapped_column(Text)
    # Makes "at most one of these" a database fact (the daily link per day).
    dedupe_key: Mapped[str | None] = mapped_column(Text, unique=True)
    status: Mapped[str] = mapped_column(Text, server_default="pending")
    attempts: Mapped[int] = mapped_column(server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(server_default=text("now()"))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=text("now()"))
    sent_at: Mapped[datetime | None]
    # The Message-ID header, fixed when queued: every attempt sends the same
    # one, so a receiver can drop the duplicate of an at-least-once delivery.
    email_message_id: Mapped[str | None] = mapped_column(Text)
    # Not sent after this (the link inside has expired); none: no deadline.
    expires_at: Mapped[datetime | None]
    # For a message the worker composes at delivery (no body yet): what it needs
    # to decide what, if anything, the recipient is sent. Never a secret.
    context: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class UsedLinkToken(Model):
    """The id of every link that has been used: a link works once."""

    __tablename__ = "used_link_tokens"

    jti: Mapped[str] = mapped_column(Text, primary_key=True)
    purpose: Mapped[str] = mapped_column(Text)
    contact_value: Mapped[str] = mapped_column(Text)
    used_at: Mapped[datetime] = mapped_column(server_default=text("now()"))


class RequestStatusCount(Model):
    """How many requests a company has per status, on its side (fleet or supplier).

    Maintained by a trigger on service_requests (migration 0005), so reading
    the dashboard's counts costs five rows, however much work a company has.
    """

    __tablename__ = "request_status_counts"
    __table_args__ = (
        CheckConstraint(_in("side", COMPANY_TYPES), name="side"),
        {
            "comment": (
                "Requests per company, side and status; kept exact by a trigger on service_requests"
            )
        },
    )

    company_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("companies.company_id", ondelete="CASCADE"), primary_key=True
    )
    side: Mapped[str] = mapped_column(Text, primary_key=True)
    status: Mapped[str] = mapped_column(Text, primary_key=True)
    n: Mapped[int]


# What attachments are stored and served as (fleetos/attachments/content.py decides).
ATTACHMENT_TYPES = ("image/jpeg", "image/png", "image/webp", "application/pdf")
SHA256_HEX = "'^[0-9a-f]{64}$'"


class Attachment(Model):
    """A photo or document on a request, carried by its creation or by a note.

    The bytes live in the attachment storage (``ATTACHMENT_STORAGE``) under their
    SHA-256; this row, written in the same transaction as the note or request,
    is what makes them part of the request (and what ``flask fleetos attachments
    gc`` keeps).
    """

    __tablename__ = "attachments"
    __table_args__ = (
        CheckConstraint(_in("content_type", ATTACHMENT_TYPES), name="content_type"),
        CheckConstraint("size_bytes > 0", name="size_bytes"),
        CheckConstraint(f"sha256 ~ {SHA256_HEX}", name="sha256"),
        CheckConstraint(f"thumbnail_sha256 ~ {SHA256_HEX}", name="thumbnail_sha256"),
        Index("idx_attachments_request", "request_id", "created_at"),
        Index("idx_attachments_event", "event_id"),
        # gc asks, for each stored object, whether any row still needs it.
        Index("idx_attachments_sha256", "sha256"),
        Index("idx_attachments_thumbnail_sha256", "thumbnail_sha256"),
        {"comment": "Photos and documents on requests; the bytes are in attachment storage"},
    )

    attachment_id: Mapped[uuid.UUID] = _uuid_pk()
    request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("service_requests.request_id", ondelete="CASCADE")
    )
    # The note (or the request's creation) that carried it.
    event_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("event_log.event_id", ondelete="SET NULL")
    )
    # Who added it: a contact of this company.
    company_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("companies.company_id", ondelete="CASCADE")
    )
    contact_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("contacts.contact_id", ondelete="SET NULL")
    )
    filename: Mapped[str] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(Text)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(Text)
    thumbnail_sha256: Mapped[str | None] = mapped_column(Text)
    width: Mapped[int | None]
    height: Mapped[int | None]
    channel: Mapped[str] = mapped_column(Text, server_default="web")
    created_at: Mapped[datetime] = mapped_column(server_default=text("now()"))

    contact: Mapped[Contact | None] = relationship(lazy="joined")

    @property
    def is_image(self) -> bool:
        return self.content_type.startswith("image/")

    @property
    def thumbnail_size(self) -> tuple[int, int] | None:
        """The thumbnail's width and height (it fits in 320 x 320), for the page's layout."""
        if not (self.width and self.height):
            return None
        scale = min(1.0, 320 / max(self.width, self.height))
        return max(1, round(self.width * scale)), max(1, round(self.height * scale))


class WebSession(Model):
    """A signed-in browser: its cookie carries ``session_id``, checked on every request.

    Signing out ends it (``ended_at``), so a copy of the cookie taken before
    is refused from then on; "sign out on all devices" ends every one of a
    contact's sessions. A session also ends ``SESSION_LIFETIME_DAYS`` after
    sign-in (``expires_at``).
    """

    __tablename__ = "web_sessions"
    __table_args__ = (
        Index("idx_web_sessions_contact", "contact_id", postgresql_where=text("ended_at IS NULL")),
        Index("idx_web_sessions_expires", "expires_at"),
    )

    session_id: Mapped[uuid.UUID] = _uuid_pk()
    contact_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("contacts.contact_id", ondelete="CASCADE")
    )
    created_at: Mapped[datetime] = mapped_column(server_default=text("now()"))
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    # Shown on the company page ("signed in on 2 devices"); never used to decide anything.
    user_agent: Mapped[str | None] = mapped_column(Text)

    contact: Mapped[Contact] = relationship(lazy="joined")

    @classmethod
    def is_open(cls) -> ColumnElement[bool]:
        """SQL: not signed out and not past its lifetime (the one test of a live session)."""
        return and_(cls.ended_at.is_(None), cls.expires_at > func.now())


class Invitation(Model):
    """A colleague invited into a company; its link works while it is not revoked."""

    __tablename__ = "invitations"
    __table_args__ = (
        Index("idx_invitations_company", "company_id", "created_at"),
        Index("idx_invitations_address", "address"),
    )

    invitation_id: Mapped[uuid.UUID] = _uuid_pk()
    company_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("companies.company_id", ondelete="CASCADE")
    )
    address: Mapped[str] = mapped_column(Text)
    display_name: Mapped[str | None] = mapped_column(Text)
    invited_by_contact_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("contacts.contact_id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(server_default=text("now()"))
    accepted_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_by_contact_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("contacts.contact_id", ondelete="SET NULL")
    )

    invited_by: Mapped[Contact | None] = relationship(
        foreign_keys=[invited_by_contact_id], lazy="joined"
    )

    @property
    def is_open(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None


class CompanyRecipient(Model):
    """An address a company has written to (a request, an invitation), and since when.

    A company may write to only so many *new* addresses a day
    (``NEW_ADDRESSES_PER_DAY``): FleetOS is not a relay for mail to strangers.
    """

    __tablename__ = "company_recipients"
    __table_args__ = (Index("idx_company_recipients_first", "company_id", "first_written_at"),)

    company_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("companies.company_id", ondelete="CASCADE"), primary_key=True
    )
    address: Mapped[str] = mapped_column(Text, primary_key=True)
    first_written_at: Mapped[datetime] = mapped_column(server_default=text("now()"))


class ReplyAddress(Model):
    """Where a reply to mail about a request goes: ``reply+<token>@INBOUND_MAIL_DOMAIN``.

    One row per request and address FleetOS mailed about it; the token is the
    row's id and a signature (``fleetos/messaging/reply_to.py``), so it fits a
    mail address and can be revoked. ``company_id`` is the company the address
    acts for on the request. A reply address never signs anyone in.
    """

    __tablename__ = "reply_addresses"
    __table_args__ = (
        Index(
            "uq_reply_addresses_live",
            "request_id",
            "address",
            unique=True,
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )

    reply_address_id: Mapped[str] = mapped_column(Text, primary_key=True)
    request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("service_requests.request_id", ondelete="CASCADE")
    )
    address: Mapped[str] = mapped_column(Text)
    company_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("companies.company_id", ondelete="CASCADE")
    )
    created_at: Mapped[datetime] = mapped_column(server_default=text("now()"))
    revoked_at: Mapped[datetime | None]

    service_request: Mapped[ServiceRequest] = relationship(lazy="joined")
    company: Mapped[Company] = relationship(lazy="joined")


class InboundMessage(Model):
    """A reply processed once: its Message-ID (by channel), however often it arrives."""

    __tablename__ = "inbound_messages"
    __table_args__ = (Index("idx_inbound_messages_request", "request_id"),)

    message_key: Mapped[str] = mapped_column(Text, primary_key=True)
    channel: Mapped[str] = mapped_column(Text)
    request_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("service_requests.request_id", ondelete="CASCADE")
    )
    outcome: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(server_default=text("now()"))


HELD_REPLY_DECISIONS = ("accepted", "discarded")


class HeldReply(Model):
    """A reply from another address than the one its reply address was sent to.

    Held until that address's owner accepts it as their note or discards it;
    its files (``attachments``: what was taken in) wait in attachment storage.
    """

    __tablename__ = "held_replies"
    __table_args__ = (
        CheckConstraint(_in("decision", HELD_REPLY_DECISIONS), name="decision"),
        Index("idx_held_replies_request", "request_id"),
        Index("idx_held_replies_reply_address", "reply_address_id"),
    )

    held_reply_id: Mapped[uuid.UUID] = _uuid_pk()
    request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("service_requests.request_id", ondelete="CASCADE")
    )
    reply_address_id: Mapped[str] = mapped_column(
        ForeignKey("reply_addresses.reply_address_id", ondelete="CASCADE")
    )
    channel: Mapped[str] = mapped_column(Text)
    sender: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text, server_default="")
    attachments: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(server_default=text("now()"))
    decided_at: Mapped[datetime | None]
    decision: Mapped[str | None] = mapped_column(Text)

    reply_address: Mapped[ReplyAddress] = relationship(lazy="joined")


class LinkCredential(Model):
    """What a message carried beside its signed link: a one-time code, a short key, or both.

    The code (stored hashed) and the short link (``BASE_URL/s/<short_key>``)
    both resolve to the signed link kept in ``token`` until it is used: link,
    code and short link are one credential, burnt together through the link's
    id (``jti``) in ``used_link_tokens``. A code dies after 5 wrong tries.
    """

    __tablename__ = "link_credentials"
    __table_args__ = (
        Index("idx_link_credentials_contact", "contact_value", "expires_at"),
        Index("idx_link_credentials_expires", "expires_at"),
    )

    jti: Mapped[str] = mapped_column(Text, primary_key=True)
    contact_value: Mapped[str] = mapped_column(Text)
    # The signed link; cleared once used (nothing secret is kept after use).
    token: Mapped[str | None] = mapped_column(Text)
    code_hash: Mapped[str | None] = mapped_column(Text)
    short_key: Mapped[str | None] = mapped_column(Text, unique=True)
    wrong_tries: Mapped[int] = mapped_column(server_default=text("0"))
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(server_default=text("now()"))


class SmsRequestRef(Model):
    """The short ref an SMS about a request carries ("Ref 4821"), per number and request.

    A reply that names it reaches that request; refs are per number, so a
    guessed ref reaches nothing of anyone else's. A row also says that this
    request was sent to this number (which emerges as a contact on its first reply).
    """

    __tablename__ = "sms_request_refs"
    __table_args__ = (
        UniqueConstraint("address", "ref"),
        Index("idx_sms_request_refs_request", "request_id"),
    )

    address: Mapped[str] = mapped_column(Text, primary_key=True)
    request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("service_requests.request_id", ondelete="CASCADE"), primary_key=True
    )
    ref: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=text("now()"))


class SmsOptOut(Model):
    """A number that texted STOP: it is sent no SMS until it texts START."""

    __tablename__ = "sms_opt_outs"

    address: Mapped[str] = mapped_column(Text, primary_key=True)
    opted_out_at: Mapped[datetime] = mapped_column(server_default=text("now()"))


class SmsReceived(Model):
    """The gateway's id of an SMS reply acted on: one posted twice is acted on once."""

    __tablename__ = "sms_received"

    gateway_id: Mapped[str] = mapped_column(Text, primary_key=True)
    received_at: Mapped[datetime] = mapped_column(server_default=text("now()"))
