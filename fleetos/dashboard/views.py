"""A company's work at a glance (the htmx dashboard is built out in the dashboard issue)."""

from __future__ import annotations

from flask import Blueprint, g, render_template
from sqlalchemy import func, select

from ..auth.session import login_required
from ..extensions import db
from ..models import STATUSES, ServiceRequest

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")


@bp.get("")
@login_required
def index():
    """Show the signed-in contact's company and its requests per status."""
    owner = (
        ServiceRequest.supplier_company_id
        if g.company.is_supplier
        else ServiceRequest.fleet_company_id
    )
    counts = dict(
        db.session.execute(
            select(ServiceRequest.status, func.count())
            .where(owner == g.company.company_id)
            .group_by(ServiceRequest.status)
        ).all()
    )
    return render_template(
        "dashboard/index.html", counts={status: counts.get(status, 0) for status in STATUSES}
    )
