#!/usr/bin/env bash
# Bounded loopback load runs: `sigil serve` beside the floor reference (examples/floor.rs, the least
# an actix token endpoint can do), measured alternately in the same run. Prints a Markdown table of
# req/s, p50, p99, non-200 responses, requests per server CPU-second, and both ratios to the floor.
#
# Requests per server CPU-second: the server process's utime+stime (/proc/PID/stat, all threads,
# in `getconf CLK_TCK` ticks) is read right before and after each wrk run, and the run's request
# count is divided by the CPU seconds used. On 2 cores wrk takes CPU from the server, so req/s
# alone hides the server's own overhead; this figure does not.
#
# Sigil runs with production logging: `log.level = info`, the default text format, one
# "request completed" line per request, written to a file.
#
#   tests/bench/run.sh [SECONDS_PER_RUN]      (default 10; needs wrk: apt-get install wrk)
#
# Both servers get one worker thread and wrk one thread with 16 connections, so on a 2-core
# machine the server and the load generator each have a core.
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION="${1:-10}"
CONNS="${BENCH_CONNECTIONS:-16}"
command -v wrk >/dev/null || { echo "wrk is required: apt-get install wrk" >&2; exit 1; }
cargo build --release -q -p sigil --bin sigil --example floor
SIGIL="${CARGO_TARGET_DIR:-target}/release/sigil"
FLOOR="${CARGO_TARGET_DIR:-target}/release/examples/floor"
TICKS=$(getconf CLK_TCK)
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
cleanup() { stop_all "${PIDS[@]}"; rm -rf "$WORK"; }
trap cleanup EXIT

wait_up() { for _ in $(seq 1 100); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "not up: $1" >&2; return 1; }

# CPU ticks (utime + stime, every thread) a process has used so far. Field 2 (comm) may hold
# spaces, so count fields after its closing parenthesis: utime and stime are fields 14 and 15.
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }

# run_wrk PID URL [lua] -> "rps p50_ms p99_ms non200 requests_per_cpu_second"
run_wrk() {
  local pid=$1 url=$2 script=${3:-}
  local out t0 t1
  t0=$(cpu_ticks "$pid")
  if [ -n "$script" ]; then
    out=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -s "$script" "$url" 2>&1)
  else
    out=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$url" 2>&1)
  fi
  t1=$(cpu_ticks "$pid")
  local rps p50 p99 non200 requests per_cpu
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  non200=$(awk -F= '/non200=/ {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx or 3xx responses/ {print $5}' <<<"$out")
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  per_cpu=$(awk -v n="$requests" -v d="$((t1 - t0))" -v hz="$TICKS" 'BEGIN {printf "%.0f", (d > 0 ? n * hz / d : 0)}')
  echo "$rps $p50 $p99 ${non200:-${non2xx:-0}} $per_cpu"
}

to_ms() { # wrk prints 1.23ms / 456.00us / 1.2s
  local v=$1
  case "$v" in
    *us) awk -v x="${v%us}" 'BEGIN {printf "%.2f", x/1000}' ;;
    *ms) awk -v x="${v%ms}" 'BEGIN {printf "%.2f", x}' ;;
    *s) awk -v x="${v%s}" 'BEGIN {printf "%.2f", x*1000}' ;;
    *) echo "$v" ;;
  esac
}

row() { # name sigil_result floor_result
  read -r s_rps s_p50 s_p99 s_err s_cpu <<<"$2"
  read -r f_rps f_p50 f_p99 f_err f_cpu <<<"$3"
  ratio=$(awk -v a="$s_rps" -v b="$f_rps" 'BEGIN {printf "%.2f", a/b}')
  cpu_ratio=$(awk -v a="$s_cpu" -v b="$f_cpu" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}')
  printf "| %s | %.0f | %s | %s | %s | %s | %.0f | %s | %s | %s | %s | %s |\n" "$1" "$s_rps" "$(to_ms "$s_p50")" "$(to_ms "$s_p99")" "$s_err" "$s_cpu" "$f_rps" "$(to_ms "$f_p50")" "$(to_ms "$f_p99")" "$f_cpu" "$ratio" "$cpu_ratio"
}

echo "| endpoint | Sigil req/s | p50 ms | p99 ms | non-200 | Sigil req/CPU-s | floor req/s | floor p50 ms | floor p99 ms | floor req/CPU-s | Sigil/floor req/s | Sigil/floor req/CPU-s |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
port=18400
for alg in ES256 RS256 EdDSA; do
  port=$((port + 2))
  dir="$WORK/$alg"
  mkdir -p "$dir"
  # The per-client token limit counts every request (its cost is measured) at a rate the load
  # never reaches, so every answer is a token and not a 429.
  SIGIL_DATA_DIR="$dir" SIGIL_LOG_LEVEL=info SIGIL_HTTP_WORKERS=1 SIGIL_TOKENS_ACCESS_TOKEN_ALG="$alg" \
    SIGIL_RATE_LIMITS_TOKEN_PER_CLIENT=1000000/1s "$SIGIL" serve --listen "127.0.0.1:$port" 2>"$dir/serve.log" &
  spid=$!
  PIDS+=($spid)
  FLOOR_ALG="$alg" FLOOR_PORT=$((port + 1)) FLOOR_WORKERS=1 "$FLOOR" &
  fpid=$!
  PIDS+=($fpid)
  wait_up "http://127.0.0.1:$port/healthz"
  wait_up "http://127.0.0.1:$((port + 1))/jwks.json"
  creds=$(SIGIL_DATA_DIR="$dir" "$SIGIL" clients create --name bench --grant client_credentials --scope invoices:read --json)
  export BENCH_CLIENT_ID=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])' <<<"$creds")
  export BENCH_CLIENT_SECRET=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])' <<<"$creds")
  sleep 2.5 # one sync interval, so the server has seen nothing stale
  # warm-up, then alternate: floor, sigil, floor, sigil; keep the second pair.
  run_wrk "$spid" "http://127.0.0.1:$port/token" tests/bench/token.lua >/dev/null
  f=$(run_wrk "$fpid" "http://127.0.0.1:$((port + 1))/token" tests/bench/token.lua)
  s=$(run_wrk "$spid" "http://127.0.0.1:$port/token" tests/bench/token.lua)
  row "POST /token client_credentials $alg" "$s" "$f"
  if [ "$alg" = ES256 ]; then
    f=$(run_wrk "$fpid" "http://127.0.0.1:$((port + 1))/jwks.json")
    s=$(run_wrk "$spid" "http://127.0.0.1:$port/jwks.json")
    row "GET /jwks.json (floor: static handler)" "$s" "$f"
    s=$(run_wrk "$spid" "http://127.0.0.1:$port/.well-known/openid-configuration")
    row "GET discovery (floor: static handler)" "$s" "$f"
  fi
  stop_all "${PIDS[@]}"
  PIDS=()
done
