"""Service requests, as pages: send one, see one, and act on it from its page.

Views read the form, call one action, and show the outcome. Refusals the
page can show in place (someone acted first, a field to correct) are shown
there, keeping what was typed; the rest (not found, not allowed) are answered
by the one mapping in ``fleetos.errors``.
"""

from __future__ import annotations

import uuid

from flask import Blueprint, Response, flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse
from wtforms.fields.choices import SelectChoice

from .. import queries
from ..actions import attachments as files
from ..actions import requests as act
from ..auth.session import login_required
from ..domain_errors import Conflict, Invalid, TooMany
from ..errors import http_status, refusal_headers
from ..forms import AssignForm, NoteForm, TransitionForm
from ..htmx import fragment
from ..lifecycle import actions_for, side_of
from ..messaging.links import safe_next
from ..models import ServiceRequest
from ..uploads import accepts_uploads, file_response
from .forms import NewRequestForm

bp = Blueprint("requests", __name__, url_prefix="/requests")

Page = str | tuple[str, int] | tuple[str, int, dict[str, str]] | BaseResponse


@bp.get("/new")
@login_required
def new() -> Page:
    """Show the form for a new service request (fleets only)."""
    act.ensure_may_send(g.contact)
    return _new_form(NewRequestForm(formdata=None))


@bp.post("")
@login_required
@accepts_uploads
def create() -> Page:
    """Send a new service request (with photos and documents) to a supplier."""
    act.ensure_may_send(g.contact)  # before the form: a supplier is refused, not corrected
    form = NewRequestForm()
    if form.validate():
        try:
            created = act.create_request(
                g.contact, form.new_request(), attachments=form.attachable()
            )
        except TooMany as refusal:  # nothing was sent; the form keeps what was typed
            return _new_form(form, message=refusal.message), 429, refusal_headers(refusal)
        except Invalid as refusal:
            form.refused(refusal)
        else:
            flash(f"Request sent to {created.sent_to}.", "success")
            return redirect(
                url_for(".show", request_id=created.service_request.request_id), code=303
            )
    else:
        form.take_in_files()
    return _new_form(form, message="Check the highlighted fields."), 422


def _new_form(form: NewRequestForm, message: str | None = None) -> str:
    suppliers = queries.suppliers_worked_with(g.company.company_id)
    form.supplier.choices = [SelectChoice("", "Choose…")] + [
        SelectChoice(str(s.company_id), s.label) for s in suppliers
    ]
    return render_template("requests/new.html", form=form, suppliers=suppliers, message=message)


@bp.get("/<uuid:request_id>")
@login_required
def show(request_id: uuid.UUID) -> Page:
    """Show a request, what this contact may do with it, and its timeline."""
    found = queries.visible_request(g.contact, request_id)
    act.record_view(g.contact, found)
    return _page(found)


@bp.get("/<uuid:request_id>/timeline")
@login_required
def timeline(request_id: uuid.UUID) -> BaseResponse:
    """The timeline (and the status badges), for the page's poll: 204 if it is still the
    version ``seen``."""
    found = queries.visible_request(g.contact, request_id)
    events = queries.timeline(found)
    version = f"{len(events)}-{events[-1].event_id if events else ''}"
    if request.args.get("seen") == version:
        unchanged = Response(status=204)
        unchanged.vary.add("HX-Request")
        return unchanged
    return fragment(
        "requests/_timeline_update.html",
        service_request=found,
        timeline=events,
        attachments=queries.attachments_of(found),
    )


def _page(
    found: ServiceRequest,
    *,
    refusal: Conflict | Invalid | TooMany | None = None,
    note: NoteForm | None = None,
    transition: TransitionForm | None = None,
) -> str:
    supplier_side = side_of(found, g.contact) == "supplier"
    return render_template(
        "requests/show.html",
        service_request=found,
        steps=actions_for(found, g.contact),
        colleagues=queries.colleagues(g.contact) if supplier_side else [],
        timeline=queries.timeline(found),
        attachments=queries.attachments_of(found),
        refusal=refusal,
        note_form=note or NoteForm(formdata=None),
        transition_form=transition or TransitionForm(formdata=None),
    )


@bp.post("/<uuid:request_id>/transition")
@login_required
def transition(request_id: uuid.UUID) -> Page:
    """Move the request to the status in ``to`` (``reason`` when declining)."""
    if request.form.get("view") == "row":
        # A dashboard page from before rows had endpoints of their own: hand the
        # post (body and all) to the dashboard, which owns the row's answer.
        return redirect(url_for("dashboard.row_transition", request_id=request_id), code=307)
    form = TransitionForm()
    try:
        moved = act.transition(
            g.contact,
            request_id,
            form.to.data or "",
            reason=form.reason.data or "",
            seen=form.seen.data or None,
        )
    except (Conflict, Invalid) as refusal:
        return _refused(request_id, refusal, transition=form)
    return _done(request_id, f"Request {moved.step.verb}.", form.back.data)


@bp.post("/<uuid:request_id>/assign")
@login_required
def assign(request_id: uuid.UUID) -> Page:
    """Assign the request to a contact of the supplier company."""
    if request.form.get("view") == "row":  # see transition()
        return redirect(url_for("dashboard.row_assign", request_id=request_id), code=307)
    form = AssignForm()
    try:
        assigned = act.assign(g.contact, request_id, form.assignee_id)
    except (Conflict, Invalid) as refusal:
        return _refused(request_id, refusal)
    return _done(request_id, f"Assigned to {assigned.assignee.label}.", form.back.data)


@bp.post("/<uuid:request_id>/notes")
@login_required
@accepts_uploads
def add_note(request_id: uuid.UUID) -> Page:
    """Add a note (words, photos, documents) to the request's thread."""
    form = NoteForm()
    if not form.validate():  # files kept from before have expired
        found = queries.visible_request(g.contact, request_id)  # before anything is stored
        form.take_in_files()
        return _page(found, note=form), 422
    try:
        act.add_note(g.contact, request_id, form.body.data or "", attachments=form.attachable())
    except (Conflict, Invalid, TooMany) as refusal:
        return _refused(request_id, refusal, note=form)
    flash("Note added.", "success")
    return redirect(url_for(".show", request_id=request_id, _anchor="timeline"), code=303)


@bp.get("/<uuid:request_id>/attachments/<uuid:attachment_id>")
@login_required
def attachment(request_id: uuid.UUID, attachment_id: uuid.UUID) -> BaseResponse:
    """Show a photo (``?download=1``: download it), or download a document."""
    opened = files.open_attachment(
        g.contact, request_id, attachment_id, download=request.args.get("download") == "1"
    )
    return file_response(opened, name=opened.attachment.filename)


@bp.get("/<uuid:request_id>/attachments/<uuid:attachment_id>/thumbnail")
@login_required
def thumbnail(request_id: uuid.UUID, attachment_id: uuid.UUID) -> BaseResponse:
    """A photo's thumbnail, as the request page and its timeline show it."""
    opened = files.open_attachment(g.contact, request_id, attachment_id, thumbnail=True)
    stem = opened.attachment.filename.rsplit(".", 1)[0]
    return file_response(opened, name=f"{stem} (thumbnail).jpg")


def _done(request_id: uuid.UUID, message: str, back: str | None) -> BaseResponse:
    """After an action: back where the person was (the request's page by default)."""
    flash(message, "success")
    default = url_for(".show", request_id=request_id)
    return redirect(safe_next(back, default=default), code=303)


def _refused(
    request_id: uuid.UUID,
    refusal: Conflict | Invalid | TooMany,
    *,
    note: NoteForm | None = None,
    transition: TransitionForm | None = None,
) -> tuple[str, int, dict[str, str]]:
    """The page again, with the refusal and what was typed."""
    found = queries.visible_request(g.contact, request_id)
    if isinstance(refusal, Invalid):
        for form in (note, transition):
            if form is not None:
                form.refused(refusal)
    page = _page(found, refusal=refusal, note=note, transition=transition)
    return page, http_status(refusal), refusal_headers(refusal)
