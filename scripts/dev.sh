#!/usr/bin/env bash
# Install FleetOS into .venv and run it: embedded PostgreSQL, demo data, mail on the console.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[embedded]'
.venv/bin/flask db upgrade
.venv/bin/flask fleetos seed-demo
exec .venv/bin/flask run --debug "$@"
