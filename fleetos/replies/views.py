"""Held replies, as pages: the addressee accepts a reply from another address as their
note, or discards it (the link in the mail that told them; no sign-in needed).

Opening the link changes nothing (mail scanners open links): deciding is a
form, with CSRF, like every state change.
"""

from __future__ import annotations

from flask import Blueprint, Response, render_template

from ..actions import replies
from ..forms import HeldReplyForm

bp = Blueprint("replies", __name__, url_prefix="/replies")


@bp.after_request
def private_pages(response: Response) -> Response:
    # The URL holds the token, and the page a stranger's words: keep both out of Referer
    # headers and caches, as for sign-in links.
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/held/<token>")
def held(token: str) -> str:
    """Show a held reply, with its two buttons."""
    review = replies.held_for_review(token)
    return render_template("replies/held.html", review=review, form=HeldReplyForm(), token=token)


@bp.post("/held/<token>")
def decide(token: str) -> str:
    """Add the held reply as the addressee's note, or discard it."""
    form = HeldReplyForm()
    decided = replies.decide_held_reply(token, accept=form.accepts)
    review = replies.held_for_review(token)
    return render_template("replies/held.html", review=review, decided=decided, form=form)
