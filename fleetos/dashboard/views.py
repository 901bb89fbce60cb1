"""A company's work at a glance: counts per status, a live list, the company page.

Every full page includes the very partials that the htmx endpoints return,
and every htmx link and action also works as a plain link or form. The rows'
actions are the dashboard's own endpoints: with htmx they answer with the row
(and the counts, out of band), without it they go back to the same list.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, current_app, flash, g, redirect, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from .. import queries
from ..actions import access, domains
from ..actions import requests as act
from ..auth.forms import InviteForm
from ..auth.session import login_required
from ..clock import as_utc, database_now
from ..domain_errors import Conflict, DomainError, Invalid, NotFound
from ..errors import UnreadableInput, http_status
from ..forms import AssignForm, TransitionForm
from ..htmx import fragment, is_htmx, page_or_fragment
from ..messaging.links import safe_next
from .forms import CheckDomainForm, ClaimDomainForm
from .queries import Cursor, Filters, Page, changes_since, list_page, one_row

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")


@bp.get("")
@login_required
def index() -> Response:
    """Show the company's requests in the chosen status, with counts and filters."""
    filters = Filters.from_args(request.args)
    after = Cursor.decode(request.args.get("after"))
    page = list_page(g.contact, filters, after)
    return page_or_fragment(
        "dashboard/index.html", "dashboard/_body.html", **_list_context(filters, page, after)
    )


@bp.get("/rows")
@login_required
def rows() -> BaseResponse:
    """The next page of rows (the "load older" button)."""
    filters = Filters.from_args(request.args)
    after = Cursor.decode(request.args.get("after"))
    if not is_htmx():  # without JavaScript, the same page as a full page
        same_page: dict[str, Any] = request.args.to_dict()
        return redirect(url_for(".index", **same_page), code=303)
    page = list_page(g.contact, filters, after)
    return fragment("dashboard/_rows.html", filters=filters, page=page)


@bp.get("/counts")
@login_required
def counts() -> Response:
    """The count tabs on their own."""
    filters = Filters.from_args(request.args)
    return fragment(
        "dashboard/_counts.html", filters=filters, counts=queries.status_counts(g.company)
    )


@bp.get("/updates")
@login_required
def updates() -> Response:
    """What changed since the last poll: new rows on top, changed rows, counts."""
    filters = Filters.from_args(request.args)
    newest = Cursor.decode(request.args.get("newest"))
    since = _parse_time(request.args.get("since"))
    changes = changes_since(g.contact, filters, since, newest)
    if changes.new_rows:
        top = changes.new_rows[0]
        newest = Cursor(top.created_at, top.request_id)
    return fragment(
        "dashboard/_updates.html",
        filters=filters,
        changes=changes,
        counts=queries.status_counts(g.company),
        poll=_poll(filters, newest),
    )


@bp.post("/rows/<uuid:request_id>/transition")
@login_required
def row_transition(request_id: uuid.UUID) -> BaseResponse:
    """Take a lifecycle step from a row."""
    form = TransitionForm()
    return _row_action(
        request_id,
        form.back.data,
        lambda: (
            act.transition(
                g.contact,
                request_id,
                form.to.data or "",
                reason=form.reason.data or "",
                seen=form.seen.data or None,
            ).step.verb
        ),
        done="Request {}.",
    )


@bp.post("/rows/<uuid:request_id>/assign")
@login_required
def row_assign(request_id: uuid.UUID) -> BaseResponse:
    """Assign a row's request (to oneself: the row's button)."""
    form = AssignForm()
    return _row_action(
        request_id,
        form.back.data,
        lambda: act.assign(g.contact, request_id, form.assignee_id).assignee.label,
        done="Assigned to {}.",
    )


def _row_action(
    request_id: uuid.UUID, back: str | None, action: Callable[[], str], *, done: str
) -> BaseResponse:
    """Run a row's action; answer with the row (htmx) or go back to the list (a plain form).

    A refusal shows on the row, or as a message on the list; not found is
    answered like everywhere else.
    """
    try:
        outcome = action()
    except NotFound:
        raise
    except DomainError as refusal:
        if is_htmx():
            return _row_fragment(request_id, error=refusal.message, status=http_status(refusal))
        flash(refusal.message, "error")
        return redirect(safe_next(back, default=url_for(".index")), code=303)
    if is_htmx():
        return _row_fragment(request_id)
    flash(done.format(outcome), "success")
    # Without a list to go back to, the request itself.
    default = url_for("requests.show", request_id=request_id)
    return redirect(safe_next(back, default=default), code=303)


def _row_fragment(
    request_id: uuid.UUID, *, error: str | None = None, status: int = 200
) -> Response:
    """The row in place, and the counts out of band."""
    return fragment(
        "dashboard/_row_update.html",
        http_status=status,
        row=one_row(g.contact, request_id),
        error=error,
        filters=Filters.from_args(request.form),
        counts=queries.status_counts(g.company),
    )


@bp.get("/company")
@login_required
def company() -> Response:
    """The company: its contacts as they emerged, inviting a colleague, invitations, its
    domain, this contact's sign-ins, and its activity."""
    return _company_page()


def _company_page(*, http_status: int = 200, claim_form: ClaimDomainForm | None = None) -> Response:
    """The company page (a refused form shown again keeps what was typed)."""
    return page_or_fragment(
        "dashboard/company.html",
        "dashboard/_activity.html",
        http_status=http_status,
        contacts=queries.company_contacts(g.company),
        events=queries.activity(g.company),
        invite_form=InviteForm(formdata=None),
        **_domain_section(claim_form),
        invitations=queries.open_invitations(g.company),
        sessions=access.open_sessions(g.contact),
    )


# -- claiming the company's mail domain (templates/dashboard/_domain.html) --------------------


def _domain_section(claim_form: ClaimDomainForm | None = None) -> dict[str, Any]:
    if claim_form is None:
        claim_form = ClaimDomainForm(formdata=None, domain=domains.suggested_domain(g.contact))
    return {"claims": domains.claims_of(g.company), "claim_form": claim_form}


@bp.post("/company/domain")
@login_required
def claim_domain() -> BaseResponse:
    """Claim a mail domain: show the TXT record that proves it."""
    form = ClaimDomainForm()
    try:
        claim = domains.claim_domain(g.contact, form.domain.data or "")
    except Invalid as refusal:
        form.refused(refusal)
        return _company_page(http_status=422, claim_form=form)
    flash(f"Publish the TXT record below on {claim.domain}, then check it.", "info")
    return redirect(url_for(".company", _anchor="domain"), code=303)


@bp.post("/company/domain/check")
@login_required
def check_domain() -> BaseResponse:
    """Look the claimed domain's TXT record up now."""
    form = CheckDomainForm()
    try:
        checked = domains.check_claim(g.company, form.domain.data or "", contact=g.contact)
    except (Invalid, Conflict) as refusal:
        flash(refusal.message, "error")
    else:
        flash(checked.message, "success" if checked.verified else "info")
    return redirect(url_for(".company", _anchor="domain"), code=303)


def _list_context(filters: Filters, page: Page, after: Cursor | None) -> dict[str, Any]:
    newest = Cursor(page.rows[0].created_at, page.rows[0].request_id) if page.rows else None
    return {
        "filters": filters,
        "page": page,
        "after": after,
        "counts": queries.status_counts(g.company),
        # Only the first page polls: older pages have nothing new at their top.
        "poll": _poll(filters, newest) if after is None else None,
    }


def _poll(filters: Filters, newest: Cursor | None) -> dict[str, Any]:
    params: dict[str, Any] = filters.params()
    params["since"] = database_now().isoformat()
    if newest is not None:
        params["newest"] = newest.encode()
    return {
        "url": url_for(".updates", **params),
        "seconds": current_app.config["DASHBOARD_POLL_SECONDS"],
    }


# A poll's ``since`` is a time FleetOS gave the page; anything outside these is not.
EARLIEST_POLL = datetime(2000, 1, 1)
LATEST_POLL = datetime(9000, 1, 1)


def _parse_time(raw: str | None) -> datetime | None:
    """The time in a poll's ``since`` (none: the first poll); 400 for one FleetOS never sends."""
    if not raw:
        return None
    try:
        parsed = as_utc(datetime.fromisoformat(raw))
    except (ValueError, OverflowError):
        parsed = None
    if parsed is None or not EARLIEST_POLL <= parsed <= LATEST_POLL:
        raise UnreadableInput(
            "The dashboard asked for changes since a time it cannot have seen. Reload the page."
        )
    return parsed
