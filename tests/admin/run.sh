#!/usr/bin/env bash
# The admin API against its own OpenAPI document: schemathesis (from PyPI) generates requests for
# every operation of /admin/api/v1/openapi.json and sends them to a real `sigil serve` with an
# administrator's token (sigil-admin, client_credentials), bounded in time. It fails on any 5xx,
# a response that does not match the documented schema or status codes, or a crash.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(cd ../.. && pwd)
command -v schemathesis >/dev/null 2>&1 || python3 -m pip install -q -r requirements.txt
command -v schemathesis >/dev/null 2>&1 || { echo "error: schemathesis is required: pip install -r tests/admin/requirements.txt" >&2; exit 1; }

cargo build -q -p sigil --bin sigil --manifest-path "$ROOT/Cargo.toml"
SIGIL="$ROOT/target/debug/sigil"
WORK=$(mktemp -d)
PID=""
cleanup() {
  local rc=$?
  if [ "$rc" -ne 0 ] && [ -s "$WORK/serve.log" ]; then
    echo "--- the server's log (last 40 lines) ---" >&2
    tail -n 40 "$WORK/serve.log" >&2
  fi
  if [ -n "$PID" ]; then
    kill "$PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

port=$((20000 + RANDOM % 20000))
issuer="http://127.0.0.1:$port"
export SIGIL_DATA_DIR="$WORK" SIGIL_LOG_LEVEL=warn SIGIL_RATE_LIMITS_ADMIN_PER_PRINCIPAL=off \
  SIGIL_RATE_LIMITS_FAILURES_PER_IP=off
"$SIGIL" serve --listen "127.0.0.1:$port" 2>"$WORK/serve.log" &
PID=$!
for _ in $(seq 1 100); do curl -fs "$issuer/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
printf 'correct horse battery staple\n' | "$SIGIL" users create --username alice --password-stdin >/dev/null
"$SIGIL" roles create editor --permission job:read >/dev/null
creds=$("$SIGIL" clients create --name admin --grant client_credentials --role sigil-admin --json)
field() { python3 -c "import json,sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }
id=$(field client_id <<<"$creds"); secret=$(field client_secret <<<"$creds")
token=""
for _ in $(seq 1 50); do
  token=$(curl -fs -u "$id:$secret" -d grant_type=client_credentials "$issuer/token" | field access_token 2>/dev/null) \
    && [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$issuer/admin/api/v1/roles")" = 200 ] && break
  sleep 0.2
done

# Every operation, a bounded number of generated examples each; stateful links are off (the
# document declares none). Failures print the request that reproduces them.
timeout 600 schemathesis --config-file "$PWD/schemathesis.toml" run "$issuer/admin/api/v1/openapi.json" \
  --header "Authorization: Bearer $token" \
  --checks all \
  --max-examples "${SIGIL_SCHEMATHESIS_EXAMPLES:-40}" \
  --workers 2 \
  --max-response-time 5 \
  --no-color
if grep -E "panicked|internal error" "$WORK/serve.log"; then
  echo "error: the server logged a panic or an internal error during the run" >&2
  exit 1
fi
echo "admin API: schemathesis passed"
