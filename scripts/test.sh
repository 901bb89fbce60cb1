#!/usr/bin/env bash
# Install FleetOS with its test dependencies into .venv and run the test suite.
# Uses TEST_DATABASE_URL's PostgreSQL server if set, else an embedded one.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
# Browser tests drive Debian's Chromium; installing it needs root (apt-get).
./scripts/install-browser.sh || echo "warning: could not install Chromium; browser tests will say how" >&2
exec .venv/bin/python -m pytest "$@"
