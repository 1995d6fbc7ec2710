#!/usr/bin/env bash
# Login and refresh load on loopback, bounded in time:
#  1. /jwks.json p50/p99 idle, then again while a login flood (wrong passwords: one bcrypt each)
#     runs against the same server; reports the ratio of the two p99s;
#  2. login POST throughput at the configured bcrypt cost (10);
#  3. refresh_token grant req/s and p99.
#   tests/bench/login.sh [SECONDS]   (default 10; needs wrk)
#   BENCH_DB=postgres tests/bench/login.sh   (a fresh database on 127.0.0.1:5432, dropped after)
#   BENCH_REDIS=redis://127.0.0.1:6379       (shared state on Redis, under a key prefix of the run)
#   BENCH_ONLY=refresh                       (only the rotation-chain run of part 3)
#   BENCH_BIN=path/to/sigil                  (measure that binary instead of building one: A/B)
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION="${1:-10}"
command -v wrk >/dev/null || { echo "wrk is required: apt-get install wrk" >&2; exit 1; }
if [ -n "${BENCH_BIN:-}" ]; then
  SIGIL="$BENCH_BIN"
else
  cargo build --release -q -p sigil --bin sigil
  SIGIL="${CARGO_TARGET_DIR:-target}/release/sigil"
fi
if [ -n "${BENCH_REDIS:-}" ]; then
  export SIGIL_REDIS_URL="$BENCH_REDIS" SIGIL_REDIS_KEY_PREFIX="sigil-bench-$$:"
fi
WORK=$(mktemp -d)
PIDS=()
# Stop servers: SIGTERM, up to 5 s for a graceful exit, then SIGKILL (a hung shutdown must not
# hang the suite).
stop_all() {
  for p in "$@"; do kill "$p" 2>/dev/null || true; done
  for _ in $(seq 1 50); do
    alive=0
    for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for p in "$@"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
PG_DB=""
if [ "${BENCH_DB:-sqlite}" = postgres ]; then
  PG_DB="sigil_bench_$$"
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE $PG_DB" >/dev/null
  if [ -n "${BENCH_PG_LOG_STATEMENTS:-}" ]; then
    psql -q -h 127.0.0.1 -U postgres -d postgres -c "ALTER DATABASE $PG_DB SET log_statement = 'all'" >/dev/null
  fi
  export SIGIL_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$PG_DB"
fi
cleanup() {
  stop_all "${PIDS[@]}"
  rm -rf "$WORK"
  if [ -n "$PG_DB" ]; then psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $PG_DB" >/dev/null; fi
}
trap cleanup EXIT
port=$((20000 + RANDOM % 20000))
issuer="http://127.0.0.1:$port"
# The per-address login limit is lifted, and the per-client token limit set beyond what the
# load reaches (it still counts every request), so the run measures logins and refreshes.
export SIGIL_DATA_DIR="$WORK" SIGIL_LOG_LEVEL=warn SIGIL_RATE_LIMITS_LOGIN_PER_IP=off \
  SIGIL_RATE_LIMITS_TOKEN_PER_CLIENT=1000000/1s SIGIL_TOKENS_REFRESH_REUSE_WINDOW=5m
"$SIGIL" serve --listen "127.0.0.1:$port" 2>"$WORK/serve.log" &
PIDS+=($!)
for _ in $(seq 1 100); do curl -fs "$issuer/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
printf 'correct horse battery staple\n' | "$SIGIL" users create --username bench --password-stdin >/dev/null
printf 'correct horse battery staple\n' | "$SIGIL" users create --username bench2 --password-stdin >/dev/null
creds=$("$SIGIL" clients create --name bench --first-party --grant authorization_code --grant refresh_token \
  --redirect-uri https://app.example/cb --scope openid --json)
id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])' <<<"$creds")
secret=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])' <<<"$creds")
sleep 2.5

# A pending login page to post against.
verifier=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
challenge=$(python3 -c 'import sys,hashlib,base64; print(base64.urlsafe_b64encode(hashlib.sha256(sys.argv[1].encode()).digest()).rstrip(b"=").decode())' "$verifier")
auth_url="$issuer/authorize?response_type=code&client_id=$id&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&scope=openid&code_challenge=$challenge&code_challenge_method=S256"
curl -s -c "$WORK/jar" "$auth_url" >"$WORK/page.html"
export BENCH_AUTHZ=$(sed -n 's/.*name="authz" value="\([^"]*\)".*/\1/p' "$WORK/page.html")
export BENCH_CSRF=$(sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' "$WORK/page.html")
export BENCH_COOKIE=$(awk '$6=="sigil_login" {print "sigil_login=" $7}' "$WORK/jar")

stats() { # wrk output -> "rps p50 p99 non2xx"
  awk '/Requests\/sec/ {rps=$2} $1=="50%" {p50=$2} $1=="99%" {p99=$2} /Non-2xx/ {n=$5} END {printf "%s %s %s %s\n", rps, p50, p99, (n==""?0:n)}'
}

if [ "${BENCH_ONLY:-}" != refresh ]; then
echo "## idle /jwks.json"
idle=$(wrk -t1 -c8 -d"${DURATION}s" --latency "$issuer/jwks.json" | stats)
echo "rps p50 p99 non2xx: $idle"

echo "## login flood (wrong password, bcrypt cost 10) with /jwks.json alongside"
wrk -t1 -c16 -d"${DURATION}s" --latency -s tests/bench/login.lua "$issuer/login" >"$WORK/flood.txt" &
flood=$!
sleep 1
busy=$(wrk -t1 -c8 -d"$((DURATION - 2))s" --latency "$issuer/jwks.json" | stats)
wait $flood
echo "jwks during flood, rps p50 p99 non2xx: $busy"
echo "login POST, rps p50 p99 non2xx(401 expected): $(stats <"$WORK/flood.txt")"
awk -v a="$(cut -d' ' -f3 <<<"$idle")" -v b="$(cut -d' ' -f3 <<<"$busy")" 'function ms(v){ if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v } BEGIN {printf "jwks p99 under flood / idle p99 = %.2f\n", ms(b)/ms(a)}'

fi

echo "## refresh_token grant"
# A real login to get a refresh token.
curl -s -b "$WORK/jar" -c "$WORK/jar" "$auth_url" >"$WORK/page2.html"
a2=$(sed -n 's/.*name="authz" value="\([^"]*\)".*/\1/p' "$WORK/page2.html")
c2=$(sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' "$WORK/page2.html")
loc=$(curl -s -o /dev/null -w '%{redirect_url}' -b "$WORK/jar" -c "$WORK/jar" --data-urlencode "authz=$a2" \
  --data-urlencode "csrf=$c2" --data-urlencode "username=bench2" --data-urlencode "password=correct horse battery staple" "$issuer/login")
code=$(python3 -c 'import sys,urllib.parse as u; print(u.parse_qs(u.urlparse(sys.argv[1]).query)["code"][0])' "$loc")
rt=$(curl -s -u "$id:$secret" -d grant_type=authorization_code -d "code=$code" -d redirect_uri=https://app.example/cb \
  -d "code_verifier=$verifier" "$issuer/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["refresh_token"])')
export BENCH_REFRESH_TOKEN="$rt" BENCH_BASIC=$(printf '%s:%s' "$id" "$secret" | base64 -w0)
[ "${BENCH_ONLY:-}" = refresh ] || echo "refresh, repeat within the reuse window, rps p50 p99 non2xx: $(wrk -t1 -c16 -d"${DURATION}s" --latency -s tests/bench/refresh.lua "$issuer/token" | stats)"

# 32 families from the same session (prompt-less /authorize with the session cookie: no
# bcrypt), then 16 connections each spending a token and using its successor.
tokens=""
for _ in $(seq 1 32); do
  v=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
  ch=$(python3 -c 'import sys,hashlib,base64; print(base64.urlsafe_b64encode(hashlib.sha256(sys.argv[1].encode()).digest()).rstrip(b"=").decode())' "$v")
  l=$(curl -s -o /dev/null -w '%{redirect_url}' -b "$WORK/jar" "$issuer/authorize?response_type=code&client_id=$id&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&scope=openid&code_challenge=$ch&code_challenge_method=S256")
  c=$(python3 -c 'import sys,urllib.parse as u; print(u.parse_qs(u.urlparse(sys.argv[1]).query)["code"][0])' "$l")
  t=$(curl -s -u "$id:$secret" -d grant_type=authorization_code -d "code=$c" -d redirect_uri=https://app.example/cb \
    -d "code_verifier=$v" "$issuer/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["refresh_token"])')
  tokens="$tokens $t"
done
export BENCH_REFRESH_TOKENS="$tokens"
echo "refresh, rotation chains, rps p50 p99 non2xx: $(wrk -t1 -c16 -d"${DURATION}s" --latency -s tests/bench/refresh_chain.lua "$issuer/token" | stats)"
echo "database: ${BENCH_DB:-sqlite}"
