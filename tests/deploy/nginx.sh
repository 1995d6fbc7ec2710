#!/usr/bin/env bash
# deploy/nginx/ for real: a throwaway certificate, `sigil serve` on loopback (SQLite, trusting
# 127.0.0.1/32 as its proxy), and nginx in front of it over TLS with deploy/nginx/sigil.conf and
# security.conf (only listen addresses, the upstream and the certificate paths swapped; nginx
# runs unprivileged in a temp prefix). Through nginx: discovery, a client_credentials token, a
# browser-less sign-in and code exchange, TLS versions and ciphers, security headers, the
# body-size and rate limits, the client address that reaches Sigil's audit trail, and the
# counters that deploy/prometheus/alerts watches.
set -euo pipefail
cd "$(dirname "$0")"
source ./lib.sh
ROOT=$DEPLOY_ROOT
deploy_require nginx openssl curl python3 setpriv promtool

[ -n "${SIGIL:-}" ] || {
  cargo build -q -p sigil --bin sigil --manifest-path "$ROOT/Cargo.toml"
  SIGIL="$ROOT/target/debug/sigil"
}
WORK=$(mktemp -d)
chmod 755 "$WORK"
PIDS=()
cleanup() {
  [ "${#PIDS[@]}" -gt 0 ] && deploy_stop "${PIDS[@]}"
  wait 2>/dev/null || true
  if [ "${KEEP_WORK:-}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok: $1"; }
fail() { failed=$((failed + 1)); echo "FAILED: $1" >&2; }
# check NAME COMMAND...: COMMAND's exit status decides.
check() {
  local name=$1
  shift
  if "$@"; then ok "$name"; else fail "$name"; fi
}

base=$((20000 + RANDOM % 20000))
sigil_port=$base
tls_port=$((base + 1))
http_port=$((base + 2))
control_port=$((base + 3))
host=id.example.com
issuer="https://$host:$tls_port"

# --- Sigil on loopback, behind the proxy at 127.0.0.1. ---
export SIGIL_DATA_DIR="$WORK/sigil"
export SIGIL_DATABASE_URL="sqlite://$WORK/sigil/sigil.db"
mkdir -p "$SIGIL_DATA_DIR"
SIGIL_LISTEN="127.0.0.1:$sigil_port" SIGIL_ISSUER="$issuer" SIGIL_HTTP_TRUSTED_PROXIES=127.0.0.1/32 \
  SIGIL_LOG_LEVEL=info "$SIGIL" serve 2>"$WORK/serve.log" &
PIDS+=($!)
for _ in $(seq 1 300); do curl -fs "http://127.0.0.1:$sigil_port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs "http://127.0.0.1:$sigil_port/readyz" >/dev/null || {
  cat "$WORK/serve.log" >&2
  echo "error: sigil serve did not become ready" >&2
  exit 1
}

# --- nginx in front of it. ---
deploy_make_cert "$WORK/tls"
NGX="$WORK/nginx"
deploy_render_nginx "$NGX" "$WORK/tls" "$tls_port" "$http_port" "127.0.0.1:$sigil_port"
chown -R "$(stat -c %u "$NGX")" "$WORK/tls"
check "nginx -t on the loopback layout" deploy_nginx_test "$NGX"
deploy_as_nobody
"${DEPLOY_AS_NOBODY[@]}" nginx -p "$NGX" -e "$NGX/logs/error.log" -c "$NGX/conf/nginx.conf" -g 'daemon off;' >"$NGX/logs/stdout.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$tls_port") 2>/dev/null && break; sleep 0.1; done
(exec 3<>"/dev/tcp/127.0.0.1/$tls_port") 2>/dev/null || {
  cat "$NGX/logs/error.log" >&2
  echo "error: nginx did not start" >&2
  exit 1
}

# curl through nginx, verifying its certificate, as a client at 127.0.0.1 (or --interface).
CURL=(curl -sS --max-time 10 --cacert "$WORK/tls/cert.pem" --resolve "$host:$tls_port:127.0.0.1")
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

# --- Discovery through nginx. ---
disc_headers="$WORK/discovery.headers"
discovery=$("${CURL[@]}" -D "$disc_headers" "$issuer/.well-known/openid-configuration" || true)
check "discovery through nginx names the public https issuer" \
  test "$(json '["issuer"]' <<<"$discovery" 2>/dev/null)" = "$issuer"
check "discovery's token endpoint is under the issuer" \
  test "$(json '["token_endpoint"]' <<<"$discovery" 2>/dev/null)" = "$issuer/token"

# --- Security headers: on JSON, on Sigil's HTML pages, on nginx's own errors. ---
# header FILE NAME: the values of header NAME in a dump of response headers, one a line.
header() { tr -d '\r' <"$1" | awk -v n="$2" 'index(tolower($0), tolower(n) ":") == 1 {sub(/^[^:]*:[ ]*/, ""); print}'; }
one_header() { # FILE NAME EXPECTED: exactly one such header, with that value.
  local got
  got=$(header "$1" "$2")
  [ "$got" = "$3" ] || { echo "  $2 in $1: '${got//$'\n'/' | '}', want '$3'" >&2; return 1; }
}
check "HSTS (2 years, subdomains) exactly once" \
  one_header "$disc_headers" strict-transport-security "max-age=63072000; includeSubDomains"
check "nosniff exactly once" one_header "$disc_headers" x-content-type-options nosniff
check "a default CSP on JSON" one_header "$disc_headers" content-security-policy \
  "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
check "X-Frame-Options DENY on JSON" one_header "$disc_headers" x-frame-options DENY
check "Referrer-Policy no-referrer on JSON" one_header "$disc_headers" referrer-policy no-referrer
check "Server names no nginx version" one_header "$disc_headers" server nginx
check "no Retry-After on a 200" one_header "$disc_headers" retry-after ""

# --- A client_credentials token through nginx. ---
creds=$("$SIGIL" clients create --name "Deploy Test Service" --grant client_credentials --json)
cc_id=$(json '["client_id"]' <<<"$creds")
cc_secret=$(json '["client_secret"]' <<<"$creds")
token_response=""
for _ in $(seq 1 50); do
  token_response=$("${CURL[@]}" -u "$cc_id:$cc_secret" -d grant_type=client_credentials "$issuer/token" || true)
  json '["access_token"]' <<<"$token_response" >/dev/null 2>&1 && break
  sleep 0.1
done
check "client_credentials token through nginx" \
  test "$(json '["token_type"]' <<<"$token_response" 2>/dev/null)" = Bearer

# --- A sign-in without a browser: /authorize, the login form, the code, the token. ---
printf 'correct horse battery staple\n' | "$SIGIL" users create --username alice --password-stdin >/dev/null
app=$("$SIGIL" clients create --name "Deploy Test App" --first-party --grant authorization_code \
  --redirect-uri https://app.example/cb --scope openid --json)
app_id=$(json '["client_id"]' <<<"$app")
app_secret=$(json '["client_secret"]' <<<"$app")
verifier=$(openssl rand -hex 32)
challenge=$(printf %s "$verifier" | openssl dgst -sha256 -binary | openssl base64 -A | tr '+/' '-_' | tr -d '=')
authorize_url="$issuer/authorize?response_type=code&client_id=$app_id&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&scope=openid&state=st-1&nonce=n-1&code_challenge=$challenge&code_challenge_method=S256"
field() { # HTML NAME: the value of the hidden input NAME
  python3 -c '
import html, re, sys
m = re.search(r"name=\"%s\" value=\"([^\"]*)\"" % re.escape(sys.argv[1]), sys.stdin.read())
sys.exit("no %s field" % sys.argv[1]) if not m else print(html.unescape(m.group(1)))' "$1"
}
# sign_in JAR PASSWORD CURL-OPTIONS...: GET the login page, POST the form; the response
# headers of the POST in $WORK/login.headers.
sign_in() {
  local jar=$1 password=$2 page
  shift 2
  for _ in $(seq 1 50); do
    page=$("${CURL[@]}" "$@" -c "$jar" -b "$jar" -D "$WORK/page.headers" "$authorize_url" || true)
    grep -q 'name="authz"' <<<"$page" && break
    sleep 0.1
  done
  "${CURL[@]}" "$@" -c "$jar" -b "$jar" -o /dev/null -D "$WORK/login.headers" \
    --data-urlencode "authz=$(field authz <<<"$page")" --data-urlencode "csrf=$(field csrf <<<"$page")" \
    --data-urlencode username=alice --data-urlencode "password=$password" "$issuer/login"
}
# A wrong password from 127.0.0.1 that claims, in X-Forwarded-For, to come from 203.0.113.66:
# nginx overwrites the header, so Sigil must record 127.0.0.1 (an appended header would make
# the claim the right-most untrusted hop).
sign_in "$WORK/jar-spoof" wrong-password -H "X-Forwarded-For: 203.0.113.66" || true
check "the sign-in page (HTML) keeps Sigil's own CSP, once" \
  test "$(header "$WORK/page.headers" content-security-policy | grep -c "form-action 'self'")" = 1
check "HSTS once on the sign-in page" one_header "$WORK/page.headers" strict-transport-security \
  "max-age=63072000; includeSubDomains"
check "X-Frame-Options once on the sign-in page" one_header "$WORK/page.headers" x-frame-options DENY
# The right password from another loopback address, 127.0.0.2, with a forged header too.
sign_in "$WORK/jar" 'correct horse battery staple' --interface 127.0.0.2 -H "X-Forwarded-For: 198.51.100.7" || true
status=$(head -1 "$WORK/login.headers" | awk '{print $2}')
location=$(header "$WORK/login.headers" location)
check "the login form answers 303 to the redirect URI with a code" \
  python3 -c '
import sys, urllib.parse as u
status, loc = sys.argv[1], sys.argv[2]
q = u.parse_qs(u.urlsplit(loc).query)
ok = status == "303" and loc.startswith("https://app.example/cb?") and q.get("code") and q.get("state") == ["st-1"]
sys.exit(0 if ok else f"  status {status}, location {loc!r}")' "$status" "$location"
code=$(python3 -c 'import sys, urllib.parse as u; print(u.parse_qs(u.urlsplit(sys.argv[1]).query).get("code", [""])[0])' "$location")
tokens=$("${CURL[@]}" -u "$app_id:$app_secret" -d grant_type=authorization_code --data-urlencode "code=$code" \
  --data-urlencode redirect_uri=https://app.example/cb -d "code_verifier=$verifier" "$issuer/token" || true)
check "the code exchange through nginx returns an ID token" \
  python3 -c 'import json,sys; sys.exit(0 if json.loads(sys.argv[1]).get("id_token") else 1)' "$tokens"

# --- Who Sigil believes the client is: the audit trail. ---
audit=$("$SIGIL" audit tail -n 100 --json)
ip_of() { # KIND: the client IPs of the audit events of that kind, one a line
  python3 -c 'import json,sys; [print(e["details"].get("ip")) for e in json.load(sys.stdin) if e["kind"] == sys.argv[1]]' "$1" <<<"$audit"
}
check "the audit trail records the forwarded client 127.0.0.2, not its forged header" \
  test "$(ip_of login.success)" = 127.0.0.2
check "a forged X-Forwarded-For is overwritten, not appended (the failure is 127.0.0.1's)" \
  test "$(ip_of login.failure)" = 127.0.0.1

# --- The counters the alert rules watch, scraped from Sigil itself (nginx refuses /metrics). ---
curl -fsS --max-time 10 "http://127.0.0.1:$sigil_port/metrics" >"$WORK/metrics.txt" || true
check "Sigil's /metrics passes promtool check metrics" bash -c 'promtool check metrics <"$0"' "$WORK/metrics.txt"
check "every selector in deploy/prometheus/alerts matches a series Sigil exposes" \
  python3 ./alert_metrics.py "$ROOT/deploy/prometheus/alerts/security.yml" "$WORK/metrics.txt"
check "the sign-ins through nginx counted one failure and one success" \
  bash -c 'grep -qx "sigil_logins_total{outcome=\"failure\"} 1" "$0" && grep -qx "sigil_logins_total{outcome=\"success\"} 1" "$0"' \
  "$WORK/metrics.txt"

# --- TLS: 1.2 and 1.3 with strong ciphers; 1.1, weak ciphers and other names refused. ---
s_client() { timeout 10 openssl s_client -connect "127.0.0.1:$1" -brief "${@:2}" </dev/null >"$WORK/s_client.out" 2>&1; }
check "TLS 1.3 accepted" s_client "$tls_port" -servername "$host" -tls1_3
check "TLS 1.2 accepted with ECDHE-ECDSA-AES128-GCM-SHA256" \
  s_client "$tls_port" -servername "$host" -tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256
refused() { ! s_client "$@"; }
# The clients below can speak TLS 1.1 and CBC-SHA1 (with this ECDSA certificate) here: a control server proves it, so the
# refusals are nginx's doing and not this OpenSSL's defaults.
openssl s_server -accept "127.0.0.1:$control_port" -cert "$WORK/tls/cert.pem" -key "$WORK/tls/key.pem" \
  -cipher 'ALL:@SECLEVEL=0' -www -quiet </dev/null >/dev/null 2>&1 &
control_pid=$!
PIDS+=($control_pid)
for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$control_port") 2>/dev/null && break; sleep 0.1; done
check "control: openssl completes TLS 1.1 where a server allows it" \
  s_client "$control_port" -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0'
check "control: openssl completes TLS 1.2 with ECDHE-ECDSA-AES128-SHA where a server allows it" \
  s_client "$control_port" -tls1_2 -cipher 'ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0'
check "control: curl completes TLS 1.1 where a server allows it" \
  curl -sS --max-time 10 -k -o /dev/null --tlsv1.1 --tls-max 1.1 --ciphers 'DEFAULT:@SECLEVEL=0' \
  "https://127.0.0.1:$control_port/"
deploy_stop "$control_pid"
check "TLS 1.1 refused" refused "$tls_port" -servername "$host" -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0'
check "TLS 1.1 without SNI refused" refused "$tls_port" -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0'
check "TLS 1.2 with a CBC-SHA1 cipher (ECDHE-ECDSA-AES128-SHA) refused" \
  refused "$tls_port" -servername "$host" -tls1_2 -cipher 'ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0'
check "a handshake for another name refused" refused "$tls_port" -servername other.example -tls1_3
check "TLS 1.1 through curl refused" \
  bash -c '! "$@" -o /dev/null --tlsv1.1 --tls-max 1.1 --ciphers "DEFAULT:@SECLEVEL=0" "$0"' \
  "$issuer/healthz" "${CURL[@]}"

# --- Plain HTTP only redirects. ---
redirect=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code} %{redirect_url}' -H "Host: $host" \
  "http://127.0.0.1:$http_port/.well-known/openid-configuration?x=1" || true)
check "plain HTTP answers 301 to https://$host" \
  test "$redirect" = "301 https://$host/.well-known/openid-configuration?x=1"

# --- Limits. ---
big=$(head -c 20000 /dev/zero | tr '\0' a)
status=$("${CURL[@]}" -o "$WORK/413.body" -D "$WORK/413.headers" -w '%{http_code}' \
  -u "$cc_id:$cc_secret" --data-binary "grant_type=client_credentials&pad=$big" "$issuer/token" || true)
check "a 20 KB body is refused with 413" test "$status" = 413
# Sigil refuses it too (http.max_body): nginx's log shows the refusal was nginx's own.
check "nginx refused that body itself, before Sigil saw it" \
  grep -q 'client intended to send too large body' "$NGX/logs/error.log"
check "nginx's own 413 carries HSTS" one_header "$WORK/413.headers" strict-transport-security \
  "max-age=63072000; includeSubDomains"
status=$("${CURL[@]}" -o /dev/null -w '%{http_code}' "$issuer/metrics" || true)
check "/metrics is not served to the public" test "$status" = 403

# 120 discovery requests at once from 127.0.0.3: the zone for "everything else" (20/s, burst
# 50) lets the burst through and refuses the rest with 429 (Sigil does not limit discovery).
mkdir -p "$WORK/rl"
"${CURL[@]}" --interface 127.0.0.3 --parallel --parallel-max 20 \
  -w '%{http_code} %header{retry-after}|%header{strict-transport-security}|%header{content-type}\n' \
  -o "$WORK/rl/#1" "$issuer/.well-known/openid-configuration?n=[1-120]" >"$WORK/rl.out" 2>/dev/null || true
n200=$(grep -c '^200 ' "$WORK/rl.out" || true)
n429=$(grep -c '^429 ' "$WORK/rl.out" || true)
check "a burst of 120 gets its 50 through ($n200 × 200)" test "$n200" -ge 50
check "and the rest is refused with 429 ($n429 × 429)" test "$n429" -ge 1
check "nginx's 429 has Retry-After, HSTS and a JSON body" \
  grep -q '^429 1|max-age=63072000; includeSubDomains|application/json$' "$WORK/rl.out"
check "nginx's 429 body is Sigil's slow_down error" \
  bash -c 'grep -l "^{\"error\":\"slow_down\"," "$0"/* >/dev/null' "$WORK/rl"
status=$("${CURL[@]}" -o /dev/null -w '%{http_code}' "$issuer/.well-known/openid-configuration" || true)
check "another address (127.0.0.1) is not limited by 127.0.0.3's burst" test "$status" = 200

if [ "$failed" -gt 0 ]; then
  echo "--- sigil serve log (tail) ---" >&2
  tail -20 "$WORK/serve.log" >&2
  echo "--- nginx error log (tail) ---" >&2
  tail -20 "$NGX/logs/error.log" >&2
fi
echo "nginx: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
