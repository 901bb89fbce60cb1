#!/usr/bin/env bash
# Audit the locked dependencies (requirements.lock, requirements-dev.lock) for known vulnerabilities.
#
# Fails on any known vulnerability. pip-audit reads vulnerability data from
# PyPI's JSON API (or OSV); where neither can be reached (a registry mirror
# that serves only /simple), it can audit nothing, and this says so plainly
# instead of reporting "no known vulnerabilities".
set -euo pipefail
cd "$(dirname "$0")/.."
report="$(mktemp)"
trap 'rm -f "$report"' EXIT
.venv/bin/pip-audit -r requirements.lock -r requirements-dev.lock --no-deps --disable-pip --format json --output "$report" \
    2>/dev/null || true
.venv/bin/python - "$report" <<'PY'
import json
import sys

deps = json.load(open(sys.argv[1]))["dependencies"]
vulnerable = [d for d in deps if d.get("vulns")]
skipped = [d for d in deps if "skip_reason" in d]
audited = len(deps) - len(skipped)
for dep in vulnerable:
    ids = ", ".join(v["id"] for v in dep["vulns"])
    print(f"VULNERABLE {dep['name']} {dep['version']}: {ids}")
print(f"pip-audit: {audited} of {len(deps)} locked packages audited, {len(vulnerable)} vulnerable")
if skipped and not audited:
    print("WARNING: no vulnerability data could be fetched from this network "
          "(PyPI JSON API / OSV unreachable); nothing was audited")
sys.exit(1 if vulnerable else 0)
PY
