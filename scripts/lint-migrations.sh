#!/usr/bin/env bash
# Lint the SQL of the emergent-contacts migration with squawk.
#
# Generates the offline SQL (`flask db upgrade --sql`) of the revisions from
# FROM_REVISION to TO_REVISION (default 0001_fleetos_v1 -> 0002_emergent_contacts)
# and runs squawk on it, assuming PostgreSQL 15 as in production. Exits non-zero
# on any squawk warning. Extra arguments are passed to squawk (e.g. --reporter gcc).
#
# Needs no database: offline mode only builds the URL, it never connects, so a
# dummy DATABASE_URL is used (without one, FleetOS would start its embedded
# PostgreSQL server). Offline, 0002 assumes a plain v1 database.
#
# Warnings accepted on purpose are not excluded here: each is explained by an
# SQL comment in migrations/versions/0002_emergent_contacts.py, right above the
# statement, with a `-- squawk-ignore <rule>` line that squawk honours.
set -euo pipefail
cd "$(dirname "$0")/.."

FROM_REVISION="${FROM_REVISION:-0001_fleetos_v1}"
TO_REVISION="${TO_REVISION:-0002_emergent_contacts}"
PG_VERSION="${PG_VERSION:-15}"

[ -x .venv/bin/flask ] || { echo "error: .venv/bin/flask not found; run scripts/test.sh first" >&2; exit 2; }
if [ ! -x .venv/bin/squawk ]; then
    echo "Installing squawk-cli into .venv ..." >&2
    .venv/bin/python -m pip install --quiet squawk-cli
fi

sql_file="$(mktemp "${TMPDIR:-/tmp}/fleetos-migrations.XXXXXX.sql")"
log_file="$(mktemp "${TMPDIR:-/tmp}/fleetos-migrations.XXXXXX.log")"
trap 'rm -f "$sql_file" "$log_file"' EXIT

if ! env FLEETOS_ENV=development DATABASE_URL=postgresql://lint@127.0.0.1/lint \
        .venv/bin/flask db upgrade --sql "$FROM_REVISION:$TO_REVISION" >"$sql_file" 2>"$log_file"; then
    cat "$log_file" >&2
    echo "error: could not generate the offline SQL for $FROM_REVISION:$TO_REVISION" >&2
    exit 2
fi
# An empty range would lint nothing and pass: refuse it.
grep -q "^-- Running upgrade" "$sql_file" || {
    cat "$log_file" >&2
    echo "error: no revisions in $FROM_REVISION:$TO_REVISION" >&2
    exit 2
}

echo "$(.venv/bin/squawk --version) on $(grep -c '^-- Running upgrade' "$sql_file") revision(s), $FROM_REVISION:$TO_REVISION, PostgreSQL $PG_VERSION"
.venv/bin/squawk --pg-version="$PG_VERSION" --stdin-filepath "$FROM_REVISION-$TO_REVISION.sql" "$@" <"$sql_file"
