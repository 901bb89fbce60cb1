"""The dashboard's list: a company's requests by ownership, one keyset page at a time.

Every query starts from the signed-in contact's company and its side (a
supplier sees work sent to it, a fleet the work it sent); the contact only
matters for "assigned to me". Rows are plain SQL rows, not ORM objects: a
page is read and rendered, never changed.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Select, func, or_, select, tuple_

from ..clock import as_utc
from ..extensions import db
from ..lifecycle import INITIAL_STATUS, PRIORITIES, STATUSES
from ..models import Attachment, Company, Contact, EventLog, ServiceRequest

PAGE_SIZE = 25
SEARCH_MAX = 100


@dataclass(frozen=True)
class Cursor:
    """A keyset position: the (created_at, request_id) of the last row shown."""

    created_at: datetime
    request_id: uuid.UUID

    def encode(self) -> str:
        return f"{self.created_at.isoformat()}_{self.request_id}"

    @classmethod
    def decode(cls, raw: str | None) -> Cursor | None:
        if not raw:
            return None
        when, _, rid = raw.rpartition("_")
        try:
            return cls(as_utc(datetime.fromisoformat(when)), uuid.UUID(rid))
        except (ValueError, OverflowError):  # not one FleetOS made: the list's top
            return None


@dataclass(frozen=True)
class Filters:
    """What the list shows; lives in the URL so it can be bookmarked and shared."""

    status: str = INITIAL_STATUS
    priority: str = ""
    mine: bool = False
    q: str = ""

    @classmethod
    def from_args(cls, args: Any) -> Filters:
        status = args.get("status", INITIAL_STATUS)
        priority = args.get("priority", "")
        return cls(
            status=status if status in STATUSES else INITIAL_STATUS,
            priority=priority if priority in PRIORITIES else "",
            mine=args.get("mine") in ("1", "on", "true"),
            q=" ".join(args.get("q", "").split())[:SEARCH_MAX],
        )

    def params(self, **changes: Any) -> dict[str, str]:
        """Query parameters for these filters (defaults left out), with ``changes`` applied."""
        f = replace(self, **changes)
        params = {"status": f.status}
        if f.priority:
            params["priority"] = f.priority
        if f.mine:
            params["mine"] = "1"
        if f.q:
            params["q"] = f.q
        return params

    def query(self, **changes: Any) -> str:
        return urlencode(self.params(**changes))

    @property
    def narrowed(self) -> bool:
        return bool(self.priority or self.mine or self.q)


@dataclass(frozen=True)
class Page:
    rows: Sequence[Any]
    next_cursor: Cursor | None


# Built once: making these aliases (and a fresh cache key for them) on every
# request cost about half a millisecond of CPU, a third of the list's overhead.
_R = ServiceRequest.__table__.alias("r")
_OTHER = Company.__table__.alias("other")
_ASSIGNEE = Contact.__table__.alias("assignee")
# The paperclip's count: one lookup in idx_attachments_request per row shown.
_ATTACHMENTS = Attachment.__table__.alias("files")


def rows_query(contact: Contact, filters: Filters | None) -> Select[Any]:
    """The list's SQL: this company's requests (in one status, unless ``filters`` is None)."""
    company = contact.company
    r, other, assignee = _R, _OTHER, _ASSIGNEE
    mine, theirs = (
        (r.c.supplier_company_id, r.c.fleet_company_id)
        if company.is_supplier
        else (r.c.fleet_company_id, r.c.supplier_company_id)
    )
    query = (
        select(
            r.c.request_id,
            r.c.vehicle,
            r.c.title,
            r.c.priority,
            r.c.status,
            r.c.created_at,
            r.c.updated_at,
            r.c.assigned_to_contact_id,
            # Both owners: what a contact may do to a row depends on its side.
            r.c.fleet_company_id,
            r.c.supplier_company_id,
            other.c.name.label("other_company"),
            # Shown beside the name (company_label), so a look-alike name cannot pass.
            other.c.email_domain.label("other_company_domain"),
            func.coalesce(assignee.c.display_name, assignee.c.contact_value).label("assignee"),
            select(func.count())
            .where(_ATTACHMENTS.c.request_id == r.c.request_id)
            .scalar_subquery()
            .label("attachment_count"),
        )
        .select_from(
            r.outerjoin(other, other.c.company_id == theirs).outerjoin(
                assignee, assignee.c.contact_id == r.c.assigned_to_contact_id
            )
        )
        .where(mine == company.company_id)
        .order_by(r.c.created_at.desc(), r.c.request_id.desc())
    )
    if filters is None:
        return query
    query = query.where(r.c.status == filters.status)
    if filters.priority:
        query = query.where(r.c.priority == filters.priority)
    if filters.mine:
        query = query.where(r.c.assigned_to_contact_id == contact.contact_id)
    if filters.q:
        pattern = (
            "%" + filters.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        )
        query = query.where(or_(r.c.title.ilike(pattern), r.c.vehicle.ilike(pattern)))
    return query


def _position(query: Select[Any]) -> Any:
    columns = query.selected_columns
    return tuple_(columns.created_at, columns.request_id)


def list_page(
    contact: Contact, filters: Filters, after: Cursor | None = None, limit: int = PAGE_SIZE
) -> Page:
    """One page of rows after ``after``; one extra row is read to know if more exist."""
    query = rows_query(contact, filters)
    if after is not None:
        query = query.where(_position(query) < tuple_(after.created_at, after.request_id))
    rows = db.session.execute(query.limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, Cursor(rows[-1].created_at, rows[-1].request_id) if more else None)


def one_row(contact: Contact, request_id: uuid.UUID) -> Any | None:
    """One request's row as the list shows it, whatever its status (None if not this company's)."""
    query = rows_query(contact, None)
    return db.session.execute(query.where(query.selected_columns.request_id == request_id)).first()


# A transaction's events carry its start time, so one that began before a
# poll and committed after it would slip through an exact window.
POLL_OVERLAP = timedelta(seconds=30)


@dataclass(frozen=True)
class Changes:
    new_rows: Sequence[Any]  # newer than the top of the list, newest first
    updated: Sequence[Any]  # changed rows that still belong in the list
    gone: list[uuid.UUID]  # changed rows that no longer do


def changes_since(
    contact: Contact, filters: Filters, since: datetime | None, newest: Cursor | None
) -> Changes:
    """What one poll applies to a list whose top row is ``newest``, last polled at ``since``."""
    query = rows_query(contact, filters)
    if newest is not None:
        query = query.where(_position(query) > tuple_(newest.created_at, newest.request_id))
    new_rows = db.session.execute(query.limit(PAGE_SIZE)).all()
    if since is None:
        return Changes(new_rows, [], [])
    touched = (
        select(EventLog.target_request_id)
        .where(EventLog.created_at > since - POLL_OVERLAP, EventLog.target_request_id.is_not(None))
        .distinct()
    )
    everything = rows_query(contact, None)
    changed = db.session.execute(
        everything.where(everything.selected_columns.request_id.in_(touched)).limit(200)
    ).all()
    matching = rows_query(contact, filters)
    still_in = set(
        db.session.scalars(
            matching.with_only_columns(matching.selected_columns.request_id).where(
                matching.selected_columns.request_id.in_([row.request_id for row in changed])
            )
        )
    )
    fresh_ids = {row.request_id for row in new_rows}
    updated = [
        row for row in changed if row.request_id in still_in and row.request_id not in fresh_ids
    ]
    gone = [row.request_id for row in changed if row.request_id not in still_in]
    return Changes(new_rows, updated, gone)
