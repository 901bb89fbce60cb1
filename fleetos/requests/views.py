"""Service requests: create one, see one, move it along, assign it, discuss it."""

from __future__ import annotations

import uuid

from flask import Blueprint, flash, g, redirect, render_template, request, url_for

from ..auth.session import login_required
from ..auth.tokens import safe_next
from ..dashboard.views import row_update
from ..errors import render_error
from ..extensions import db
from ..htmx import is_htmx
from . import service
from .service import RequestError, RequestForm

bp = Blueprint("requests", __name__, url_prefix="/requests")


@bp.get("/new")
@login_required
def new():
    """Show the form for a new service request (fleets only)."""
    if not g.company.is_fleet:
        return render_error(403, message="Only fleet companies send service requests.")
    return _new_form(RequestForm())


@bp.post("")
@login_required
def create():
    """Send a new service request to a supplier."""
    form = RequestForm.from_mapping(request.form)
    try:
        created = service.create_request(g.contact, form)
    except RequestError as exc:
        db.session.rollback()  # nothing of a refused request is written
        if exc.status == 403:
            return render_error(403, message=exc.message)
        return _new_form(form, message=exc.message), exc.status
    flash(f"Request sent to {created.supplier_company.name}.", "success")
    return redirect(url_for(".show", request_id=created.request_id), code=303)


def _new_form(form: RequestForm, message: str | None = None):
    suppliers = service.suppliers_worked_with(g.company.company_id)
    return render_template("requests/new.html", form=form, suppliers=suppliers, message=message)


@bp.get("/<uuid:request_id>")
@login_required
def show(request_id: uuid.UUID):
    """Show a request, what this contact may do with it, and its timeline."""
    try:
        found = service.visible_request(g.contact, request_id)
    except RequestError as exc:
        return render_error(exc.status)
    service.record_view(g.contact, found)
    return _page(found)


def _page(found, *, error: RequestError | None = None, typed: dict | None = None):
    return render_template(
        "requests/show.html",
        req=found,
        actions=service.available_actions(g.contact, found),
        colleagues=service.colleagues(g.contact)
        if service.is_supplier_of(g.contact, found)
        else [],
        timeline=service.timeline(found),
        error=error,
        typed=typed or {},
    )


@bp.post("/<uuid:request_id>/transition")
@login_required
def transition(request_id: uuid.UUID):
    """Move the request to the status in ``to`` (``reason`` when declining)."""
    to = request.form.get("to", "")
    try:
        service.transition(
            g.contact,
            request_id,
            to,
            reason=request.form.get("reason", ""),
            seen_status=request.form.get("from") or None,
        )
    except RequestError as exc:
        return _refused(request_id, exc)
    return _done(request_id, f"Request {service.STATUS_VERBS[to]}.")


@bp.post("/<uuid:request_id>/assign")
@login_required
def assign(request_id: uuid.UUID):
    """Assign the request to a contact of the supplier company."""
    try:
        assigned = service.assign(g.contact, request_id, request.form.get("contact_id", ""))
    except RequestError as exc:
        return _refused(request_id, exc)
    return _done(request_id, f"Assigned to {assigned.assigned_to.label}.")


@bp.post("/<uuid:request_id>/notes")
@login_required
def add_note(request_id: uuid.UUID):
    """Add a note to the request's thread."""
    try:
        service.add_note(g.contact, request_id, request.form.get("body", ""))
    except RequestError as exc:
        return _refused(request_id, exc)
    flash("Note added.", "success")
    return redirect(url_for(".show", request_id=request_id) + "#timeline", code=303)


def _from_dashboard_row() -> bool:
    return request.form.get("view") == "row"


def _done(request_id: uuid.UUID, message: str):
    """After an action: the updated row for the dashboard, else back where the person was."""
    if _from_dashboard_row() and is_htmx():
        return row_update(request_id)
    flash(message, "success")
    default = url_for(".show", request_id=request_id)
    return redirect(safe_next(request.form.get("back"), default=default), code=303)


def _refused(request_id: uuid.UUID, exc: RequestError):
    """Show the refusal where the person acted, keeping what they typed; 404 reveals nothing."""
    db.session.rollback()
    if exc.status == 404:
        return render_error(404)
    if _from_dashboard_row():
        if is_htmx():
            return row_update(request_id, error=exc.message, status=exc.status)
        flash(exc.message, "error")
        return redirect(safe_next(request.form.get("back"), default="/dashboard"), code=303)
    found = service.visible_request(g.contact, request_id)
    return _page(found, error=exc, typed=request.form.to_dict()), exc.status
