#!/usr/bin/env bash
# A long schemathesis run with every check against a real `crm serve` on PostgreSQL.
#
#   scripts/schemathesis_long.sh [MINUTES] [MAX_EXAMPLES]      (defaults: 10, 300)
#
# Creates a scratch database on CRM_TEST_POSTGRES_URL's server, loads a small demo
# data set (so reads find things), starts `crm serve` on a free port with an admin
# key, and runs `schemathesis run --checks all` (NUL bytes allowed in strings) for
# MINUTES. Reports go to ${REPORT_DIR:-/tmp/crm-schemathesis}: junit.xml and the
# server log. Exit code is schemathesis's (0: no failure found).
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES="${1:-10}"
MAX_EXAMPLES="${2:-300}"
REPORT_DIR="${REPORT_DIR:-/tmp/crm-schemathesis}"
ROOT="$PWD"
PY="$ROOT/.venv/bin/python"
mkdir -p "$REPORT_DIR"

read -r DB_URL DB_NAME PORT < <($PY - <<'PY'
import uuid, psycopg
from scripts.soak import ADMIN_URL, free_port, url_for
name = f"crm_schemathesis_{uuid.uuid4().hex[:10]}"
with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
    conn.execute(f"CREATE DATABASE {name}")
print(url_for(name), name, free_port())
PY
)
export CRM_DATABASE_URL="$DB_URL" CRM_SECRET_KEY=schemathesis-secret CRM_LOG_FORMAT=json
export CRM_READ_WAIT_SECONDS=0.5
SERVER_PID=""
cleanup() {
    cd "$ROOT"
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
    $PY - "$DB_NAME" <<'PY'
import sys, psycopg
from scripts.soak import ADMIN_URL
with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
    conn.execute(f"DROP DATABASE IF EXISTS {sys.argv[1]} WITH (FORCE)")
PY
}
trap cleanup EXIT

.venv/bin/crm demo --households 10 --seed 3 >/dev/null 2>"$REPORT_DIR/demo.log"
KEY=$(.venv/bin/crm keys create --role admin 2>/dev/null | tail -1)
.venv/bin/crm serve --port "$PORT" >"$REPORT_DIR/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break
    sleep 0.2
done

set +e
# Run from the report directory: schemathesis keeps its .schemathesis/ cache in the cwd.
cd "$REPORT_DIR"
"$ROOT/.venv/bin/schemathesis" run "http://127.0.0.1:$PORT/openapi.json" \
    --checks all \
    --header "Authorization: Bearer $KEY" \
    --max-time "$((MINUTES * 60))" \
    --max-examples "$MAX_EXAMPLES" \
    --generation-allow-x00 true \
    --request-timeout 30 \
    --continue-on-failure \
    --seed 7 \
    --report junit --report-dir "$REPORT_DIR"
STATUS=$?
cd "$ROOT"
set -e
echo "server 5xx lines in the log: $(grep -c '"status": 50[0-9]' "$REPORT_DIR/server.log" || true)"
exit "$STATUS"
