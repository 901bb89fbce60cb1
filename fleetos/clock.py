"""Time, as FleetOS stores it: naive UTC everywhere (the database session is pinned to UTC)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from .extensions import db


def utcnow() -> datetime:
    """Now, in UTC, without a time zone (like every timestamp column)."""
    return datetime.now(UTC).replace(tzinfo=None)


def database_now() -> datetime:
    """The database's clock (its transaction's start time): what event timestamps use."""
    now: datetime | None = db.session.scalar(select(func.now()))
    assert now is not None
    return now


def as_utc(moment: datetime) -> datetime:
    """``moment`` as naive UTC; an aware time is converted, a naive one is taken as UTC."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def age(moment: datetime, *, now: datetime | None = None) -> str:
    """How long ago, the way people say it in a workshop: 5 min, 3 h, 2 d."""
    seconds = ((now or utcnow()) - moment).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return "just now"
