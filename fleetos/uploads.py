"""Files over the web: which routes take them, and how a file goes back out.

Every route keeps the small body limit (``MAX_CONTENT_LENGTH``, 1 MiB) except
the views marked :func:`accepts_uploads`, whose limit is that plus
``ATTACHMENT_MAX_UPLOAD_BYTES``: a hook that runs before anything reads the
body (CSRF included) raises it for them alone, so no other route can be sent
50 MB.

A file goes out only after the action core said this contact may see it, with
headers that keep a browser from treating it as anything but what it is:
``X-Content-Type-Options: nosniff``, a ``Content-Disposition`` that is inline
only for images (a PDF is always a download), ``Cache-Control: private`` and a
CSP that sandboxes it (no script, no plugin, no same-origin access, even if a
file somehow were HTML). With the ``s3`` storage the browser is sent, after the
same check, to a presigned URL valid for ``S3_URL_SECONDS``, which answers with
the same type and disposition.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from flask import Flask, Response, redirect, request

from .actions.attachments import Opened
from .attachments.storage import content_disposition, current_storage
from .domain_errors import NotFound

log = logging.getLogger(__name__)

V = TypeVar("V", bound=Callable[..., object])

_ACCEPTS_UPLOADS = "fleetos_accepts_uploads"

# A file is never a page: no script, no plugin, no form, no frame, no access to
# FleetOS's origin; it may only show itself (an image opened in a tab).
# Inline styles only for the browser's own image viewer (a sandboxed document runs no script).
FILE_CSP = (
    "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'; sandbox"
)
FILE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": FILE_CSP,
    "Cross-Origin-Resource-Policy": "same-origin",
    "Referrer-Policy": "no-referrer",
}


def accepts_uploads(view: V) -> V:
    """Mark a view as one that takes files: its body limit is raised (see the module)."""
    setattr(view, _ACCEPTS_UPLOADS, True)
    return view


def body_limit(app: Flask, endpoint: str | None) -> int | None:
    """The larger body limit of ``endpoint`` if it takes files; None: the app's own."""
    view = app.view_functions.get(endpoint or "")
    if view is None or not getattr(view, _ACCEPTS_UPLOADS, False):
        return None
    return int(app.config["MAX_CONTENT_LENGTH"]) + int(app.config["ATTACHMENT_MAX_UPLOAD_BYTES"])


def register_upload_limits(app: Flask) -> None:
    """Raise the body limit for the views that take files, before anything reads a body."""

    @app.before_request
    def larger_bodies_where_files_go() -> None:
        limit = body_limit(app, request.endpoint)
        if limit is not None:
            request.max_content_length = limit


def file_response(opened: Opened, *, name: str) -> Response:
    """The file ``opened`` (the core checked who may), sent as what it is and nothing else."""
    storage = current_storage()
    url = storage.url(opened.key, name=name, content_type=opened.content_type, inline=opened.inline)
    if url is not None:
        response: Response = redirect(url, code=303)  # type: ignore[assignment]
        response.headers["Cache-Control"] = "private, no-store"  # the URL soon expires
    else:
        try:
            data = storage.read(opened.key)
        except FileNotFoundError:
            # `flask fleetos verify` lists these; the person sees the usual 404.
            log.error(
                "attachment %s: its file %s is missing from storage",
                opened.attachment.attachment_id,
                opened.key,
            )
            raise NotFound() from None
        response = Response(data, mimetype=opened.content_type)
        response.headers["Content-Disposition"] = content_disposition(name, inline=opened.inline)
        # Each look asks again (a 304 when unchanged), so access stays checked and recorded.
        response.headers["Cache-Control"] = "private, no-cache"
        response.set_etag(opened.key)
        response.make_conditional(request)
    response.headers.update(FILE_HEADERS)
    return response
