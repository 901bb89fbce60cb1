#!/usr/bin/env bash
# Install FleetOS as locked into .venv and run the test suite (extra arguments go to pytest).
# Uses TEST_DATABASE_URL's PostgreSQL server if set, else an embedded one. The suite runs
# on every core (pytest-xdist, `-n auto`); pass `-n 0` to run it in one process.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
# Browser tests drive Debian's Chromium; installing it needs root (apt-get).
./scripts/install-browser.sh || echo "warning: could not install Chromium; browser tests will say how" >&2
exec .venv/bin/python -m pytest -n auto "$@"
