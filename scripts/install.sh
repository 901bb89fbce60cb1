#!/usr/bin/env bash
# Install FleetOS into .venv exactly as locked (requirements-dev.lock), then FleetOS itself.
# Used by dev.sh, test.sh and check.sh, so a newcomer, the tests and CI run the same set
# that pip-audit checked. Safe to run again (only what changed is installed).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -r requirements-dev.lock
# The checkout itself, editable, without resolving anything beyond the lock.
.venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
