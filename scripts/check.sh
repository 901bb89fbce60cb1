#!/usr/bin/env bash
# Quality gates: lint and format, types, security lint, dependency audit, migration SQL lint.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh  # the locked tools: a new ruff or mypy release changes nothing here

echo "== ruff (lint, then format check)"
.venv/bin/ruff check .
.venv/bin/ruff format --check .

echo "== mypy (strict) on fleetos/"
.venv/bin/mypy

echo "== bandit: no high-severity findings"
.venv/bin/bandit -q -r fleetos migrations wsgi.py gunicorn.conf.py --severity-level high

echo "== pip-audit on requirements.lock and requirements-dev.lock"
./scripts/audit-deps.sh

echo "== squawk on the SQL of every migration revision (and of a whole v1 upgrade)"
./scripts/lint-migrations.sh
