#!/usr/bin/env bash
# The deploy/ files, each checked by its own tool: `nginx -t` on deploy/nginx/ as shipped, nginx
# for real in front of `sigil serve` (nginx.sh), `promtool check rules` and `promtool test
# rules` on deploy/prometheus/alerts/, a mutation check that each alert's tests can fail, and
# `systemd-analyze verify` and `security` on deploy/systemd/sigil.service.
# Needs nginx, openssl, curl, promtool and systemd-analyze (Debian: apt-get install -y nginx
# openssl curl prometheus systemd); nginx runs unprivileged in a temp prefix, never as the
# system service.
set -euo pipefail
cd "$(dirname "$0")"
source ./lib.sh
ROOT=$DEPLOY_ROOT
deploy_require nginx openssl curl python3 setpriv promtool systemd-analyze
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
  local t0=$SECONDS
  echo "--- $name"
  if "$@"; then
    passed=$((passed + 1))
    echo "ok: $name ($((SECONDS - t0)) s)"
  else
    failed=$((failed + 1))
    echo "FAILED: $name ($((SECONDS - t0)) s)" >&2
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

t0=$SECONDS
cargo build -q -p sigil --bin sigil --manifest-path "$ROOT/Cargo.toml"
echo "cargo build: $((SECONDS - t0)) s"
step "nginx in front of sigil serve (tests/deploy/nginx.sh)" env SIGIL="$ROOT/target/debug/sigil" ./nginx.sh

ALERTS="$ROOT/deploy/prometheus/alerts"
step "promtool check rules" promtool check rules "$ALERTS/security.yml"
step "promtool test rules" bash -c 'cd "$0" && promtool test rules security.test.yml' "$ALERTS"
step "each alert's tests can fail" "$PYYAML" ./alert_mutations.py "$ALERTS/security.yml" "$ALERTS/security.test.yml"

# deploy/systemd/sigil.service: `systemd-analyze verify` with no complaint at all (it only warns
# about unknown keys, and that must fail too), and an offline security exposure of 2.0 or less
# ("OK"). ExecStart points at the binary just built: verify checks that it is executable.
systemd_unit() {
  local unit="$WORK/systemd/sigil.service" out
  mkdir -p "$WORK/systemd"
  cp "$ROOT/deploy/systemd/sigil.service" "$unit"
  deploy_subst "$unit" "ExecStart=/usr/local/bin/sigil " "ExecStart=$ROOT/target/debug/sigil " 1 || return 1
  out=$(systemd-analyze verify "$unit" 2>&1) || { echo "$out" >&2; return 1; }
  [ -z "$out" ] || { echo "$out" >&2; echo "systemd-analyze verify complained" >&2; return 1; }
  systemd-analyze security --offline=yes --threshold=20 "$unit" >"$WORK/systemd/security.txt" 2>&1 || {
    grep -E '✗|Overall' "$WORK/systemd/security.txt" >&2
    return 1
  }
  tail -1 "$WORK/systemd/security.txt"
}
step "systemd-analyze verify and security (deploy/systemd)" systemd_unit

echo "deploy checks took $((SECONDS - started)) s"
echo "deploy: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
