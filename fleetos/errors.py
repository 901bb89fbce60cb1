"""Error pages: a clear message, never a traceback.

Pages for a fault on our side (500, 503) are rendered without the database:
no signed-in header, nothing loaded, so they still render when PostgreSQL is
the fault. An outage is a 503 with ``Retry-After``, logged once per burst.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import BadRequest, HTTPException, InternalServerError

from .attachments.storage import StorageUnavailable
from .database import describe, is_unavailable
from .domain_errors import Conflict, DomainError, Forbidden, Invalid, NotFound, TooMany
from .extensions import db
from .logs import OncePerBurst, current_correlation_id

log = logging.getLogger(__name__)
outage_log = OncePerBurst(log)
storage_outage_log = OncePerBurst(log)

# Seconds a client (or a proxy) is asked to wait before trying again.
RETRY_AFTER_SECONDS = 5

MESSAGES = {
    400: ("That request could not be understood", "Go back, reload the page and try again."),
    403: ("Not allowed", "You cannot do that here."),
    404: ("Not found", "There is nothing here. It may have moved, or never existed."),
    405: ("Not allowed", "That page cannot be used this way."),
    410: ("Gone", "This is no longer available."),
    411: (
        "That could not be read",
        "Your browser sent this without saying how large it is. Go back and send it again.",
    ),
    413: (
        "That was too much to send",
        "What you sent is larger than FleetOS accepts. Go back and send less.",
    ),
    429: (
        "Too many requests",
        "You have asked for this too often. Wait a few minutes, then try again.",
    ),
}


class UnreadableInput(BadRequest):
    """Input no view can use (a NUL character, a time out of range): 400, saying what it was."""

    def __init__(self, message: str) -> None:
        super().__init__(description=message)
        self.message = message


def render_error(
    code: int,
    *,
    title: str | None = None,
    message: str | None = None,
    reference: str | None = None,
    signed_out_header: bool = False,
) -> tuple[str, int]:
    default_title, default_message = MESSAGES.get(code, ("Something went wrong", ""))
    context: dict[str, object] = {
        "code": code,
        "title": title or default_title,
        "message": message or default_message,
        "reference": reference,
    }
    if signed_out_header:
        # The header would read the signed-in contact, which may need the database.
        context.update(current_contact=None, current_company=None)
    return render_template("errors/error.html", **context), code


def unavailable(error: BaseException) -> Response:
    """The outage page: 503, Retry-After, no database; one log line per burst."""
    _forget_failed_transaction()
    outage_log.warning(
        "database unavailable, answering 503 (request id %s): %s",
        current_correlation_id(),
        describe(error),
    )
    message = (
        "FleetOS could not reach its database just now, so nothing was changed. "
        "Try again in a few seconds."
    )
    if request.method == "POST":
        message += " Go back and send the form again: your browser keeps what you typed."
    try:
        body, status = render_error(
            503,
            title="FleetOS is briefly unavailable",
            message=message,
            signed_out_header=True,
        )
    except Exception:  # rendering must not need anything that is down; if it does, plain text
        log.exception("could not render the 503 page")
        body, status = "FleetOS is briefly unavailable. Try again in a few seconds.\n", 503
    response = Response(body, status, mimetype="text/html" if "<" in body else "text/plain")
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response.headers["Cache-Control"] = "no-store"
    return response


def _forget_failed_transaction() -> None:
    try:
        db.session.rollback()
    except Exception:  # the connection is gone already; the pool drops it
        log.debug("rollback after a database fault failed", exc_info=True)


# Domain errors carry no HTTP; this is the one place that gives them a status.
DOMAIN_STATUS: dict[type[DomainError], int] = {
    NotFound: 404,
    Forbidden: 403,
    Conflict: 409,
    Invalid: 422,
    TooMany: 429,
}


def http_status(error: DomainError) -> int:
    """The HTTP status that answers a domain error (also where a view shows it in place)."""
    for kind in type(error).__mro__:
        if kind in DOMAIN_STATUS:
            return DOMAIN_STATUS[kind]
    return 400


def refusal_headers(error: DomainError) -> dict[str, str]:
    """Headers that go with a refusal: when to try again, for a rate limit."""
    if isinstance(error, TooMany):
        return {"Retry-After": str(error.retry_after)}
    return {}


def register_errorhandlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def refused(error: DomainError) -> tuple[str, int, dict[str, str]]:
        """An action's refusal that no view showed in place: its own page, nothing written."""
        db.session.rollback()
        status = http_status(error)
        # Not found says nothing more: a request of another company looks like none at all.
        body, _ = render_error(status, message=None if status == 404 else error.message)
        return body, status, refusal_headers(error)

    @app.errorhandler(StorageUnavailable)
    def storage_unavailable(error: StorageUnavailable) -> tuple[str, int, dict[str, str]]:
        """The attachment storage is down: a 503 like the database's, nothing half-saved."""
        _forget_failed_transaction()
        storage_outage_log.warning(
            "attachment storage unavailable, answering 503 (request id %s): %s",
            current_correlation_id(),
            error,
        )
        body, status = render_error(
            503,
            title="Files cannot be reached just now",
            message="FleetOS could not reach the place it keeps photos and documents, so "
            "nothing was changed. Try again in a minute; if you were sending a form, go back "
            "and send it again.",
        )
        return body, status, {"Retry-After": str(RETRY_AFTER_SECONDS), "Cache-Control": "no-store"}

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError) -> tuple[str, int]:
        return render_error(
            400,
            title="This form has expired",
            message="For your safety, forms only work for a while and only from this site. "
            "Go back, reload the page and send it again.",
        )

    @app.errorhandler(HTTPException)
    def http_error(
        error: HTTPException,
    ) -> tuple[str, int] | tuple[str, int, dict[str, str]] | Response:
        if error.code is None or error.code >= 500:
            return internal_error(error)
        message = error.message if isinstance(error, UnreadableInput) else None
        response = render_error(error.code, message=message)
        retry_after = getattr(error, "retry_after", None)
        if error.code == 429 and retry_after:
            return response[0], 429, {"Retry-After": str(retry_after)}
        return response

    @app.errorhandler(Exception)
    def internal_error(error: Exception) -> tuple[str, int] | Response:
        if isinstance(error, HTTPException) and not isinstance(error, InternalServerError):
            return render_error(error.code or 500)
        if is_unavailable(error):
            return unavailable(error)
        _forget_failed_transaction()
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
            signed_out_header=True,
        )
