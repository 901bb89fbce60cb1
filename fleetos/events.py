"""The audit trail: every access and action becomes one event_log row."""

from __future__ import annotations

import uuid
from typing import Any

from .extensions import db
from .models import EventLog


class EventLogService:
    """Record events in the caller's unit of work (it commits, not this)."""

    @staticmethod
    def record(
        event_type: str,
        *,
        company_id: uuid.UUID | None = None,
        contact_id: uuid.UUID | None = None,
        request_id: uuid.UUID | None = None,
        **metadata: Any,
    ) -> EventLog:
        event = EventLog(
            event_type=event_type,
            company_id=company_id,
            contact_id=contact_id,
            target_request_id=request_id,
            metadata_=metadata or None,
        )
        db.session.add(event)
        return event
