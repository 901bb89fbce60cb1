"""Sign-in by magic link (built out in the sign-in issue)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("auth", __name__, url_prefix="/auth")
