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
from ..text import shorten
from .gsm import SEGMENT, septets, to_gsm
from .refs import ref_for

# How long each piece of typed text may be, tried in turn until the message fits: the
# longest pieces are cut first, and short ones (a name) stay whole as long as possible.
BUDGETS = (None, *range(120, 3, -2), 0)


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
    for budget in BUDGETS:
        text = _one_line(to_gsm(render_mail(f"sms/{kind}.txt", _budget=budget, **context)))
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


def _one_line(text: str) -> str:
    return " ".join(text.split())


@pass_context
def cut(context: Context, value: object) -> str:
    """Typed text, as long as the message's current budget allows."""
    text = " ".join(str(value or "").split())
    budget = context.get("_budget")
    if budget is None:
        return text
    return shorten(text, budget) if budget else ""


def register_sms_templates(app: Flask) -> None:
    app.add_template_filter(cut, "cut")
