#!/usr/bin/env bash
# Real-browser tests: Debian's chromium, driven by playwright-core, logs in through the login page
# of a real `sigil serve` (login.mjs), and a browser app on another loopback origin uses CORS to
# call discovery, the JWKS, /token and /userinfo (cors.mjs). Screenshots land in target/browser/.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(cd ../.. && pwd)
if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "error: chromium is required for the browser test: apt-get install chromium" >&2
  exit 1
fi
[ -d node_modules/playwright-core ] || npm install --no-audit --no-fund --silent

cargo build -q -p sigil --bin sigil --manifest-path "$ROOT/Cargo.toml"
SIGIL="$ROOT/target/debug/sigil"
SHOTS="$ROOT/target/browser"
mkdir -p "$SHOTS"
WORK=$(mktemp -d)
PID=""
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
cleanup() { [ -n "$PID" ] && stop_all "$PID"; rm -rf "$WORK"; }
trap cleanup EXIT

port=$((20000 + RANDOM % 20000))
issuer="http://127.0.0.1:$port"
SIGIL_DATA_DIR="$WORK" SIGIL_LOG_LEVEL=warn "$SIGIL" serve --listen "127.0.0.1:$port" 2>"$WORK/serve.log" &
PID=$!
for _ in $(seq 1 100); do curl -fs "$issuer/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
printf 'correct horse battery staple\n' | SIGIL_DATA_DIR="$WORK" "$SIGIL" users create --username alice --password-stdin >/dev/null
creds=$(SIGIL_DATA_DIR="$WORK" "$SIGIL" clients create --name "Browser Test App" --first-party --grant authorization_code \
  --redirect-uri http://127.0.0.1:9/cb --scope openid --scope profile --json)
id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])' <<<"$creds")
secret=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])' <<<"$creds")
node login.mjs "$issuer" "$id" "$secret" alice 'correct horse battery staple' "$SHOTS"

# A browser app (public client) served from another loopback origin; its redirect URI's origin
# is its web origin. The server picks up the new client within its sync interval.
page_port=$((port + 1 + RANDOM % 1000))
app=$(SIGIL_DATA_DIR="$WORK" "$SIGIL" clients create --name "Browser CORS App" --public --first-party \
  --redirect-uri "http://127.0.0.1:$page_port/cb" --scope openid --scope profile --json)
app_id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])' <<<"$app")
for _ in $(seq 1 100); do
  curl -fs -o /dev/null -D - -X OPTIONS -H "Origin: http://127.0.0.1:$page_port" \
    -H "Access-Control-Request-Method: POST" "$issuer/token" 2>/dev/null \
    | grep -qi '^access-control-allow-origin' && break
  sleep 0.1
done
node cors.mjs "$issuer" "$app_id" "$page_port" alice 'correct horse battery staple'
