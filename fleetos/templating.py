"""What templates may use beyond their context, registered once: the lifecycle's vocabulary,
how events read, and times as people say them.

Macros that draw with these live in ``templates/_lifecycle.html`` (``badges``,
``lifecycle_form``, ``event_sentence``) and ``templates/_form.html`` (``field``).
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from markupsafe import Markup, escape

from . import lifecycle
from .attachments.content import size_label
from .clock import age
from .forms import typed_value
from .models import EventLog, company_label


def who(event: EventLog, *, with_company: bool) -> Markup:
    """Who did it: their name in bold (and their company), or FleetOS itself."""
    if event.contact is None:
        return Markup("FleetOS")
    name = Markup("<strong>{}</strong>").format(event.contact.label)
    if with_company:
        return Markup("{} ({})").format(name, event.contact.company.name)
    return name


def timeline_sentence(event: EventLog) -> Markup:
    """How ``event`` reads on its request's timeline: "<who> acknowledged it."."""
    label = lifecycle.event_label(event.event_type)
    return _fill(label.timeline or label.activity, event, who(event, with_company=True))


def activity_sentence(event: EventLog) -> Markup:
    """How ``event`` reads in a company's feed: "<who> acknowledged a request"."""
    label = lifecycle.event_label(event.event_type)
    return Markup("{} {}").format(
        who(event, with_company=False), _fill(label.activity, event, Markup(""))
    )


def _fill(pattern: str, event: EventLog, who_markup: Markup) -> Markup:
    # Patterns are FleetOS's own words; everything filled in is escaped.
    facts: dict[str, Any] = event.metadata_ or {}
    return escape(pattern).format(
        who=who_markup,
        assignee=Markup("<strong>{}</strong>").format(facts.get("assignee", "someone")),
        invitee=facts.get("invitee", "someone"),
        sender=facts.get("sender", "someone"),
    )


def register_templating(app: Flask) -> None:
    app.jinja_env.globals.update(
        lifecycle=lifecycle,
        actions_for=lifecycle.actions_for,
        timeline_sentence=timeline_sentence,
        activity_sentence=activity_sentence,
        typed_value=typed_value,
        company_label=company_label,
    )
    app.add_template_filter(age, "age")
    app.add_template_filter(size_label, "filesize")
