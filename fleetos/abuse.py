"""How much one contact or one company may write through FleetOS: requests, notes, and
mail to addresses it never wrote to before.

FleetOS sends what people type to the addresses they type, so without these it
is a relay for spam and phishing (issue 10: 30 requests in 3.8 s, all
delivered). Two kinds of budget:

* **rates** of requests and notes, per contact and per company (settings
  ``REQUEST_LIMIT_PER_CONTACT`` ..., in Flask-Limiter's notation, counted in
  ``RATELIMIT_STORAGE_URI`` like the sign-in limits, with a moving window;
  ``RATELIMIT_ENABLED=false`` turns them off). Only what was actually sent
  counts; a refusal changes nothing and the form keeps what was typed.
* **new addresses**: how many addresses a company may write to (a request to
  a typed address, an invitation) for the first time in any 24 hours
  (``NEW_ADDRESSES_PER_DAY``; 0: no limit). Counted exactly in PostgreSQL
  (``company_recipients``), under a per-company lock, so concurrent requests
  cannot slip past it.

Refusals are :class:`~fleetos.domain_errors.TooMany` (a 429 on the web).
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass
from typing import NoReturn

from flask import Flask, current_app
from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert

from .domain_errors import TooMany
from .extensions import db
from .models import CompanyRecipient, Contact

NEW_ADDRESS_WINDOW_HOURS = 24


@dataclass(frozen=True)
class Rate:
    """One kind of thing people send, and its settings."""

    singular: str  # "request", "note"
    per_contact: str  # setting names
    per_company: str

    @property
    def plural(self) -> str:
        return self.singular + "s"

    def count(self, n: int) -> str:
        return f"{n} {self.singular if n == 1 else self.plural}"


REQUESTS = Rate("request", "REQUEST_LIMIT_PER_CONTACT", "REQUEST_LIMIT_PER_COMPANY")
NOTES = Rate("note", "NOTE_LIMIT_PER_CONTACT", "NOTE_LIMIT_PER_COMPANY")


def register_abuse_limits(app: Flask) -> None:
    """Give the app its own counter of rates, in the rate-limit storage."""
    storage = storage_from_string(app.config["RATELIMIT_STORAGE_URI"])
    app.extensions["fleetos_rates"] = MovingWindowRateLimiter(storage)
    for setting in (
        REQUESTS.per_contact,
        REQUESTS.per_company,
        NOTES.per_contact,
        NOTES.per_company,
    ):
        parse_many(app.config[setting])  # a typo fails at start, not on the first request


def spend(rate: Rate, contact: Contact) -> None:
    """Count one of ``rate`` sent by ``contact`` (and its company), or raise TooMany."""
    config = current_app.config
    if not config.get("RATELIMIT_ENABLED", True):
        return
    counter: MovingWindowRateLimiter = current_app.extensions["fleetos_rates"]
    budgets = [
        (item, ("contact", str(contact.contact_id)), None)
        for item in parse_many(config[rate.per_contact])
    ] + [
        (item, ("company", str(contact.company_id)), contact.company.name)
        for item in parse_many(config[rate.per_company])
    ]
    prefix = ("fleetos", config.get("RATELIMIT_KEY_PREFIX") or "-", rate.plural)
    # First look without counting, so that a refusal costs none of the other budgets;
    # then count with hit(), which checks and counts in one step in the storage, so
    # that two sends at once cannot both take the last place. Only when they race for
    # it may a refused send have counted in a budget checked before the one it lost.
    for item, (scope, key), company in budgets:
        if not counter.test(item, *prefix, scope, key):
            _refuse(counter, rate, item, company, (*prefix, scope, key))
    for item, (scope, key), company in budgets:
        if not counter.hit(item, *prefix, scope, key):
            _refuse(counter, rate, item, company, (*prefix, scope, key))


def _refuse(
    counter: MovingWindowRateLimiter,
    rate: Rate,
    item: RateLimitItem,
    company: str | None,
    identifiers: tuple[str, ...],
) -> NoReturn:
    reset = counter.get_window_stats(item, *identifiers).reset_time
    raise TooMany(_rate_message(rate, item, company), retry_after=_seconds_until(reset))


def _rate_message(rate: Rate, item: RateLimitItem, company: str | None) -> str:
    who = f"{company} has" if company else "You have"
    whose = "one company" if company else "one person"
    return (
        f"{who} sent {rate.count(item.amount)} in {_period(item)}, the most FleetOS sends "
        f"for {whose}. Nothing was sent; wait a little and send it again "
        "(what you typed is kept below)."
    )


def _period(item: RateLimitItem) -> str:
    unit = item.GRANULARITY.name
    if item.multiples == 1:
        return f"an {unit}" if unit == "hour" else f"a {unit}"
    return f"{item.multiples} {unit}s"


def _seconds_until(moment: float) -> int:
    return max(1, math.ceil(moment - time.time()))


def write_to(company_id: uuid.UUID, address: str, *, company_name: str) -> bool:
    """Record that the company writes to ``address``; TooMany if it is new and the company
    has written to NEW_ADDRESSES_PER_DAY new addresses in the last 24 hours already.

    Returns whether the address was new to the company.
    """
    limit = int(current_app.config["NEW_ADDRESSES_PER_DAY"])
    # One company at a time: two requests at once both see the other's new address.
    db.session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"new-address:{company_id}"}
    )
    new = db.session.scalar(
        insert(CompanyRecipient)
        .values(company_id=company_id, address=address)
        .on_conflict_do_nothing()
        .returning(CompanyRecipient.address)
    )
    if new is None or limit <= 0:
        return new is not None
    window = func.now() - func.make_interval(0, 0, 0, 0, NEW_ADDRESS_WINDOW_HOURS)
    recent = db.session.scalar(
        select(func.count())
        .select_from(CompanyRecipient)
        .where(
            CompanyRecipient.company_id == company_id,
            CompanyRecipient.first_written_at > window,
        )
    )
    if (recent or 0) > limit:
        raise TooMany(
            f"{company_name} has written to {limit} new addresses in the last 24 hours, "
            "the most FleetOS allows. Nothing was sent. Addresses you wrote to before still "
            "work; a new one can be tried again tomorrow.",
            retry_after=3600,
        )
    return True
