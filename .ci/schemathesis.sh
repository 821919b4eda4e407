#!/usr/bin/env bash
# Schemathesis against the served OpenAPI document of a real `dialtone serve` on 127.0.0.1,
# with a provider token: a bounded number of examples per operation, no 5xx, every response
# conforming to the schema. Stops the server it started; prints the run's summary.
# With no argument it runs on SQLite; with a PostgreSQL admin URL (`postgres://…/postgres`) it
# makes a fresh database there, runs against it, and drops it afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${CARGO_TARGET_DIR:-target}/schemathesis-venv"
if [ ! -x "$VENV/bin/schemathesis" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q schemathesis
fi

cargo build -q --bin dialtone
BIN="${CARGO_TARGET_DIR:-target}/debug/dialtone"
DATA="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export DIALTONE_DATA_DIR="$DATA" DIALTONE_LISTEN="127.0.0.1:$PORT" DIALTONE_INTERNAL_LISTEN=off \
    DIALTONE_PUBLIC_URL="http://127.0.0.1:$PORT" DIALTONE_MAIL=log DIALTONE_API_RATE_LIMIT=100000
unset DIALTONE_DATABASE_URL
PG_ADMIN_URL="${1:-}"
PG_DB=""
if [ -n "$PG_ADMIN_URL" ]; then
    PG_DB="dialtone_t_schemathesis_$$"
    psql "$PG_ADMIN_URL" -qc "CREATE DATABASE \"$PG_DB\"" >/dev/null
    export DIALTONE_DATABASE_URL="${PG_ADMIN_URL%/*}/$PG_DB"
fi
cleanup() {
    if [ -n "${SERVER:-}" ]; then
        kill "$SERVER" 2>/dev/null || true
        wait "$SERVER" 2>/dev/null || true
    fi
    rm -rf "$DATA"
    if [ -n "$PG_DB" ]; then
        psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" >/dev/null || true
    fi
}
trap cleanup EXIT
"$BIN" tenant add acme --name "Acme Ltd" >/dev/null
"$BIN" user add 200-acme --name Ada --role admin >/dev/null
TOKEN="$("$BIN" api-token add schemathesis | tail -n 1)"
"$BIN" serve >"$DATA/serve.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 50); do
    curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break
    sleep 0.2
done

timeout 900 "$VENV/bin/schemathesis" run "http://127.0.0.1:$PORT/api/v1/openapi.json" \
    -H "Authorization: Bearer $TOKEN" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    -n "${SCHEMATHESIS_EXAMPLES:-25}" \
    --url "http://127.0.0.1:$PORT"
