#!/usr/bin/env bash
# Install FleetOS into .venv and run it: embedded PostgreSQL, demo data, mail on the console.
#
# Two processes, as in production: the web server (flask run, with the reloader)
# and the delivery worker (flask fleetos deliver --loop), which prints each
# message to this terminal within a moment of it being queued. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[embedded]'
.venv/bin/flask db upgrade
.venv/bin/flask fleetos seed-demo

.venv/bin/flask fleetos deliver --loop &
worker=$!
trap 'kill "$worker" 2>/dev/null; wait "$worker" 2>/dev/null || true' EXIT
.venv/bin/flask run --debug "$@"
