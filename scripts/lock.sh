#!/usr/bin/env bash
# Pin every dependency: run after changing dependencies in pyproject.toml, commit both files.
#
#   requirements.lock      what FleetOS runs on (production installs this; pip-audit reads it)
#   requirements-dev.lock  that, plus the embedded PostgreSQL, the test and the lint tools,
#                          at the same versions (dev.sh, test.sh, check.sh and CI install it)
#
# Existing pins are kept where they still fit; `./scripts/lock.sh --upgrade` moves
# everything to the newest releases.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/pip-compile ] || { python3 -m venv .venv && .venv/bin/python -m pip install --quiet pip-tools; }
common=(--quiet --strip-extras --no-emit-find-links --no-emit-index-url --allow-unsafe "$@")
CUSTOM_COMPILE_COMMAND="./scripts/lock.sh" .venv/bin/pip-compile "${common[@]}" --output-file=requirements.lock pyproject.toml
CUSTOM_COMPILE_COMMAND="./scripts/lock.sh" .venv/bin/pip-compile "${common[@]}" --extra=embedded --extra=test --extra=lint \
    --constraint=requirements.lock --output-file=requirements-dev.lock pyproject.toml
echo "requirements.lock and requirements-dev.lock are up to date with pyproject.toml"
