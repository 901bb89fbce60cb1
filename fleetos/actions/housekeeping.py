"""Housekeeping: forgetting what no longer guards anything."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, or_

from ..clock import utcnow
from ..extensions import db
from ..messaging.links import Purpose
from ..models import LinkCredential, UsedLinkToken, WebSession
from ..unit_of_work import atomic

# Clocks of app servers and the database may disagree a little; keep ids this much longer.
USED_LINK_CLOCK_MARGIN = timedelta(hours=1)
# An ended session is kept a day: long enough that "signed out at ..." can still be
# looked into, and far beyond any clock drift between app servers.
ENDED_SESSION_MARGIN = timedelta(days=1)


@atomic
def forget_expired_links(*, now: datetime | None = None) -> int:
    """Delete the ids of used links that have expired since; return how many went.

    A link is signed before it is used, so once its purpose's lifetime has passed
    since its use, its signature has expired too and ``read_token`` refuses it
    without asking this table: the row guards nothing any more. Ids of purposes
    this version does not know are kept.
    """
    now = now or utcnow()
    expired = [
        (UsedLinkToken.purpose == purpose.value)
        & (
            UsedLinkToken.used_at
            < now - timedelta(seconds=purpose.max_age) - USED_LINK_CLOCK_MARGIN
        )
        for purpose in Purpose
    ]
    result = db.session.execute(delete(UsedLinkToken).where(or_(*expired)))
    return int(getattr(result, "rowcount", 0))


@atomic
def forget_ended_sessions(*, now: datetime | None = None) -> int:
    """Delete sessions that ended (signed out, or expired) more than a day ago; return how many.

    A cookie naming a session that is not in ``web_sessions`` is refused like one
    naming an ended session (``access.session_contact`` finds neither), so the row
    guards nothing once it has ended; sign-ins and sign-outs stay in ``event_log``.
    """
    before = (now or utcnow()) - ENDED_SESSION_MARGIN
    result = db.session.execute(
        delete(WebSession).where(or_(WebSession.ended_at < before, WebSession.expires_at < before))
    )
    return int(getattr(result, "rowcount", 0))


@atomic
def forget_expired_credentials(*, now: datetime | None = None) -> int:
    """Delete the codes and short links (and the links they kept) that expired; return how many.

    An expired one is refused by its own ``expires_at`` already; the row only
    keeps a signed link that no longer works.
    """
    before = (now or utcnow()) - USED_LINK_CLOCK_MARGIN
    result = db.session.execute(delete(LinkCredential).where(LinkCredential.expires_at < before))
    return int(getattr(result, "rowcount", 0))
