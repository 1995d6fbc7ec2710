#!/usr/bin/env bash
# One replica, then two, on one PostgreSQL database with Redis: client_credentials /token,
# /introspect and the authorization-code flow of a signed-in user (prompt-less /authorize with
# the session cookie, then the code exchange; code_flow.lua) throughput (wrk, 16 connections in
# all: one wrk per replica, 16/N connections each), to see how throughput changes from one
# replica to two on this machine. Bounded in time.
#   tests/bench/replicas.sh [SECONDS]        (default 10; needs wrk, PostgreSQL and Redis)
#   BENCH_BIN=path/to/sigil                  (that binary instead of a release build)
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION="${1:-10}"
command -v wrk >/dev/null || { echo "wrk is required: apt-get install wrk" >&2; exit 1; }
if [ -n "${BENCH_BIN:-}" ]; then SIGIL="$BENCH_BIN"; else
  cargo build --release -q -p sigil --bin sigil; SIGIL="${CARGO_TARGET_DIR:-target}/release/sigil"; fi
WORK=$(mktemp -d)
DB="sigil_bench_rep_$$"
psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE $DB" >/dev/null
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null
}
trap cleanup EXIT
base=$((20000 + RANDOM % 20000))
export SIGIL_DATA_DIR="$WORK" SIGIL_LOG_LEVEL=warn SIGIL_ISSUER="http://127.0.0.1:$base" \
  SIGIL_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB" \
  SIGIL_REDIS_URL="${BENCH_REDIS:-redis://127.0.0.1:6379}" SIGIL_REDIS_KEY_PREFIX="sigil-bench-$$:" \
  SIGIL_RATE_LIMITS_TOKEN_PER_CLIENT=1000000/1s SIGIL_RATE_LIMITS_INTROSPECT_PER_CLIENT=1000000/1s \
  SIGIL_RATE_LIMITS_LOGIN_PER_IP=off
for i in 0 1; do
  "$SIGIL" serve --listen "127.0.0.1:$((base + i))" 2>"$WORK/serve$i.log" &
  PIDS+=($!)
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$((base + i))/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
done
creds=$("$SIGIL" clients create --name bench --grant client_credentials --scope invoices:read --json)
field() { python3 -c "import json,sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }
export BENCH_CLIENT_ID=$(field client_id <<<"$creds") BENCH_CLIENT_SECRET=$(field client_secret <<<"$creds")
export BENCH_BASIC=$(printf '%s:%s' "$BENCH_CLIENT_ID" "$BENCH_CLIENT_SECRET" | base64 -w0)
# A signed-in user of a first-party web client, for the code flow: one real login through the
# form gives the session cookie every prompt-less /authorize then uses.
printf 'correct horse battery staple\n' | "$SIGIL" users create --username bench --password-stdin >/dev/null
web=$("$SIGIL" clients create --name web --first-party --grant authorization_code \
  --redirect-uri https://app.example/cb --scope openid --json)
web_id=$(field client_id <<<"$web"); web_secret=$(field client_secret <<<"$web")
export BENCH_VERIFIER=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
challenge=$(python3 -c 'import sys,hashlib,base64; print(base64.urlsafe_b64encode(hashlib.sha256(sys.argv[1].encode()).digest()).rstrip(b"=").decode())' "$BENCH_VERIFIER")
export BENCH_AUTHORIZE="/authorize?response_type=code&client_id=$web_id&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&scope=openid&code_challenge=$challenge&code_challenge_method=S256"
sleep 2.5
curl -s -c "$WORK/jar" "http://127.0.0.1:$base$BENCH_AUTHORIZE" >"$WORK/page.html"
authz=$(sed -n 's/.*name="authz" value="\([^"]*\)".*/\1/p' "$WORK/page.html")
csrf=$(sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' "$WORK/page.html")
curl -s -o /dev/null -b "$WORK/jar" -c "$WORK/jar" --data-urlencode "authz=$authz" --data-urlencode "csrf=$csrf" \
  --data-urlencode username=bench --data-urlencode "password=correct horse battery staple" "http://127.0.0.1:$base/login"
# Every cookie of the jar (HttpOnly ones are written with a "#HttpOnly_" prefix).
export BENCH_COOKIE=$(awk -F'\t' 'NF == 7 {print $6 "=" $7}' <(sed 's/^#HttpOnly_//' "$WORK/jar") | paste -sd';' | sed 's/;/; /g')
export BENCH_WEB_BASIC=$(printf '%s:%s' "$web_id" "$web_secret" | base64 -w0)
check=$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $BENCH_COOKIE" "http://127.0.0.1:$base$BENCH_AUTHORIZE")
[ "$check" = 303 ] || { echo "error: the session cookie does not sign in (/authorize answered $check)" >&2; exit 1; }
export BENCH_TOKEN=$(curl -s -u "$BENCH_CLIENT_ID:$BENCH_CLIENT_SECRET" -d grant_type=client_credentials \
  "http://127.0.0.1:$base/token" | field access_token)
# run N path script -> summed req/s and the worst p99 over the N wrk processes
run() {
  local n=$1 path=$2 script=$3 conns=$((16 / $1)) outs=()
  for i in $(seq 0 $((n - 1))); do
    wrk -t1 -c"$conns" -d"${DURATION}s" --latency -s "$script" "http://127.0.0.1:$((base + i))$path" >"$WORK/wrk$i.txt" 2>&1 &
    outs+=($!)
  done
  wait "${outs[@]}"
  cat "$WORK"/wrk[0-$((n - 1))].txt | awk -v d="$DURATION" '/Requests\/sec/ {r += $2} $1 == "99%" {print $2 > "/dev/stderr"} /Non-2xx/ {e += $5}
    $1 == "flows" {f += $2; seen = 1}
    END {printf "%.0f req/s, non-2xx %d", r, e; if (seen) printf ", %.0f flows/s", f / d}'
}
echo "| endpoint | 1 replica | 2 replicas |"
echo "|---|---|---|"
for ep in "/token tests/bench/token.lua" "/introspect tests/bench/introspect.lua" "/authorize tests/bench/code_flow.lua"; do
  set -- $ep
  one=$(run 1 "$1" "$2" 2>"$WORK/p99a"); two=$(run 2 "$1" "$2" 2>"$WORK/p99b")
  echo "| $1 | $one, p99 $(paste -sd/ "$WORK/p99a") | $two, p99 $(paste -sd/ "$WORK/p99b") |"
done
