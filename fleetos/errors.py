"""Error pages: a clear message, never a traceback."""

from __future__ import annotations

import logging

from flask import Flask, render_template
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from .domain_errors import Conflict, DomainError, Forbidden, Invalid, NotFound
from .extensions import db
from .logs import current_correlation_id

log = logging.getLogger(__name__)

MESSAGES = {
    400: ("That request could not be understood", "Go back, reload the page and try again."),
    403: ("Not allowed", "You cannot do that here."),
    404: ("Not found", "There is nothing here. It may have moved, or never existed."),
    405: ("Not allowed", "That page cannot be used this way."),
    410: ("Gone", "This is no longer available."),
    429: (
        "Too many requests",
        "You have asked for this too often. Wait a few minutes, then try again.",
    ),
}


def render_error(
    code: int,
    *,
    title: str | None = None,
    message: str | None = None,
    reference: str | None = None,
) -> tuple[str, int]:
    default_title, default_message = MESSAGES.get(code, ("Something went wrong", ""))
    return (
        render_template(
            "errors/error.html",
            code=code,
            title=title or default_title,
            message=message or default_message,
            reference=reference,
        ),
        code,
    )


# Domain errors carry no HTTP; this is the one place that gives them a status.
DOMAIN_STATUS: dict[type[DomainError], int] = {
    NotFound: 404,
    Forbidden: 403,
    Conflict: 409,
    Invalid: 422,
}


def http_status(error: DomainError) -> int:
    """The HTTP status that answers a domain error (also where a view shows it in place)."""
    for kind in type(error).__mro__:
        if kind in DOMAIN_STATUS:
            return DOMAIN_STATUS[kind]
    return 400


def register_errorhandlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def refused(error: DomainError) -> tuple[str, int]:
        """An action's refusal that no view showed in place: its own page, nothing written."""
        db.session.rollback()
        status = http_status(error)
        # Not found says nothing more: a request of another company looks like none at all.
        return render_error(status, message=None if status == 404 else error.message)

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError) -> tuple[str, int]:
        return render_error(
            400,
            title="This form has expired",
            message="For your safety, forms only work for a while and only from this site. "
            "Go back, reload the page and send it again.",
        )

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[str, int] | tuple[str, int, dict[str, str]]:
        if error.code is None or error.code >= 500:
            return internal_error(error)
        response = render_error(error.code)
        retry_after = getattr(error, "retry_after", None)
        if error.code == 429 and retry_after:
            return response[0], 429, {"Retry-After": str(retry_after)}
        return response

    @app.errorhandler(Exception)
    def internal_error(error: Exception) -> tuple[str, int]:
        if isinstance(error, HTTPException) and not isinstance(error, InternalServerError):
            return render_error(error.code or 500)
        db.session.rollback()
        # The id the response header and the request's log line carry too,
        # so a reference quoted by a user leads straight to this traceback.
        correlation_id = current_correlation_id()
        log.exception(
            "unhandled error, request id %s",
            correlation_id,
            extra={"correlation_id": correlation_id},
        )
        return render_error(
            500,
            title="Something went wrong on our side",
            message="It has been logged. Try again in a moment; if it keeps happening, "
            "tell us the reference below.",
            reference=correlation_id,
        )
