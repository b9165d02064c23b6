#!/usr/bin/env bash
# Throughput and latency of the jobs API on PostgreSQL, against a bare ASGI ceiling and the
# FastAPI floor (an empty route of the same app).
# The method is described in docs/benchmarks.md. Usage: bench/run.sh (or `make bench`).
#
# Settings (environment):
#   BENCH_DURATION=10s     length of each measurement (wrk -d)
#   BENCH_WARMUP=1s        unrecorded warm-up before each scenario ("0" for none)
#   BENCH_ROUNDS=3         interleaved rounds; the report gives medians over them
#   BENCH_CONNECTIONS="64 256"
#   BENCH_TIMEOUT=2s       wrk's per-request timeout (slower answers count as errors)
#   BENCH_PORT=8100        loopback port for the server under test
#   BENCH_API_CPU=0 BENCH_WRK_CPU=1
#   BENCH_PGHOST=127.0.0.1 BENCH_PGPORT=5432 BENCH_PGUSER=postgres   (trust authentication)
#   BENCH_OTHER_USERS=3000 BENCH_JOBS_PER_USER=100 BENCH_USER_JOBS=50
#   BENCH_SCENARIOS="bare floor list list304 stats submit submit50 list304_db list_small"
#                          the HTTP scenarios to run (default all; "" for none)
#   BENCH_PIPELINE=1       0 skips the jobs pipeline (bench/pipeline.py)
#   BENCH_DATABASE=jobs_bench  the databases' names: it, <it>_small and <it>_pipeline
#
# It drops and recreates those databases (jobs_bench, jobs_bench_small, jobs_bench_pipeline).
# Results go to bench/results/<run>/ and bench/results/latest.{md,json}.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

DURATION=${BENCH_DURATION:-10s}
WARMUP=${BENCH_WARMUP:-1s}
ROUNDS=${BENCH_ROUNDS:-3}
read -r -a CONNECTIONS <<<"${BENCH_CONNECTIONS:-64 256}"
TIMEOUT=${BENCH_TIMEOUT:-2s}
PORT=${BENCH_PORT:-8100}
API_CPU=${BENCH_API_CPU:-0}
WRK_CPU=${BENCH_WRK_CPU:-1}
PG_HOST=${BENCH_PGHOST:-127.0.0.1}
PG_PORT=${BENCH_PGPORT:-5432}
PG_USER=${BENCH_PGUSER:-postgres}
OTHER_USERS=${BENCH_OTHER_USERS:-3000}
JOBS_PER_USER=${BENCH_JOBS_PER_USER:-100}
USER_JOBS=${BENCH_USER_JOBS:-50}
ALL_SCENARIOS="bare floor list list304 stats submit submit50 list304_db list_small"
read -r -a SCENARIOS <<<"${BENCH_SCENARIOS-$ALL_SCENARIOS}"
for scenario in "${SCENARIOS[@]}"; do
    [[ " $ALL_SCENARIOS " == *" $scenario "* ]] \
        || { echo "unknown scenario in BENCH_SCENARIOS: $scenario ($ALL_SCENARIOS)" >&2; exit 2; }
done
# The submit scenario with many writers: this many seeded users (bench-other-N), one token each.
WRITERS=50

BIG_DB=${BENCH_DATABASE:-jobs_bench}
SMALL_DB=${BIG_DB}_small
PIPELINE_DB=${BIG_DB}_pipeline
BENCH_EMAIL=bench@example.com
WRITER_EMAIL=bench-writer@example.com
PASSWORD='bench password 12345'
# Fixed, 48 characters, good for this throwaway benchmark only.
SECRET_KEY_VALUE=bench-only-signing-key-never-use-in-production01
# A registered type (an unknown one is 422); queued, never run: no worker runs during the bench.
SUBMIT_BODY='{"job_name": "bench submit", "job_type": "simple", "parameters": {"seconds": 0}}'
LIST_PATH=/api/users/jobs
STATS_PATH=/api/users/jobs/stats
FLOOR_PATH=/bench/floor
BASE_URL="http://127.0.0.1:$PORT"

PY="$ROOT/.venv/bin/python"
UVICORN="$ROOT/.venv/bin/uvicorn"
ALEMBIC="$ROOT/.venv/bin/alembic"

RUN_ID=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS="$ROOT/bench/results"
RUN_DIR="$RESULTS/run-$RUN_ID"
TMP=""
SERVER_PID=""
SERVER_READY_PATH=/

# wanted SCENARIO...: true when any of them is to run.
wanted() {
    local scenario chosen
    for scenario in "$@"; do
        for chosen in "${SCENARIOS[@]}"; do
            [[ "$scenario" == "$chosen" ]] && return 0
        done
    done
    return 1
}

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

stop_server() {
    [[ -n "$SERVER_PID" ]] || return 0
    local pid=$SERVER_PID
    SERVER_PID=""
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_server
    [[ -n "$TMP" ]] && rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# "10s" -> 10, "2m" -> 120, "1500ms" -> 2 (rounded up), "7" -> 7.
to_seconds() {
    local value=$1
    case $value in
        *ms) echo $(((${value%ms} + 999) / 1000)) ;;
        *s) echo "${value%s}" ;;
        *m) echo $((${value%m} * 60)) ;;
        *h) echo $((${value%h} * 3600)) ;;
        *) echo "$value" ;;
    esac
}

# ---------------------------------------------------------------------------------------------
# Prerequisites
# ---------------------------------------------------------------------------------------------

if [[ ! -f .venv/.installed ]]; then
    log "creating .venv (make .venv/.installed)"
    make .venv/.installed
fi

if ! command -v wrk >/dev/null 2>&1; then
    log "installing wrk with apt-get"
    SUDO=""
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 || die "wrk is missing and we are not root: apt-get install wrk"
        SUDO=sudo
    fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >/dev/null
fi

for tool in psql taskset curl timeout; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is required"
done
taskset -c "$API_CPU" true 2>/dev/null || die "CPU $API_CPU is not available (BENCH_API_CPU)"
taskset -c "$WRK_CPU" true 2>/dev/null || die "CPU $WRK_CPU is not available (BENCH_WRK_CPU)"
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    die "something already listens on 127.0.0.1:$PORT (set BENCH_PORT)"
fi
if [[ -f .env ]]; then
    log "warning: .env exists; settings in it that the benchmark does not set will apply"
fi

DURATION_S=$(to_seconds "$DURATION")
WARMUP_S=$(to_seconds "$WARMUP")
WRK_LIMIT=$((DURATION_S + WARMUP_S + 30))

mkdir -p "$RUN_DIR/raw" "$RUN_DIR/logs"
TMP=$(mktemp -d)
: >"$RUN_DIR/measurements.tsv"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED_AT=$(date -u +"%Y-%m-%d %H:%M UTC")
log "run $RUN_ID: ${ROUNDS} rounds x ${DURATION} at ${CONNECTIONS[*]} connections -> $RUN_DIR"

# The jobs pipeline: API and worker processes end to end (bench/pipeline.py); the last step.
run_pipeline() {
    [[ "${BENCH_PIPELINE:-1}" != 0 ]] || return 0
    log "pipeline: 50 users submit simple jobs while 2 workers run them"
    "$PY" "$ROOT/bench/pipeline.py" --host "$PG_HOST" --port "$PG_PORT" --user "$PG_USER" \
        --database "$PIPELINE_DB" --seconds "$DURATION_S" --logs "$RUN_DIR/logs/pipeline" \
        | tee "$RUN_DIR/pipeline.md"
    cp "$RUN_DIR/pipeline.md" "$RESULTS/pipeline-latest.md"
}

if ((${#SCENARIOS[@]} == 0)); then
    run_pipeline
    exit 0
fi

# ---------------------------------------------------------------------------------------------
# Databases
# ---------------------------------------------------------------------------------------------

db_url() { echo "postgresql+asyncpg://$PG_USER@$PG_HOST:$PG_PORT/$1"; }

psql_in() {
    local db=$1
    shift
    psql -X -q -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$db" "$@"
}

# app_env DB: sets APP_ENV, the `env` command line every app process runs under (migrations,
# create-user, the server). An array, not a function, so that a background server's $! is the
# server itself (env and taskset exec it).
app_env() {
    APP_ENV=(env -u REDIS_URL
        ENVIRONMENT=production
        SECRET_KEY="$SECRET_KEY_VALUE"
        COOKIE_SECURE=true
        LOGIN_MAX_FAILURES=1000000
        ACCESS_TOKEN_EXPIRE_MINUTES=240
        DATABASE_URL="$(db_url "$1")")
}

create_database() {
    local db=$1 others=$2 setup_log="$RUN_DIR/logs/setup-$1.log"
    log "database $db: recreate, migrate, load" \
        "($others other users x $JOBS_PER_USER jobs, $USER_JOBS for the benchmark user)"
    psql_in postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" \
        >>"$setup_log" 2>&1 || die "could not recreate $db (see $setup_log)"
    app_env "$db"
    "${APP_ENV[@]}" "$ALEMBIC" upgrade head >>"$setup_log" 2>&1 \
        || die "alembic upgrade head failed on $db (see $setup_log)"
    # The benchmark user first, so that its jobs can be spread among everybody else's.
    "${APP_ENV[@]}" "$PY" -m app create-user --email "$BENCH_EMAIL" --password "$PASSWORD" \
        --full-name "Bench User" >>"$setup_log" 2>&1 || die "create-user failed (see $setup_log)"
    "${APP_ENV[@]}" "$PY" -m app create-user --email "$WRITER_EMAIL" --password "$PASSWORD" \
        --full-name "Bench Writer" >>"$setup_log" 2>&1 || die "create-user failed (see $setup_log)"
    psql_in "$db" -v others="$others" -v per_user="$JOBS_PER_USER" \
        -v bench_email="$BENCH_EMAIL" -v bench_jobs="$USER_JOBS" \
        -f "$ROOT/bench/seed.sql" >>"$setup_log" 2>&1 || die "loading $db failed (see $setup_log)"
    psql_in "$db" -c "VACUUM ANALYZE" >>"$setup_log" 2>&1 || die "VACUUM ANALYZE failed on $db"
    local mine
    mine=$(psql_in "$db" -At -c "SELECT count(*) FROM jobs JOIN users USING (user_id)
                                  WHERE users.email = '$BENCH_EMAIL'")
    [[ "$mine" == "$USER_JOBS" ]] || die "$db: the benchmark user has $mine jobs, not $USER_JOBS"
}

count_jobs() { psql_in "$1" -At -c "SELECT count(*) FROM jobs"; }

psql_in postgres -At -c "SELECT 1" >/dev/null 2>&1 \
    || die "PostgreSQL at $PG_HOST:$PG_PORT does not let $PG_USER in (trust authentication expected)"

SETUP_START=$SECONDS
create_database "$BIG_DB" "$OTHER_USERS"
SMALL_JOBS=0
if wanted list_small; then
    create_database "$SMALL_DB" 0
    SMALL_JOBS=$(count_jobs "$SMALL_DB")
fi
BIG_JOBS_BEFORE=$(count_jobs "$BIG_DB")

# submit50's writers: seeded users, each with a token signed as the app signs its own.
WRITER_TOKENS="$TMP/writer-tokens.txt"
if wanted submit50; then
    ((OTHER_USERS >= WRITERS)) || die "submit50 needs BENCH_OTHER_USERS >= $WRITERS"
    app_env "$BIG_DB"
    psql_in "$BIG_DB" -At -F ' ' -c "SELECT user_id, token_version FROM users
        WHERE email LIKE 'bench-other-%' ORDER BY user_id LIMIT $WRITERS" \
        | "${APP_ENV[@]}" "$PY" -c '
import sys
from app.core.config import Settings
from app.core.security import create_access_token
settings = Settings()
for line in sys.stdin:
    user_id, token_version = map(int, line.split())
    print(create_access_token(user_id, token_version, settings).token)
' >"$WRITER_TOKENS" || die "could not sign the writers' tokens"
    [[ $(wc -l <"$WRITER_TOKENS") == "$WRITERS" ]] || die "expected $WRITERS writer tokens"
fi
log "loaded in $((SECONDS - SETUP_START)) s: $BIG_DB $BIG_JOBS_BEFORE jobs, $SMALL_DB $SMALL_JOBS jobs"

# ---------------------------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------------------------

UVICORN_ARGS=(--host 127.0.0.1 --port "$PORT" --workers 1 --log-level warning --no-access-log)

# start_server NAME READY_PATH COMMAND...: start in the background, wait until READY_PATH answers.
start_server() {
    local name=$1 ready_path=$2
    shift 2
    local logfile="$RUN_DIR/logs/$name.log"
    "$@" >>"$logfile" 2>&1 &
    SERVER_PID=$!
    SERVER_READY_PATH=$ready_path
    local deadline=$((SECONDS + 60))
    until curl -fsS -o /dev/null --max-time 2 "$BASE_URL$ready_path" 2>/dev/null; do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            SERVER_PID=""
            tail -n 30 "$logfile" >&2
            die "$name exited during start-up (log: $logfile)"
        fi
        ((SECONDS < deadline)) || die "$name not ready after 60 s (log: $logfile)"
        sleep 0.2
    done
}

# start_api DB [VAR=VALUE...]: the API on DB, with extra settings if given.
start_api() {
    local db=$1
    shift
    app_env "$db"
    start_server "api-$db" /readyz "${APP_ENV[@]}" "$@" \
        taskset -c "$API_CPU" "$UVICORN" app.main:app "${UVICORN_ARGS[@]}"
}

start_bare() {
    start_server bare / env BENCH_BARE_BODY="$BODY_FILE" \
        taskset -c "$API_CPU" "$UVICORN" bare_app:app --app-dir "$ROOT/bench" "${UVICORN_ARGS[@]}"
}

# The same app with an empty route that answers the same bytes (bench/floor_app.py).
start_floor() {
    app_env "$BIG_DB"
    start_server floor /readyz "${APP_ENV[@]}" BENCH_BARE_BODY="$BODY_FILE" PYTHONPATH="$ROOT" \
        taskset -c "$API_CPU" "$UVICORN" floor_app:app --app-dir "$ROOT/bench" "${UVICORN_ARGS[@]}"
}

# login EMAIL: prints an access token.
login() {
    local code
    code=$(curl -sS --max-time 30 -o "$TMP/login.json" -w '%{http_code}' \
        -H 'Content-Type: application/json' \
        -d "{\"email\": \"$1\", \"password\": \"$PASSWORD\"}" "$BASE_URL/api/auth/login") \
        || die "login request failed"
    [[ "$code" == 200 ]] || die "login as $1 answered $code: $(head -c 300 "$TMP/login.json")"
    "$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["access_token"])' "$TMP/login.json"
}

# fetch_list TOKEN BODY_OUT: GET the list once; sets LIST_ETAG (empty when the API sends none).
fetch_list() {
    local code
    code=$(curl -sS --max-time 30 -D "$TMP/list.headers" -o "$2" -w '%{http_code}' \
        -H "Authorization: Bearer $1" -H 'Accept: application/json' "$BASE_URL$LIST_PATH") \
        || die "GET $LIST_PATH failed"
    [[ "$code" == 200 ]] || die "GET $LIST_PATH answered $code: $(head -c 300 "$2")"
    LIST_ETAG=$(tr -d '\r' <"$TMP/list.headers" | sed -n 's/^[Ee][Tt][Aa][Gg]:[[:space:]]*//p' | head -n 1)
}

# status_of ARGS...: the status code of one curl request.
status_of() { curl -s --max-time 30 -o /dev/null -w '%{http_code}' "$@" || true; }

# ---------------------------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------------------------

# wrk_run CONNS DURATION OUT PATH [VAR=VALUE...]: one wrk run; VARs configure bench/wrk/request.lua.
wrk_run() {
    local conns=$1 duration=$2 out=$3 path=$4
    shift 4
    env -u BENCH_TOKEN -u BENCH_TOKENS_FILE -u BENCH_IF_NONE_MATCH -u BENCH_METHOD -u BENCH_BODY \
        BENCH_OUT="$out" "$@" \
        timeout --kill-after=5 "$WRK_LIMIT" \
        taskset -c "$WRK_CPU" wrk -t1 -c"$conns" -d"$duration" --timeout "$TIMEOUT" --latency \
        -s "$ROOT/bench/wrk/request.lua" "$BASE_URL$path" >"$out.txt" 2>&1 \
        || die "wrk failed (output: $out.txt)"
    [[ -s "$out" ]] || die "wrk wrote no results (output: $out.txt)"
}

# When wrk stops, the server still holds the requests that were in flight (up to one per
# connection, some of them queued for a database connection). Wait until the readiness probe,
# which needs a database connection too, answers quickly, so that the next measurement does
# not pay for the previous one's leftovers.
settle() {
    local started=$SECONDS took
    while ((SECONDS - started < 20)); do
        took=$(curl -s -o /dev/null --max-time 10 -w '%{time_total}' "$BASE_URL$SERVER_READY_PATH" \
            2>/dev/null) || took=10
        if awk -v t="$took" 'BEGIN { exit !(t < 0.1) }'; then
            break
        fi
        sleep 0.2
    done
    if ((SECONDS - started >= 2)); then
        log "    waited $((SECONDS - started)) s for the server to finish the previous run's requests"
    fi
}

# measure ROUND SCENARIO PATH [VAR=VALUE...]: a warm-up, then one run per connection count.
measure() {
    local round=$1 scenario=$2 path=$3
    shift 3
    if ((WARMUP_S > 0)); then
        wrk_run "${CONNECTIONS[0]}" "$WARMUP" "$TMP/warmup.json" "$path" "$@"
        settle
    fi
    local conns name
    for conns in "${CONNECTIONS[@]}"; do
        name="raw/r${round}-${scenario}-c${conns}.json"
        wrk_run "$conns" "$DURATION" "$RUN_DIR/$name" "$path" "$@"
        settle
        printf '%s\t%s\t%s\t%s\n' "$round" "$scenario" "$conns" "$name" >>"$RUN_DIR/measurements.tsv"
        "$PY" - "$RUN_DIR/$name" "$round" "$scenario" "$conns" <<'EOF' >&2
import json, sys
r = json.load(open(sys.argv[1]))
s = r["duration_us"] / 1e6
ok = sum(n for code, n in r["statuses"].items() if int(code) < 400)
errors = sum(r["errors"].values())
lat = r["latency_us"]
codes = ", ".join(f"{c}:{n}" for c, n in sorted(r["statuses"].items()))
print(f"    round {sys.argv[2]} {sys.argv[3]:<10} c{sys.argv[4]:<4} {ok / s:9.1f} req/s  "
      f"p50 {lat['p50'] / 1000:8.2f} ms  p99 {lat['p99'] / 1000:8.2f} ms  errors {errors}  [{codes}]")
EOF
    done
}

skip() {
    local round=$1 scenario=$2 conns
    for conns in "${CONNECTIONS[@]}"; do
        printf '%s\t%s\t%s\t-\n' "$round" "$scenario" "$conns" >>"$RUN_DIR/measurements.tsv"
    done
}

# The body the bare app serves: what the real list endpoint answers, fetched once.
BODY_FILE="$RUN_DIR/list-body.json"
start_api "$BIG_DB"
TOKEN=$(login "$BENCH_EMAIL")
fetch_list "$TOKEN" "$BODY_FILE"
stop_server
BODY_BYTES=$(wc -c <"$BODY_FILE")
log "list body: $BODY_BYTES bytes; ETag: ${LIST_ETAG:-none}"

ETAG_NOTES=()
ROUND_LOADS=()
SMALL_BODY_BYTES=""
for round in $(seq 1 "$ROUNDS"); do
    ROUND_LOADS+=("$(cut -d' ' -f1 /proc/loadavg)")
    if wanted bare; then
        log "round $round/$ROUNDS: bare ASGI app"
        start_bare
        measure "$round" bare "$LIST_PATH" BENCH_TOKEN="$TOKEN"
        stop_server
    fi

    if wanted floor; then
        log "round $round/$ROUNDS: FastAPI floor (an empty route of the app)"
        start_floor
        measure "$round" floor "$FLOOR_PATH" BENCH_TOKEN="$TOKEN"
        stop_server
    fi

    if wanted list list304 stats submit submit50; then
        log "round $round/$ROUNDS: API on $BIG_DB"
        start_api "$BIG_DB"
        TOKEN=$(login "$BENCH_EMAIL")
        fetch_list "$TOKEN" "$TMP/body-big.json"
        if wanted list; then
            measure "$round" list "$LIST_PATH" BENCH_TOKEN="$TOKEN"
        fi
        if ! wanted list304; then
            :
        elif [[ -n "$LIST_ETAG" ]]; then
            revalidated=$(status_of -H "Authorization: Bearer $TOKEN" \
                -H "If-None-Match: $LIST_ETAG" "$BASE_URL$LIST_PATH")
            ETAG_NOTES+=("round $round: If-None-Match answered $revalidated")
            measure "$round" list304 "$LIST_PATH" BENCH_TOKEN="$TOKEN" \
                BENCH_IF_NONE_MATCH="$LIST_ETAG"
        else
            ETAG_NOTES+=("round $round: no ETag")
            log "    no ETag on $LIST_PATH: the 304 scenario is n/a"
            skip "$round" list304
        fi
        if wanted stats; then
            code=$(status_of -H "Authorization: Bearer $TOKEN" "$BASE_URL$STATS_PATH")
            [[ "$code" == 200 ]] || die "GET $STATS_PATH answered $code"
            measure "$round" stats "$STATS_PATH" BENCH_TOKEN="$TOKEN"
        fi
        if wanted submit; then
            WRITER_TOKEN=$(login "$WRITER_EMAIL")
            code=$(status_of -H "Authorization: Bearer $WRITER_TOKEN" \
                -H 'Content-Type: application/json' -d "$SUBMIT_BODY" "$BASE_URL$LIST_PATH")
            [[ "$code" == 201 ]] || die "POST $LIST_PATH answered $code"
            measure "$round" submit "$LIST_PATH" BENCH_TOKEN="$WRITER_TOKEN" BENCH_METHOD=POST \
                BENCH_BODY="$SUBMIT_BODY"
        fi
        if wanted submit50; then
            code=$(status_of -H "Authorization: Bearer $(head -n 1 "$WRITER_TOKENS")" \
                -H 'Content-Type: application/json' -d "$SUBMIT_BODY" "$BASE_URL$LIST_PATH")
            [[ "$code" == 201 ]] || die "POST $LIST_PATH as one of $WRITERS writers answered $code"
            measure "$round" submit50 "$LIST_PATH" BENCH_TOKENS_FILE="$WRITER_TOKENS" \
                BENCH_METHOD=POST BENCH_BODY="$SUBMIT_BODY"
        fi
        stop_server
    fi

    # The same revalidation with nothing remembered: what every one would cost on a miss.
    if wanted list304_db; then
        log "round $round/$ROUNDS: API on $BIG_DB, revalidations from the database"
        start_api "$BIG_DB" REVALIDATION_CACHE_USERS=0
        TOKEN=$(login "$BENCH_EMAIL")
        fetch_list "$TOKEN" "$TMP/body-big.json"
        if [[ -n "$LIST_ETAG" ]]; then
            measure "$round" list304_db "$LIST_PATH" BENCH_TOKEN="$TOKEN" \
                BENCH_IF_NONE_MATCH="$LIST_ETAG"
        else
            skip "$round" list304_db
        fi
        stop_server
    fi

    if wanted list_small; then
        log "round $round/$ROUNDS: API on $SMALL_DB"
        start_api "$SMALL_DB"
        SMALL_TOKEN=$(login "$BENCH_EMAIL")
        fetch_list "$SMALL_TOKEN" "$TMP/body-small.json"
        SMALL_BODY_BYTES=$(wc -c <"$TMP/body-small.json")
        measure "$round" list_small "$LIST_PATH" BENCH_TOKEN="$SMALL_TOKEN"
        stop_server
    fi
done

# ---------------------------------------------------------------------------------------------
# Event streams (bench/events.py): 5,000 held open by one API process, then the delay from a
# job change's commit to its event with 1,000 open. Database jobs_bench_events; its section
# joins the report below. BENCH_EVENTS=0 skips it.
# ---------------------------------------------------------------------------------------------

if [[ "${BENCH_EVENTS:-1}" != 0 ]]; then
    log "events: 5,000 streams on one API process, then commit-to-event delay at 1,000 streams"
    "$PY" "$ROOT/bench/events.py" --host "$PG_HOST" --port "$PG_PORT" --user "$PG_USER" \
        --http-port "$PORT" --api-cpu "$API_CPU" --client-cpu "$WRK_CPU" --out "$RUN_DIR" \
        >"$RUN_DIR/logs/events-run.txt" 2>&1 \
        || die "bench/events.py failed (see $RUN_DIR/logs/events-run.txt)"
fi

# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------

BIG_JOBS_AFTER=$(count_jobs "$BIG_DB")
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
etag_note="${LIST_ETAG:+present}"
etag_note="${etag_note:-none} ($(printf '%s; ' "${ETAG_NOTES[@]}" | sed 's/; $//'))"

META_STARTED_AT="$STARTED_AT" \
META_HOST="$(hostname)" \
META_CPUS="$(nproc)" \
META_CPU_MODEL="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" \
META_LOAD_BEFORE="$LOAD_BEFORE" \
META_LOAD_AFTER="$LOAD_AFTER" \
META_LOAD_BY_ROUND="${ROUND_LOADS[*]}" \
META_WRK_VERSION="$(wrk -v 2>&1 | head -n 1 | awk '{print $2}')" \
META_UVICORN_VERSION="$("$UVICORN" --version | awk '{print $3}')" \
META_POSTGRES_VERSION="$(psql_in postgres -At -c 'SHOW server_version' | awk '{print $1}')" \
META_DURATION="$DURATION" \
META_WARMUP="$WARMUP" \
META_TIMEOUT="$TIMEOUT" \
META_ROUNDS="$ROUNDS" \
META_API_CPU="$API_CPU" \
META_WRK_CPU="$WRK_CPU" \
META_BIG_JOBS_BEFORE="$BIG_JOBS_BEFORE" \
META_BIG_JOBS_AFTER="$BIG_JOBS_AFTER" \
META_SMALL_JOBS="$SMALL_JOBS" \
META_BIG_DB="$BIG_DB" \
META_SMALL_DB="$SMALL_DB" \
META_BENCH_USER_JOBS="$USER_JOBS" \
META_BODY_BYTES="$BODY_BYTES" \
META_SMALL_BODY_BYTES="$SMALL_BODY_BYTES" \
META_ETAG_NOTE="$etag_note" \
    "$PY" - "$RUN_DIR/meta.json" <<'EOF'
import json, os, sys
from pathlib import Path

meta = {k[5:].lower(): v for k, v in os.environ.items() if k.startswith("META_")}
for key in ("big_jobs_before", "big_jobs_after", "small_jobs", "body_bytes", "small_body_bytes",
            "cpus", "rounds"):
    if meta.get(key):
        meta[key] = int(meta[key])
Path(sys.argv[1]).write_text(json.dumps(meta, indent=2) + "\n")
EOF

echo
"$PY" "$ROOT/bench/report.py" "$RUN_DIR"
cp "$RUN_DIR/summary.md" "$RESULTS/latest.md"
cp "$RUN_DIR/summary.json" "$RESULTS/latest.json"
echo
log "results: $RUN_DIR (also bench/results/latest.md and latest.json)"

run_pipeline
