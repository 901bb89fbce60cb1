"""The text of an SMS: ``templates/sms/<kind>.txt``, made to fit one segment.

The same context as the message's mail (``outbox.queue_mail``, or a worker
composer), plus: the signed link becomes a short link (``BASE_URL/s/<key>``),
and a message about a request gets its ref and a reply hint ("Reply OK to
acknowledge, DONE when finished, or text a note. Ref 4821").

What people typed (titles, notes, names) is marked ``|cut`` in the templates:
it is shortened, least first, until the whole message is at most 160 GSM-7
characters. Characters outside GSM-7 become their plain letters.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from jinja2 import pass_context
from jinja2.runtime import Context

from .. import lifecycle
from ..contacts import ContactService
from ..messaging.credentials import short_link
from ..messaging.links import TokenLink
from ..messaging.unlinked import render_mail
from ..models import ServiceRequest
from ..smtp import Unsendable
from ..text import one_line, shorten
from .gsm import SEGMENT, septets, to_gsm
from .refs import ref_for

# How long typed text may be, tried in turn until the message fits: what a message is
# about (``|cut``: a title, a note) is shortened first, longest first; names
# (``|cut_last``: a company, a person) only when that is not enough.
BUDGETS: tuple[tuple[int | None, int | None], ...] = (
    (None, None),
    *((about, None) for about in range(120, 19, -2)),
    *((20, names) for names in range(60, 11, -2)),
    *((both, both) for both in range(20, -1, -2)),
)


class DoesNotFit(Unsendable):
    """No shortening of what people typed makes this message one segment (a template bug)."""


def render_sms(kind: str, recipient: str, context: dict[str, Any]) -> str:
    """The one-segment text of a ``kind`` message to the phone number ``recipient``."""
    context = dict(context)
    link = context.get("link")
    if isinstance(link, TokenLink):
        context["link"] = short_link(link.token)
    service_request = context.get("service_request")
    if isinstance(service_request, ServiceRequest):
        context["ref"] = ref_for(recipient, service_request.request_id)
        context["hint"] = reply_hint(service_request, recipient)
    for about, names in BUDGETS:
        rendered = render_mail(f"sms/{kind}.txt", _budget=about, _names_budget=names, **context)
        # "Brake pads…." reads as "Brake pads…"
        text = one_line(to_gsm(rendered.replace("\u2026.", "\u2026")))
        length = septets(text)
        if length is not None and length <= SEGMENT:
            return text
    raise DoesNotFit(f"the {kind} SMS does not fit one segment")


def reply_hint(service_request: ServiceRequest, recipient: str) -> str:
    """What a reply can do, for the side ``recipient`` is on (a number not yet a contact
    that a request was sent to is the supplier's)."""
    contact = ContactService.find(recipient)
    on_fleet_side = contact is not None and contact.company_id == service_request.fleet_company_id
    status = service_request.status
    if on_fleet_side or lifecycle.is_final(status):
        return "Reply to add a note."
    if status == "new":
        return "Reply OK to acknowledge, or text a note."
    if status == "acknowledged":
        return "Reply START when you begin, or text a note."
    return "Reply DONE when finished, or text a note."


def _cut(value: object, budget: int | None) -> str:
    text = one_line(str(value or ""))
    if budget is None:
        return text
    return shorten(text, budget) if budget else ""


@pass_context
def cut(context: Context, value: object) -> str:
    """What a message is about, as long as the message's current budget allows."""
    return _cut(value, context.get("_budget"))


@pass_context
def cut_last(context: Context, value: object) -> str:
    """A name: shortened only once what the message is about is as short as it gets."""
    return _cut(value, context.get("_names_budget"))


def register_sms_templates(app: Flask) -> None:
    app.add_template_filter(cut, "cut")
    app.add_template_filter(cut_last, "cut_last")
