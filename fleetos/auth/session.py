"""The signed-in contact: loading it, requiring it, starting and ending sessions."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, g, redirect, request, session, url_for

from ..extensions import db
from ..models import Contact

F = TypeVar("F", bound=Callable[..., Any])


def start_session(contact: Contact) -> None:
    """Sign ``contact`` in on a fresh session: nothing of the old one survives (no fixation)."""
    session.clear()
    session["contact_id"] = str(contact.contact_id)
    session.permanent = True  # PERMANENT_SESSION_LIFETIME bounds it


def end_session() -> None:
    session.clear()


def load_current_contact() -> None:
    """Put the signed-in contact and its company on ``g`` (None when signed out)."""
    g.contact = g.company = None
    contact_id = session.get("contact_id")
    if not contact_id:
        return
    try:
        contact = db.session.get(Contact, uuid.UUID(contact_id))
    except ValueError:
        contact = None
    if contact is None:  # removed since sign-in
        session.clear()
        return
    g.contact, g.company = contact, contact.company


def login_required(view: F) -> F:
    """Send signed-out visitors to sign in, and back here afterwards."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if g.get("contact") is None:
            next_path = request.full_path if request.method == "GET" else request.path
            return redirect(url_for("auth.login", next=next_path.rstrip("?")), code=303)
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def register_session(app: Flask) -> None:
    app.before_request(load_current_contact)

    @app.context_processor
    def current_contact() -> dict[str, Any]:
        return {"current_contact": g.get("contact"), "current_company": g.get("company")}
