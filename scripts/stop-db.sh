#!/usr/bin/env bash
# Stop the embedded PostgreSQL that ./scripts/dev.sh started (instance/pgdata); its data stays.
# `./scripts/stop-db.sh instance/test-pgdata` stops the one the tests start.
set -euo pipefail
cd "$(dirname "$0")/.."
data_dir="${1:-instance/pgdata}"
.venv/bin/python - "$data_dir" <<'PY'
import sys
from pathlib import Path

from fleetos.embedded_db import stop_embedded_server

data_dir = Path(sys.argv[1])
if stop_embedded_server(data_dir):
    print(f"stopped the embedded PostgreSQL in {data_dir}")
else:
    print(f"no embedded PostgreSQL is running in {data_dir}")
PY
