"""The daily digest: each recently active supplier contact gets today's dashboard link."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from .. import queries
from ..clock import utcnow
from ..extensions import db
from ..lifecycle import OPEN_STATUSES
from ..messaging.links import Purpose, link_url, make_token, site_path
from ..models import Company, Contact
from ..outbox import queue_mail
from ..unit_of_work import atomic

ACTIVE_WITHIN = timedelta(days=30)


@atomic
def send_daily_links(*, now: datetime | None = None) -> int:
    """Queue today's dashboard link for each supplier contact active in the last 30 days.

    The outbox's unique ``dedupe_key`` (contact and UTC date) makes a second
    run on the same day add nothing. Counts come from ``request_status_counts``
    (the dashboard's own, kept exact by a trigger). Returns how many were queued.
    """
    now = now or utcnow()
    contacts = db.session.scalars(
        select(Contact)
        .join(Company, Company.company_id == Contact.company_id)
        .where(Company.company_type == "supplier", Contact.last_seen_at >= now - ACTIVE_WITHIN)
        .order_by(Contact.company_id, Contact.contact_id)
    ).all()
    counts = queries.status_counts_for({c.company_id for c in contacts}, "supplier")
    queued = 0
    for contact in contacts:
        token = make_token(
            Purpose.DAILY_ACCESS,
            contact.contact_value,
            company_id=contact.company_id,
            next_path=site_path("dashboard.index"),
        )
        open_counts = {status: counts[contact.company_id][status] for status in OPEN_STATUSES}
        message_id = queue_mail(
            "daily_access",
            contact.contact_value,
            f"FleetOS today: {sum(open_counts.values())} open requests for {contact.company.name}",
            dedupe_key=f"daily-access:{contact.contact_id}:{now.date().isoformat()}",
            link=link_url(token),
            contact=contact,
            company=contact.company,
            counts=open_counts,
        )
        queued += message_id is not None
    return queued
