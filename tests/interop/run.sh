#!/usr/bin/env bash
# Interop: tokens from a real `sigil serve` (ES256, RS256, PS256, EdDSA) verified by libraries Sigil
# did not write — PyJWT (Python) and jose (Node) — against the served JWKS.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(cd ../.. && pwd)

python3 -c 'import jwt, cryptography' 2>/dev/null || python3 -m pip install -q -r requirements.txt
[ -d node_modules/jose ] && [ -d node_modules/openid-client ] || npm install --no-audit --no-fund --silent

cargo build -q -p sigil --bin sigil --manifest-path "$ROOT/Cargo.toml"
SIGIL="$ROOT/target/debug/sigil"
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

passed=0
failed=0
port=$((20000 + RANDOM % 20000))
for alg in ES256 RS256 PS256 EdDSA; do
  port=$((port + 1))
  dir="$WORK/$alg"
  issuer="http://127.0.0.1:$port"
  SIGIL_DATA_DIR="$dir" SIGIL_LOG_LEVEL=warn SIGIL_TOKENS_ACCESS_TOKEN_ALG="$alg" \
    "$SIGIL" serve --listen "127.0.0.1:$port" 2>"$WORK/$alg.log" &
  PIDS+=($!)
  for _ in $(seq 1 100); do curl -fs "$issuer/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
  creds=$(SIGIL_DATA_DIR="$dir" "$SIGIL" clients create --name interop --grant client_credentials --scope api:read --json)
  id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])' <<<"$creds")
  secret=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])' <<<"$creds")
  token=""
  for _ in $(seq 1 50); do
    token=$(curl -fs -u "$id:$secret" -d grant_type=client_credentials "$issuer/token" \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])' 2>/dev/null) && break
    sleep 0.2
  done
  for verifier in "python3 verify_pyjwt.py" "node verify_jose.mjs"; do
    if $verifier "$issuer" "$issuer" "$token"; then
      passed=$((passed + 1))
    else
      echo "FAILED: $verifier could not verify a $alg token" >&2
      failed=$((failed + 1))
    fi
  done
done

# A certified non-Rust RP (openid-client) through the whole authorization code flow.
port=$((port + 1))
dir="$WORK/oidc"
issuer="http://127.0.0.1:$port"
SIGIL_DATA_DIR="$dir" SIGIL_LOG_LEVEL=warn "$SIGIL" serve --listen "127.0.0.1:$port" 2>"$WORK/oidc.log" &
PIDS+=($!)
for _ in $(seq 1 100); do curl -fs "$issuer/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
printf 'correct horse battery staple\n' | SIGIL_DATA_DIR="$dir" "$SIGIL" users create --username olivia \
  --email olivia@example.com --password-stdin >/dev/null
creds=$(SIGIL_DATA_DIR="$dir" "$SIGIL" clients create --name "openid-client RP" --first-party --grant authorization_code \
  --grant refresh_token --redirect-uri https://app.example/cb --scope openid --scope profile --scope email --json)
id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])' <<<"$creds")
secret=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])' <<<"$creds")
node openid_client.mjs "$issuer" "$id" "$secret" olivia 'correct horse battery staple'

echo "interop (JWT verifiers): $passed passed, $failed failed"
[ "$failed" -eq 0 ]
