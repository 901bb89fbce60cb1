#!/usr/bin/env bash
# Install FleetOS into .venv (as locked) and run it: embedded PostgreSQL, demo data, mail on
# the console. Arguments go to `flask run` (e.g. --port 5077); links in the printed mail
# point at that port. Stop the embedded PostgreSQL afterwards with ./scripts/stop-db.sh.
#
# Two processes, as in production: the web server (flask run, with the reloader)
# and the delivery worker (flask fleetos deliver --loop), which prints each
# message to this terminal within a moment of it being queued. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh

# Where `flask run` will listen, read from its own options (its defaults otherwise), so
# that the links FleetOS prints lead back here, unless BASE_URL says otherwise.
host=127.0.0.1
port=5000
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    case "${args[i]}" in
        -p | --port) port="${args[i + 1]:-$port}" ;;
        --port=*) port="${args[i]#--port=}" ;;
        -h | --host) host="${args[i + 1]:-$host}" ;;
        --host=*) host="${args[i]#--host=}" ;;
    esac
done
[ "$host" = "0.0.0.0" ] && host=127.0.0.1
export BASE_URL="${BASE_URL:-http://$host:$port}"

.venv/bin/flask db upgrade
.venv/bin/flask fleetos seed-demo
echo "FleetOS: $BASE_URL (sign-in links are printed below; ./scripts/stop-db.sh stops the database)"

.venv/bin/flask fleetos deliver --loop &
worker=$!
trap 'kill "$worker" 2>/dev/null; wait "$worker" 2>/dev/null || true' EXIT
.venv/bin/flask run --debug "$@"
