"""The four-company world of tests/requests, plus helpers to fill a company with work."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

from fleetos.extensions import db
from fleetos.models import ServiceRequest
from tests.auth.conftest import app, database, make_app  # noqa: F401 (fixtures)
from tests.requests.conftest import as_, world  # noqa: F401 (fixtures)

ROW_ID = re.compile(r'id="row-([0-9a-f-]{36})"')


def add_requests(
    app,
    world,
    n: int,
    *,
    status: str = "new",
    supplier: str = "bobs",
    fleet: str = "acme",
    start: datetime | None = None,
    **fields,
) -> list[uuid.UUID]:
    """``n`` requests, one minute apart, newest last; returns their ids."""
    start = start or datetime.now(UTC).replace(tzinfo=None) - timedelta(days=2)
    ids = []
    with database(app):
        for i in range(n):
            request = ServiceRequest(
                vehicle=f"Unit {i}",
                title=f"Job {i}",
                status=status,
                fleet_company_id=world.companies[fleet],
                supplier_company_id=world.companies[supplier],
                created_at=start + timedelta(minutes=i),
                updated_at=start + timedelta(minutes=i),
                **fields,
            )
            db.session.add(request)
            db.session.flush()
            ids.append(request.request_id)
        db.session.commit()
    return ids


def row_ids(html: str) -> list[str]:
    return ROW_ID.findall(html)


def htmx(browser, url: str):
    return browser.client.get(url, headers={"HX-Request": "true"})
