"""The signed-in contact: loading it, requiring it, starting and ending sessions.

Sessions live in PostgreSQL (``web_sessions``); the signed cookie only names
one (``session_id``). Every request but a file's (static, favicon) looks the session up,
so a session that was signed out, or ended on all devices, is refused at once
for every copy of its cookie. A request without a session cookie never asks
the database; one with a cookie during a database outage gets the 503 page,
like any page that needs the database (the lookup's error is an outage).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, g, redirect, request, session, url_for

from ..actions import access

F = TypeVar("F", bound=Callable[..., Any])

SESSION_KEY = "session_id"
# Endpoints that serve files: they need nobody signed in, so they never ask the database.
FILES = frozenset({"static", "favicon"})


def start_session(signed_in: access.SignIn) -> None:
    """Carry the new session in the cookie: nothing of the old one survives (no fixation)."""
    session.clear()
    session[SESSION_KEY] = str(signed_in.session_id)
    session.permanent = True  # the cookie lasts as long as the session (SESSION_LIFETIME_DAYS)


def end_session() -> None:
    session.clear()


def current_session_id() -> uuid.UUID | None:
    """The session this request is signed in on (None when signed out)."""
    session_id: uuid.UUID | None = g.get("session_id")
    return session_id


def load_current_contact() -> None:
    """Put the signed-in contact, its company and its session on ``g`` (None when signed out)."""
    g.contact = g.company = g.session_id = None
    if request.endpoint in FILES:
        return
    session_id = session.get(SESSION_KEY)
    if not session_id:
        if "contact_id" in session:  # a cookie from before sessions were kept: signed out
            session.clear()
        return
    found = access.session_contact(session_id)
    if found is None:  # signed out, ended on all devices, expired, or never ours
        session.clear()
        return
    contact, web_session = found
    g.contact, g.company, g.session_id = contact, contact.company, web_session.session_id


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
        return {
            "current_contact": g.get("contact"),
            "current_company": g.get("company"),
            "current_session_id": g.get("session_id"),
        }
