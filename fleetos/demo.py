"""Demo data for a newcomer's first look: one fleet, two suppliers, work in every status.

Each request comes with the history that would have brought it to its status
(sent, acknowledged, assigned, started, completed or declined), so its
timeline and the company activity feeds read like real work. Rows have fixed
ids (uuid5 of their name), so seeding again adds nothing.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import literal_column
from sqlalchemy.dialects.postgresql import insert

from . import lifecycle
from .extensions import Model, db
from .models import Company, Contact, EventLog, ServiceRequest
from .unit_of_work import atomic

NAMESPACE = uuid.UUID("6f1c1a52-4a0b-4d1e-9a51-9b0f2a4c7d10")


def demo_id(name: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, name)


COMPANIES = [
    ("Demo Fleet Ltd", "fleet", "demo-fleet.example"),
    ("Demo Truck Repair", "supplier", "demo-repair.example"),
    ("Demo Mobile Tyres", "supplier", "demo-tyres.example"),
]
CONTACTS = [
    ("dana@demo-fleet.example", "Demo Fleet Ltd", "Dana Dispatch", 1),
    ("olu@demo-fleet.example", "Demo Fleet Ltd", "Olu Operations", 30),
    ("sam@demo-repair.example", "Demo Truck Repair", "Sam Service", 2),
    ("workshop@demo-repair.example", "Demo Truck Repair", "Workshop desk", 1),
    ("tia@demo-tyres.example", "Demo Mobile Tyres", "Tia Tyres", 0),
]
# (title, vehicle, supplier, status, priority, days ago, assignee)
REQUESTS = [
    ("Brakes squeal", "Unit 14 / KX21 ABC", "Demo Truck Repair", "new", "high", 0, None),
    ("Windscreen chip", "Unit 3", "Demo Truck Repair", "new", "normal", 1, None),
    ("Annual inspection", "Unit 7", "Demo Truck Repair", "acknowledged", "normal", 2,
     "sam@demo-repair.example"),
    ("Coolant leak", "Unit 22", "Demo Truck Repair", "in_progress", "urgent", 3,
     "workshop@demo-repair.example"),
    ("Oil change", "Unit 14 / KX21 ABC", "Demo Truck Repair", "completed", "low", 12,
     "sam@demo-repair.example"),
    ("Two new tyres", "NW-03", "Demo Mobile Tyres", "in_progress", "urgent", 1,
     "tia@demo-tyres.example"),
    ("Puncture", "NW-09", "Demo Mobile Tyres", "declined", "normal", 9, None),
    ("Tyre pressure check", "NW-11", "Demo Mobile Tyres", "acknowledged", "low", 4, None),
]  # fmt: skip
DECLINE_REASONS = {"Puncture": "No van free near that depot this week; please try again on Monday."}
FIRST_CONTACT = {company: value for value, company, *_ in reversed(CONTACTS)}


@atomic
def seed_demo() -> int:
    """Insert whatever demo rows are missing, as one unit of work; return how many were added."""
    now = datetime.now(UTC).replace(tzinfo=None)
    added = 0
    added += _insert(Company, [
        {"company_id": demo_id(name), "name": name, "company_type": kind, "email_domain": domain}
        for name, kind, domain in COMPANIES
    ])  # fmt: skip
    added += _insert(Contact, [
        {"contact_id": demo_id(value), "company_id": demo_id(company), "contact_value": value,
         "contact_type": "email", "display_name": name,
         "first_seen_at": now - timedelta(days=60), "last_seen_at": now - timedelta(days=days)}
        for value, company, name, days in CONTACTS
    ])  # fmt: skip
    fleet = demo_id("Demo Fleet Ltd")
    submitter = demo_id("dana@demo-fleet.example")
    rows = []
    events = []
    for title, vehicle, supplier, status, priority, days, assignee in REQUESTS:
        request_id = demo_id(title)
        created = now - timedelta(days=days, hours=2)
        events.append(_event(title, "request.created", created, fleet, submitter, status="new"))
        history = _supplier_history(title, supplier, status, assignee, created)
        events.extend(history)
        rows.append({
            "request_id": request_id, "title": title, "vehicle": vehicle, "status": status,
            "priority": priority, "fleet_company_id": fleet,
            "supplier_company_id": demo_id(supplier), "submitted_by_contact_id": submitter,
            "assigned_to_contact_id": demo_id(assignee) if assignee else None,
            "created_at": created,
            "updated_at": history[-1]["created_at"] if history else created,
        })  # fmt: skip
    added += _insert(ServiceRequest, rows)
    added += _insert(EventLog, events)
    return added


def _supplier_history(
    title: str, supplier: str, status: str, assignee: str | None, created: datetime
) -> list[dict[str, Any]]:
    """The supplier's events that took ``title`` to ``status``, an hour apart after it came in.

    The supplier's first contact takes the request in (and hands it to the
    assignee); the work itself is done by the assignee.
    """
    company = demo_id(supplier)
    desk = demo_id(FIRST_CONTACT[supplier])
    worker = demo_id(assignee) if assignee else desk
    events: list[dict[str, Any]] = []
    seen = lifecycle.INITIAL_STATUS
    for hour, step in enumerate(lifecycle.path_to(status), start=1):
        actor = desk if seen == lifecycle.INITIAL_STATUS else worker
        facts: dict[str, Any] = {"from": seen, "to": step.to}
        if step.needs_reason:
            facts["reason"] = DECLINE_REASONS[title]
        at = created + timedelta(hours=hour)
        events.append(_event(title, step.event_type, at, company, actor, **facts))
        seen = step.to
        if assignee and step.to == "acknowledged":
            name = next(display for value, _, display, _ in CONTACTS if value == assignee)
            events.append(
                _event(title, "request.assigned", at + timedelta(minutes=5), company, desk,
                       assignee_id=str(worker), assignee=name)
            )  # fmt: skip
    return events


def _event(
    title: str, event_type: str, at: datetime, company: uuid.UUID, contact: uuid.UUID, **facts: Any
) -> dict[str, Any]:
    return {
        # "created <title>" as before the history was seeded: seeding again adds nothing.
        "event_id": demo_id(f"{event_type.removeprefix('request.')} {title}"),
        "event_type": event_type,
        "company_id": company, "contact_id": contact, "target_request_id": demo_id(title),
        "metadata_": {**facts, "source": "seed-demo"}, "created_at": at,
    }  # fmt: skip


def _insert(model: type[Model], rows: list[dict[str, Any]]) -> int:
    new_rows = insert(model).values(rows).on_conflict_do_nothing()
    return len(db.session.execute(new_rows.returning(literal_column("1"))).all())
