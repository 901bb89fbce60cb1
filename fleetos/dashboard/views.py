"""A company's work at a glance: counts per status, a live list, the company page.

Every full page includes the very partials that the htmx endpoints return,
and every htmx link and action also works as a plain link or form.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, current_app, g, redirect, request, url_for

from ..auth.session import login_required
from ..htmx import fragment, is_htmx, page_or_fragment
from ..models import TRANSITIONS
from ..requests.service import ACTION_LABELS
from . import service
from .service import Cursor, Filters

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")


@bp.get("")
@login_required
def index():
    """Show the company's requests in the chosen status, with counts and filters."""
    filters = Filters.from_args(request.args)
    after = Cursor.decode(request.args.get("after"))
    page = service.list_page(g.contact, filters, after)
    return page_or_fragment(
        "dashboard/index.html", "dashboard/_body.html", **_list_context(filters, page, after)
    )


@bp.get("/rows")
@login_required
def rows():
    """The next page of rows (the "load older" button)."""
    filters = Filters.from_args(request.args)
    after = Cursor.decode(request.args.get("after"))
    if not is_htmx():  # without JavaScript, the same page as a full page
        return redirect(url_for(".index", **request.args), code=303)
    page = service.list_page(g.contact, filters, after)
    return fragment("dashboard/_rows.html", filters=filters, page=page)


@bp.get("/counts")
@login_required
def counts():
    """The count tabs on their own."""
    filters = Filters.from_args(request.args)
    return fragment("dashboard/_counts.html", filters=filters, counts=service.counts(g.company))


@bp.get("/updates")
@login_required
def updates():
    """What changed since the last poll: new rows on top, changed rows, counts."""
    filters = Filters.from_args(request.args)
    newest = Cursor.decode(request.args.get("newest"))
    since = _parse_time(request.args.get("since"))
    changes = service.changes_since(g.contact, filters, since, newest)
    if changes.new_rows:
        top = changes.new_rows[0]
        newest = Cursor(top.created_at, top.request_id)
    return fragment(
        "dashboard/_updates.html",
        filters=filters,
        changes=changes,
        counts=service.counts(g.company),
        poll=_poll(filters, newest),
    )


@bp.get("/company")
@login_required
def company():
    """The company: its contacts as they emerged, inviting a colleague, and its activity."""
    return page_or_fragment(
        "dashboard/company.html",
        "dashboard/_activity.html",
        contacts=service.company_contacts(g.company),
        events=service.activity(g.company),
    )


def row_update(request_id: uuid.UUID, *, error: str | None = None, status: int = 200):
    """The fragment a row action answers with: the row, and the counts out of band."""
    row = service.one_row(g.contact, request_id)
    return fragment(
        "dashboard/_row_update.html",
        http_status=status,
        row=row,
        error=error,
        filters=Filters.from_args(request.form),
        counts=service.counts(g.company),
    )


def _list_context(filters: Filters, page: service.Page, after: Cursor | None) -> dict[str, Any]:
    newest = Cursor(page.rows[0].created_at, page.rows[0].request_id) if page.rows else None
    return {
        "filters": filters,
        "page": page,
        "after": after,
        "counts": service.counts(g.company),
        # Only the first page polls: older pages have nothing new at their top.
        "poll": _poll(filters, newest) if after is None else None,
    }


def _poll(filters: Filters, newest: Cursor | None) -> dict[str, Any]:
    params = filters.params()
    params["since"] = service.database_now().isoformat()
    if newest is not None:
        params["newest"] = newest.encode()
    return {
        "url": url_for(".updates", **params),
        "seconds": current_app.config["DASHBOARD_POLL_SECONDS"],
    }


def _parse_time(raw: str | None) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(raw) if raw else None
    except ValueError:
        return None
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed and parsed.tzinfo else parsed


@bp.app_template_global()
def row_actions(row: Any) -> list[tuple[str, str]]:
    """The lifecycle steps a supplier may take on a row now."""
    return [
        (to, ACTION_LABELS[to]) for to in ACTION_LABELS if to in TRANSITIONS.get(row.status, ())
    ]


@bp.app_template_filter("age")
def age(moment: datetime) -> str:
    """How long ago, the way people say it in a workshop: 5 min, 3 h, 2 d."""
    seconds = (datetime.now(UTC).replace(tzinfo=None) - moment).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return "just now"
