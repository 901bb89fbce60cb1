"""What people typed, as it appears in mail: links shown as text, never as links.

A request's title, its description, a note, a company's or a person's name all
reach other people's inboxes. Jinja's escaping already keeps ``<a href>`` out
of the HTML; but mail clients turn anything that looks like a link into one
by themselves (``http://…``, ``www.…``, ``bank.com``, ``a@b.com``), in the
HTML and the plain text alike. So every such thing in what people typed is
*defanged* the way security teams write links they do not want clicked:
``http[:]//bank-verify[.]com/login``. It reads the same, and no client links it.

What counts as a link is what linkify-it (the linkifier of markdown-it)
recognises: schemes, ``www.``, bare domains under the common top-level
domains. E-mail addresses stay as typed (suppliers that emerged from a request
are named by theirs): a client that links one opens a message to write, not a
page. FleetOS's own links (sign-in links, built on ``BASE_URL``) are
:class:`OwnLink` and stay links.

Mail templates are rendered by :func:`render_mail`, whose Jinja environment
defangs every ``{{ value }}`` that is text, so a field added to a template
later is covered without anyone remembering to.
"""

from __future__ import annotations

import threading
from typing import Any

from flask import Flask, current_app
from jinja2 import Environment
from linkify_it import LinkifyIt
from markupsafe import Markup

_local = threading.local()


class OwnLink(str):
    """A URL FleetOS made (on BASE_URL): a mail shows it as a link."""

    __slots__ = ()


def _linkifier() -> LinkifyIt:
    # A LinkifyIt keeps state between test() and match(): one per thread.
    linkifier: LinkifyIt | None = getattr(_local, "linkifier", None)
    if linkifier is None:
        linkifier = _local.linkifier = LinkifyIt()
    return linkifier


def defang(link: str) -> str:
    """``link`` written so that nothing recognises it as one: ``http[:]//a[.]com``."""
    return link.replace("://", "[:]//").replace(".", "[.]")


def unlinked(text: str) -> str:
    """``text`` with every link in it defanged; the rest as it was."""
    if isinstance(text, OwnLink | Markup):
        return text
    matches = _linkifier().match(text) or []
    pieces: list[str] = []
    position = 0
    for found in matches:
        if found.schema == "mailto:":
            continue  # an address: a client may offer to write to it, which opens no page
        pieces += [text[position : found.index], defang(text[found.index : found.last_index])]
        position = found.last_index
    pieces.append(text[position:])
    return "".join(pieces)


def _finalize(value: Any) -> Any:
    return unlinked(value) if isinstance(value, str) else value


def register_mail_templates(app: Flask) -> None:
    """A Jinja environment for mail: the app's templates, every printed value unlinked."""
    app.extensions["fleetos_mail_jinja"] = app.jinja_env.overlay(finalize=_finalize, cache_size=100)


def render_mail(template: str, **context: Any) -> str:
    """Render ``templates/<template>`` for a message (like ``render_template``)."""
    environment: Environment = current_app.extensions["fleetos_mail_jinja"]
    current_app.update_template_context(context)
    return environment.get_template(template).render(context)
