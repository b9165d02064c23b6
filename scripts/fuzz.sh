#!/usr/bin/env bash
# Fuzz the running API with schemathesis, authenticated, and fail on any 5xx.
#
# A dedicated database (jobs_fuzz, dropped and created afresh) on the local PostgreSQL, the
# API under uvicorn on a free loopback port, a user and an admin made with `python -m app
# create-user`, a few seeded jobs, then schemathesis passes with a fixed seed:
#   1. every operation but logout, the events stream and the admin routes, as the user;
#   2. the admin job routes, then the admin user routes, as the admin;
#   3. logout, with a token of its own (it revokes the token it is given, so it goes last).
# Each pass runs one worker with no example database, so a seed replays the same requests.
# The bound is --max-examples per operation plus a hard `timeout` per pass; schemathesis's own
# --max-time is not used: it is a budget that fuzzing keeps spending, so runs would vary.
# Only `not_a_server_error` is checked. The server is stopped on every exit path.
#
# Knobs (environment): FUZZ_SEED (42), FUZZ_MAX_EXAMPLES (50 per operation), FUZZ_TIME_LIMIT
# (seconds per pass, a hard stop; default 600), FUZZ_PORT (a free port), FUZZ_REPORT_DIR
# (test-artifacts/fuzz), PGHOST/PGPORT/PGUSER (127.0.0.1/5432/postgres).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN="$ROOT/.venv/bin"

PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
PGUSER=${PGUSER:-postgres}
FUZZ_DB=jobs_fuzz
SEED=${FUZZ_SEED:-42}
MAX_EXAMPLES=${FUZZ_MAX_EXAMPLES:-50}
TIME_LIMIT=${FUZZ_TIME_LIMIT:-600}
REPORT_DIR=${FUZZ_REPORT_DIR:-$ROOT/test-artifacts/fuzz}
PASSWORD="fuzz-password-0123456789"
USER_EMAIL="fuzz-user@example.com"
ADMIN_EMAIL="fuzz-admin@example.com"

case "$PGHOST" in
  127.*|localhost|::1) ;;
  *) echo "fuzz.sh: PGHOST must be a loopback address, not $PGHOST" >&2; exit 2 ;;
esac
for tool in psql curl timeout; do
  command -v "$tool" >/dev/null || { echo "fuzz.sh: $tool is not on PATH" >&2; exit 2; }
done
[ -x "$BIN/schemathesis" ] || {
  echo "fuzz.sh: $BIN/schemathesis missing: $BIN/pip install schemathesis" >&2; exit 2;
}

free_port() {
  "$BIN/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
PORT=${FUZZ_PORT:-$(free_port)}
BASE="http://127.0.0.1:$PORT"

# The app's settings come from here, never from a .env or the caller's shell.
unset REDIS_URL TEST_DATABASE_URL COOKIE_SECURE COOKIE_SAMESITE CORS_ORIGINS
export ENVIRONMENT=test
export DATABASE_URL="postgresql+asyncpg://$PGUSER@$PGHOST:$PGPORT/$FUZZ_DB"
export SECRET_KEY="fuzz-secret-key-not-for-production-0123"  # 40 characters
export LOGIN_MAX_FAILURES=1000000  # the fuzzer fails logins by the thousand; no 429s
export CLIENT_MAX_PASSWORD_CHECKS=1000000  # nor for its thousands of logins and registrations
export PYTHONUNBUFFERED=1

mkdir -p "$REPORT_DIR"
SERVER_LOG="$REPORT_DIR/uvicorn.log"
: >"$SERVER_LOG"
SERVER_PID=""

stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}
trap stop_server EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "== database $FUZZ_DB on $PGHOST:$PGPORT"
psql -X -q -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d postgres \
  -c "DROP DATABASE IF EXISTS $FUZZ_DB WITH (FORCE)" \
  -c "CREATE DATABASE $FUZZ_DB"
timeout 120 "$BIN/alembic" upgrade head

echo "== users"
timeout 60 "$BIN/python" -m app create-user --email "$USER_EMAIL" --password "$PASSWORD" \
  --full-name "Fuzz User"
timeout 60 "$BIN/python" -m app create-user --email "$ADMIN_EMAIL" --password "$PASSWORD" \
  --full-name "Fuzz Admin" --admin

echo "== uvicorn on $BASE (log: $SERVER_LOG)"
"$BIN/python" -m uvicorn app.main:app --host 127.0.0.1 --port "$PORT" --no-access-log \
  >>"$SERVER_LOG" 2>&1 &
SERVER_PID=$!
ready=""
for _ in $(seq 1 100); do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "fuzz.sh: uvicorn exited before it was ready:" >&2
    tail -n 40 "$SERVER_LOG" >&2
    exit 1
  fi
  if curl -fsS -o /dev/null --max-time 2 "$BASE/readyz" 2>/dev/null; then ready=1; break; fi
  sleep 0.2
done
[ -n "$ready" ] || { echo "fuzz.sh: $BASE/readyz not ready after 20 s" >&2; exit 1; }

login() {
  curl -fsS --max-time 10 -X POST "$BASE/api/auth/login" \
    -H "Content-Type: application/json" \
    -d "{\"email\": \"$1\", \"password\": \"$PASSWORD\"}" |
    "$BIN/python" -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
}
api() {  # api TOKEN METHOD PATH [JSON] -> the job_id of the answer
  local token=$1 method=$2 path=$3 body=${4:-}
  curl -fsS --max-time 10 -X "$method" "$BASE$path" \
    -H "Authorization: Bearer $token" -H "Content-Type: application/json" \
    ${body:+-d "$body"} |
    "$BIN/python" -c 'import json, sys; print(json.load(sys.stdin)["job"]["job_id"])'
}
TOKEN=$(login "$USER_EMAIL")
ADMIN_TOKEN=$(login "$ADMIN_EMAIL")
LOGOUT_TOKEN=$(login "$USER_EMAIL")

echo "== seeding jobs"
pending=$(api "$TOKEN" POST /api/users/jobs '{"job_name": "nightly report", "job_type": "simple", "parameters": {"seconds": 1}}')
running=$(api "$TOKEN" POST /api/users/jobs '{"job_name": "resize images", "job_type": "simple"}')
done_=$(api "$TOKEN" POST /api/users/jobs '{"job_name": "export", "job_type": "simple", "parameters": {"seconds": 0}}')
api "$ADMIN_TOKEN" PATCH "/api/admin/jobs/$running" '{"status": "running"}' >/dev/null
api "$ADMIN_TOKEN" PATCH "/api/admin/jobs/$done_" '{"status": "running"}' >/dev/null
api "$ADMIN_TOKEN" PATCH "/api/admin/jobs/$done_" '{"status": "completed"}' >/dev/null
echo "jobs $pending (pending), $running (running), $done_ (completed)"

failed_passes=()
fuzz() {  # fuzz NAME TOKEN [schemathesis options...]
  local name=$1 token=$2
  shift 2
  echo
  echo "== schemathesis: $name"
  local status=0
  timeout --kill-after=10 "$TIME_LIMIT" "$BIN/schemathesis" run "$BASE/openapi.json" \
    --checks not_a_server_error \
    -H "Authorization: Bearer $token" \
    --seed "$SEED" \
    --max-examples "$MAX_EXAMPLES" \
    --workers 1 \
    --generation-database none \
    --continue-on-failure \
    --request-timeout 10 \
    --no-color \
    --report junit --report-junit-path "$REPORT_DIR/$name.junit.xml" \
    "$@" || status=$?
  if [ "$status" -ne 0 ]; then
    [ "$status" -eq 124 ] && echo "fuzz.sh: pass '$name' hit the ${TIME_LIMIT}s limit" >&2
    failed_passes+=("$name (exit $status)")
  fi
}

# The events stream is left out: it answers for as long as the token holds, so every call
# would end in the request timeout. tests/jobs/test_job_events*.py cover it (bad ids included).
fuzz user "$TOKEN" --exclude-path /api/auth/logout --exclude-path-regex '^/api/admin/' \
  --exclude-path /api/users/jobs/events
# Jobs before users: PATCH /api/admin/users/{user_id} may deactivate the admin itself (its id
# is small, and small ids are what the generator tries first), ending its token.
fuzz admin-jobs "$ADMIN_TOKEN" --include-path-regex '^/api/admin/jobs'
fuzz admin-users "$ADMIN_TOKEN" --include-path-regex '^/api/admin/users'
fuzz logout "$LOGOUT_TOKEN" --include-path /api/auth/logout

echo
unhandled=$(grep -c "Unhandled error" "$SERVER_LOG" || true)
echo "== server log: $unhandled unhandled errors ($SERVER_LOG)"
if [ "$unhandled" -gt 0 ]; then
  grep -E "Unhandled error|Error:|Exception:" "$SERVER_LOG" | sort | uniq -c | sort -rn | head -20
fi
if [ "${#failed_passes[@]}" -gt 0 ]; then
  echo "fuzz.sh: FAILED: ${failed_passes[*]}" >&2
  exit 1
fi
echo "fuzz.sh: no server errors"
