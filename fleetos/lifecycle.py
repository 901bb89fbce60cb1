"""The lifecycle of a service request, in one place.

Statuses, priorities, the steps between statuses (who may take each, its
button, its past-tense verb) and how every event reads on a timeline or in an
activity feed. Views, templates (through ``templating``), mail and the action
core read it from here; adding a status is this file plus a migration for the
database's ``valid_status`` constraint.

Nothing here touches the database: it is the vocabulary the rest is written in.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import uuid

    from .models import Contact


@dataclass(frozen=True)
class Status:
    name: str
    label: str  # as a sentence says it: "in progress"
    final: bool = False


STATUS_LIST = (
    Status("new", "new"),
    Status("acknowledged", "acknowledged"),
    Status("in_progress", "in progress"),
    Status("completed", "completed", final=True),
    Status("declined", "declined", final=True),
)
STATUSES: tuple[str, ...] = tuple(status.name for status in STATUS_LIST)
FINAL_STATUSES = frozenset(status.name for status in STATUS_LIST if status.final)
OPEN_STATUSES: tuple[str, ...] = tuple(s for s in STATUSES if s not in FINAL_STATUSES)
INITIAL_STATUS = "new"

PRIORITIES = ("low", "normal", "high", "urgent")
DEFAULT_PRIORITY = "normal"

# Who takes a step: the contacts of the request's supplier company.
SUPPLIER = "supplier"
FLEET = "fleet"

REASON_MAX = 1000
NOTE_MAX = 5000


@dataclass(frozen=True)
class Step:
    """A move to status ``to``; ``timeline`` and ``activity`` are how its event reads."""

    to: str
    froms: frozenset[str]
    button: str  # the button that takes it: "Start work"
    verb: str  # past tense: "started"
    activity: str  # in a company's feed, after who: "started work on a request"
    timeline: str  # on the request's timeline: "{who} started work."
    taken_by: str = SUPPLIER
    needs_reason: bool = False

    @property
    def event_type(self) -> str:
        return f"request.{self.to}"


STEPS: dict[str, Step] = {
    step.to: step
    for step in (
        Step(
            "acknowledged",
            frozenset({"new"}),
            "Acknowledge",
            "acknowledged",
            "acknowledged a request",
            "{who} acknowledged it.",
        ),
        Step(
            "in_progress",
            frozenset({"acknowledged"}),
            "Start work",
            "started",
            "started work on a request",
            "{who} started work.",
        ),
        Step(
            "completed",
            frozenset({"in_progress"}),
            "Complete",
            "completed",
            "completed a request",
            "{who} completed it.",
        ),
        Step(
            "declined",
            frozenset({"new", "acknowledged", "in_progress"}),
            "Decline",
            "declined",
            "declined a request",
            "{who} declined it.",
            needs_reason=True,
        ),
    )
}

# The words that take a step when a reply (by mail or by SMS) starts with one,
# lower-case; every other reply is a note. SMS adds "ok" (fleetos/sms/inbound.py).
REPLY_WORDS: dict[str, str] = {
    "ack": "acknowledged",
    "acknowledge": "acknowledged",
    "start": "in_progress",
    "done": "completed",
    "complete": "completed",
    "decline": "declined",
}

# Which status may follow which. The database's valid_status constraint only
# knows the set of statuses; the order lives here.
TRANSITIONS: dict[str, frozenset[str]] = {
    status: frozenset(step.to for step in STEPS.values() if status in step.froms)
    for status in STATUSES
}


@dataclass(frozen=True)
class EventLabel:
    """How an event reads: in a company's activity feed (after who did it), and on the
    request's own timeline (``{who}`` and metadata names in braces are filled in)."""

    activity: str
    timeline: str | None = None  # None: not a request's event


EVENTS: dict[str, EventLabel] = {
    "request.created": EventLabel("sent a request", "{who} sent this request."),
    "request.viewed": EventLabel("opened a request", "Seen by {who}."),
    "request.assigned": EventLabel("assigned a request", "{who} assigned it to {assignee}."),
    "request.note": EventLabel("added a note", "{who} wrote:"),
    # A reply by mail or SMS that a machine sent (out of office, a bounce): kept
    # on the timeline so people know it came, never posted as a note, never answered.
    "request.auto_reply": EventLabel(
        "received an auto-reply", "Auto-reply received from {sender} (not posted, not answered)."
    ),
    **{step.event_type: EventLabel(step.activity, step.timeline) for step in STEPS.values()},
    "contact.created": EventLabel("joined"),
    "contact.signed_in": EventLabel("signed in"),
    "contact.signed_out": EventLabel("signed out"),
    "contact.signed_out_everywhere": EventLabel("signed out on all devices"),
    "contact.invited": EventLabel("invited {invitee}"),
    "invitation.revoked": EventLabel("withdrew the invitation to {invitee}"),
    "company.created": EventLabel("started the company"),
    # Replies (fleetos/actions/replies.py): what happened to one, for the audit trail.
    "reply.held": EventLabel("held a reply from {sender} for its addressee to accept"),
    "reply.not_held": EventLabel("did not keep a reply from {sender}: too many held today"),
    "reply.accepted": EventLabel("accepted a held reply from {sender} as their note"),
    "reply.discarded": EventLabel("discarded a held reply from {sender}"),
    "reply.refused": EventLabel("replied, and was told why nothing was done"),
    # SMS: a number that texted STOP (or START again), and a reply that changed nothing.
    "contact.sms_stopped": EventLabel("stopped SMS from FleetOS"),
    "contact.sms_started": EventLabel("asked for SMS from FleetOS again"),
    # Each time someone opens a file: in the audit trail and the activity feed,
    # too many to tell on the request's timeline.
    "attachment.viewed": EventLabel("opened a file"),
    "attachment.downloaded": EventLabel("downloaded a file"),
}
OFF_THE_TIMELINE: tuple[str, ...] = tuple(
    event_type for event_type, label in EVENTS.items() if label.timeline is None
)


def event_label(event_type: str) -> EventLabel:
    """How ``event_type`` reads; an event this version has no words for reads as its name."""
    return EVENTS.get(event_type) or EventLabel(event_type, event_type + " by {who}")


def status_label(status: str) -> str:
    return next((s.label for s in STATUS_LIST if s.name == status), status.replace("_", " "))


def can_move(seen: str, to: str) -> bool:
    return to in TRANSITIONS.get(seen, frozenset())


def is_final(status: str) -> bool:
    return status in FINAL_STATUSES


def steps_from(status: str) -> list[Step]:
    """The steps a request in ``status`` can take, in the order buttons show them."""
    return [step for step in STEPS.values() if status in step.froms]


def path_to(status: str) -> list[Step]:
    """The shortest run of steps from a new request to ``status`` (demo data reads it)."""
    paths: dict[str, list[Step]] = {INITIAL_STATUS: []}
    queue = deque([INITIAL_STATUS])
    while queue:
        current = queue.popleft()
        for step in steps_from(current):
            if step.to not in paths:
                paths[step.to] = [*paths[current], step]
                queue.append(step.to)
    return paths[status]


class Actionable(Protocol):
    """A request, or a dashboard row of one: enough to know what can be done to it."""

    @property
    def status(self) -> str: ...
    @property
    def supplier_company_id(self) -> uuid.UUID | None: ...
    @property
    def fleet_company_id(self) -> uuid.UUID | None: ...


def side_of(service_request: Actionable, contact: Contact) -> str | None:
    """Which side of the request ``contact`` is on (None: neither: it is not theirs)."""
    if contact.company_id == service_request.supplier_company_id:
        return SUPPLIER
    if contact.company_id == service_request.fleet_company_id:
        return FLEET
    return None


def may_take(step: Step, service_request: Actionable, contact: Contact) -> bool:
    return side_of(service_request, contact) == step.taken_by


def actions_for(service_request: Actionable, contact: Contact) -> list[Step]:
    """The steps ``contact`` may take on ``service_request`` now."""
    return [
        step
        for step in steps_from(service_request.status)
        if may_take(step, service_request, contact)
    ]
