#!/usr/bin/env bash
# The deploy/ files, each checked by its own tool: `nginx -t` on deploy/nginx/ as shipped, nginx
# for real in front of `sigil serve` (nginx.sh), `promtool check rules` and `promtool test
# rules` on deploy/prometheus/alerts/, and a mutation check that each alert's tests can fail.
# Needs nginx, openssl, curl and promtool (Debian: apt-get install -y nginx openssl curl
# prometheus); nginx runs unprivileged in a temp prefix, never as the system service.
set -euo pipefail
cd "$(dirname "$0")"
source ./lib.sh
ROOT=$DEPLOY_ROOT
deploy_require nginx openssl curl python3 setpriv promtool
# The alert mutation check needs PyYAML: the python3 on PATH, or Debian's.
PYYAML=""
for py in python3 /usr/bin/python3; do
  if "$py" -c 'import yaml' 2>/dev/null; then PYYAML=$py; break; fi
done
if [ -z "$PYYAML" ]; then
  echo "error: the alert mutation check needs PyYAML: apt-get install -y python3-yaml (or pip install pyyaml)" >&2
  exit 1
fi
started=$SECONDS
WORK=$(mktemp -d)
chmod 755 "$WORK"
trap 'rm -rf "$WORK"' EXIT

passed=0
failed=0
step() {
  local name=$1
  shift
  echo "--- $name"
  if "$@"; then
    passed=$((passed + 1))
    echo "ok: $name"
  else
    failed=$((failed + 1))
    echo "FAILED: $name" >&2
  fi
}

# nginx -t on sigil.conf and security.conf as shipped: only the certificate paths point at a
# throwaway pair. -t binds the listen addresses (0.0.0.0 and [::] on 80 and 443), so nginx
# runs as nobody with only the capability to bind low ports.
shipped_nginx_t() {
  deploy_make_cert "$WORK/tls"
  deploy_render_nginx "$WORK/nginx" "$WORK/tls"
  chown -R "$(stat -c %u "$WORK/nginx")" "$WORK/tls"
  DEPLOY_LOW_PORTS=1 deploy_nginx_test "$WORK/nginx"
}
step "nginx -t (deploy/nginx as shipped)" shipped_nginx_t

cargo build -q -p sigil --bin sigil --manifest-path "$ROOT/Cargo.toml"
step "nginx in front of sigil serve (tests/deploy/nginx.sh)" env SIGIL="$ROOT/target/debug/sigil" ./nginx.sh

ALERTS="$ROOT/deploy/prometheus/alerts"
step "promtool check rules" promtool check rules "$ALERTS/security.yml"
step "promtool test rules" bash -c 'cd "$0" && promtool test rules security.test.yml' "$ALERTS"
step "each alert's tests can fail" "$PYYAML" ./alert_mutations.py "$ALERTS/security.yml" "$ALERTS/security.test.yml"

echo "deploy checks took $((SECONDS - started)) s"
echo "deploy: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
