"""Entry point for `flask` (found automatically in the repo root) and for gunicorn."""

import sys

from fleetos import ConfigError, create_app

try:
    app = create_app()
except ConfigError as exc:
    # One readable line for the operator, not a traceback.
    sys.exit(f"fleetos: {exc}")
