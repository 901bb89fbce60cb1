#!/usr/bin/env bash
# Lint the SQL of every migration revision with squawk.
#
# For each revision from the first to head (as `flask db history` lists them,
# so a revision added later is linted too), generates its offline SQL
# (`flask db upgrade --sql <previous>:<revision>`) and runs squawk on it,
# assuming PostgreSQL 15 as in production. Then it lints the whole upgrade of a
# v1 database (0001_fleetos_v1:head) in one piece, since that run differs: the
# revisions after 0002 build on the service_requests 0002 is rebuilding, and
# the swap ends it (migrations/requests_rebuild.py). Exits non-zero if squawk
# warns about any of them. Extra arguments are passed to squawk (e.g.
# --reporter gcc). FROM_REVISION and TO_REVISION lint just that one range.
#
# Needs no database: offline mode only builds the URL, it never connects, so a
# dummy DATABASE_URL is used (without one, FleetOS would start its embedded
# PostgreSQL server). Offline, 0002 assumes a plain v1 database.
#
# Warnings accepted on purpose are not excluded here: each is explained by an
# SQL comment in the revision, right above the statement, with a
# `-- squawk-ignore <rule>` line that squawk honours. The one exception is
# Alembic's own alembic_version table in the first revision's SQL, which no
# revision writes: the comment for it is added below.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_VERSION="${PG_VERSION:-15}"

[ -x .venv/bin/flask ] || { echo "error: .venv/bin/flask not found; run scripts/test.sh first" >&2; exit 2; }
if [ ! -x .venv/bin/squawk ]; then
    echo "Installing squawk-cli into .venv ..." >&2
    .venv/bin/python -m pip install --quiet squawk-cli
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/fleetos-migrations.XXXXXX")"
trap 'rm -rf "$work"' EXIT

offline_flask() {
    env FLEETOS_ENV=development DATABASE_URL=postgresql://lint@127.0.0.1/lint .venv/bin/flask "$@"
}

if [ -n "${FROM_REVISION:-}${TO_REVISION:-}" ]; then
    ranges=("${FROM_REVISION:-0001_fleetos_v1}:${TO_REVISION:-head}")
else
    # "<base> -> 0001_fleetos_v1, ..." newest first; lint oldest first.
    if ! offline_flask db history >"$work/history" 2>"$work/log"; then
        cat "$work/log" >&2
        echo "error: could not list the revisions" >&2
        exit 2
    fi
    mapfile -t ranges < <(sed -nE 's/^(<base>|[^ ]+) -> ([^ ,]+).*/\1:\2/p' "$work/history" \
        | sed 's/^<base>:/base:/' | tac)
    [ "${#ranges[@]}" -gt 0 ] || { echo "error: no revisions found" >&2; exit 2; }
    ranges+=("0001_fleetos_v1:head")
fi

echo "$(.venv/bin/squawk --version), PostgreSQL $PG_VERSION"
failed=0
for range in "${ranges[@]}"; do
    sql_file="$work/${range//:/-}.sql"
    if ! offline_flask db upgrade --sql "$range" >"$sql_file" 2>"$work/log"; then
        cat "$work/log" >&2
        echo "error: could not generate the offline SQL for $range" >&2
        exit 2
    fi
    # An empty range would lint nothing and pass: refuse it.
    grep -q "^-- Running upgrade" "$sql_file" || {
        echo "error: no revisions in $range" >&2
        exit 2
    }
    # Alembic creates its version table when the SQL starts from base.
    sed -i '/^    version_num VARCHAR(32) NOT NULL/i\
    -- Alembic'"'"'s own version table, created as Alembic creates it.\
    -- squawk-ignore prefer-text-field' "$sql_file"
    revisions="$(grep -c '^-- Running upgrade' "$sql_file")"
    if .venv/bin/squawk --pg-version="$PG_VERSION" --stdin-filepath "$range.sql" "$@" <"$sql_file"; then
        echo "ok   $range ($revisions revision(s))"
    else
        echo "FAIL $range ($revisions revision(s))"
        failed=1
    fi
done
exit "$failed"
