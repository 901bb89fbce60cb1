"""htmx conventions in one place: fragment or full page, and ``Vary: HX-Request``."""

from __future__ import annotations

from typing import Any

from flask import Response, make_response, render_template, request


def is_htmx() -> bool:
    """An htmx request that wants a fragment (a history restore wants the whole page)."""
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def page_or_fragment(
    page_template: str, fragment_template: str, /, *, http_status: int = 200, **context: Any
) -> Response:
    """Render the fragment for htmx, else the page (which includes that same fragment)."""
    template = fragment_template if is_htmx() else page_template
    response = make_response(render_template(template, **context), http_status)
    # Caches must keep the fragment and the page apart.
    response.vary.add("HX-Request")
    return response


def fragment(template: str, /, *, http_status: int = 200, **context: Any) -> Response:
    response = make_response(render_template(template, **context), http_status)
    response.vary.add("HX-Request")
    return response
