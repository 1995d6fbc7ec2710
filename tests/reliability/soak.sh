#!/usr/bin/env bash
# Memory soak: a release `sigil serve` in production mode (PostgreSQL + Redis) under a paced
# mixed load (soak.lua) for SOAK_SECONDS (default 3600), its RSS sampled every SOAK_EVERY
# seconds (default 60) into a CSV. Prints the samples and, per quarter of the run, the RSS
# growth, so one can see whether memory levels off.
#
#   tests/reliability/soak.sh [OUT.csv]      (needs wrk, PostgreSQL and Redis on loopback)
#   SOAK_SECONDS=600 SOAK_DELAY_MS=5 SOAK_CONNECTIONS=4 tests/reliability/soak.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${1:-target/soak.csv}"
SECONDS_TOTAL="${SOAK_SECONDS:-3600}"
EVERY="${SOAK_EVERY:-60}"
CONNS="${SOAK_CONNECTIONS:-4}"
export SOAK_DELAY_MS="${SOAK_DELAY_MS:-5}"
command -v wrk >/dev/null || { echo "wrk is required: apt-get install wrk" >&2; exit 1; }
if [ -n "${SOAK_BIN:-}" ]; then SIGIL="$SOAK_BIN"; else
  cargo build --release -q -p sigil --bin sigil; SIGIL="${CARGO_TARGET_DIR:-target}/release/sigil"; fi
WORK=$(mktemp -d)
DB="sigil_soak_$$"
psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE $DB" >/dev/null
cleanup() {
  [ -n "${WRK_PID:-}" ] && kill "$WRK_PID" 2>/dev/null || true
  [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null
}
trap cleanup EXIT
port=$((20000 + RANDOM % 20000))
issuer="http://127.0.0.1:$port"
export SIGIL_DATA_DIR="$WORK" SIGIL_LOG_LEVEL=warn \
  SIGIL_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB" \
  SIGIL_REDIS_URL="${SOAK_REDIS_URL:-redis://127.0.0.1:6379}" SIGIL_REDIS_KEY_PREFIX="sigil-soak-$$:" \
  SIGIL_RATE_LIMITS_TOKEN_PER_CLIENT=1000000/1s SIGIL_RATE_LIMITS_CLIENT_AUTH_FAILURES_PER_IP=off \
  SIGIL_RATE_LIMITS_FAILURES_PER_IP=off
"$SIGIL" serve --listen "127.0.0.1:$port" 2>"$WORK/serve.log" &
PID=$!
for _ in $(seq 1 100); do curl -fs "$issuer/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
svc=$("$SIGIL" clients create --name soak --grant client_credentials --json)
web=$("$SIGIL" clients create --name soak-web --grant authorization_code --redirect-uri https://app.example/cb --scope openid --json)
field() { python3 -c "import json,sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }
export SOAK_CLIENT_ID=$(field client_id <<<"$svc")
export SOAK_BASIC=$(printf '%s:%s' "$SOAK_CLIENT_ID" "$(field client_secret <<<"$svc")" | base64 -w0)
export SOAK_BAD_BASIC=$(printf '%s:%s' "$SOAK_CLIENT_ID" "wrong-secret" | base64 -w0)
wid=$(field client_id <<<"$web")
export SOAK_AUTHORIZE="/authorize?response_type=code&client_id=$wid&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&scope=openid&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
sleep 2.5
wrk -t1 -c"$CONNS" -d"$((SECONDS_TOTAL + 1))s" -s tests/reliability/soak.lua "$issuer" >"$WORK/wrk.txt" 2>&1 &
WRK_PID=$!
mkdir -p "$(dirname "$OUT")"
echo "seconds,rss_kib,tokens_issued" >"$OUT"
start=$(date +%s)
while :; do
  now=$(date +%s); t=$((now - start))
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$PID/status")
  reqs=$(curl -fs "$issuer/metrics" | awk '/^sigil_tokens_issued_total/ {s += $2} END {printf "%.0f", s}')
  echo "$t,$rss,$reqs" | tee -a "$OUT"
  [ "$t" -ge "$SECONDS_TOTAL" ] && break
  sleep "$EVERY"
done

wait "$WRK_PID" 2>/dev/null || true
python3 - "$OUT" <<'PY'
import csv, sys
rows = [(int(r["seconds"]), int(r["rss_kib"]), r["tokens_issued"]) for r in csv.DictReader(open(sys.argv[1]))]
q = max(1, len(rows) // 4)
print("quarter  from_s  to_s  rss_start_MiB  rss_end_MiB  growth_%")
for i in range(4):
    a, b = rows[min(i * q, len(rows) - 1)], rows[min((i + 1) * q, len(rows) - 1)]
    print(f"{i + 1:>7}  {a[0]:>6}  {b[0]:>4}  {a[1] / 1024:>13.1f}  {b[1] / 1024:>11.1f}  {100 * (b[1] - a[1]) / a[1]:>8.2f}")
print(f"tokens issued: {rows[-1][2]}")
PY
grep -E "Socket errors|Non-2xx|requests in" "$WORK/wrk.txt" || true
