"""Service requests and their lifecycle (built out in the requests issue)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("requests", __name__, url_prefix="/requests")
