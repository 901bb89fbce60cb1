#!/usr/bin/env bash
# Quality gates: lint and format, security lint, dependency audit, migration SQL lint.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m pip install --quiet -e '.[lint]'

echo "== ruff (lint, then format check)"
.venv/bin/ruff check .
.venv/bin/ruff format --check .

echo "== bandit: no high-severity findings"
.venv/bin/bandit -q -r fleetos migrations wsgi.py gunicorn.conf.py --severity-level high

echo "== pip-audit on requirements.lock"
./scripts/audit-deps.sh

echo "== squawk on the emergent-contacts migration SQL"
./scripts/lint-migrations.sh
