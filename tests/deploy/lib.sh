# Shared by tests/deploy/*.sh (sourced, not run): the tools the deploy checks need, a
# throwaway certificate, nginx's configuration from deploy/nginx/ laid out in a temp dir, and
# nginx run as an unprivileged process with that prefix (never the system service).

DEPLOY_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# Fail (never skip) when a tool is missing, saying how to install it.
deploy_require() {
  local missing=0 tool pkg
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 && continue
    case "$tool" in
      promtool) pkg="prometheus (it ships /usr/bin/promtool)" ;;
      setpriv) pkg="util-linux" ;;
      systemd-analyze) pkg="systemd" ;;
      *) pkg="$tool" ;;
    esac
    echo "error: $tool is required by the deploy checks: apt-get install -y $pkg" >&2
    missing=1
  done
  [ "$missing" = 0 ] || exit 1
}

# A self-signed P-256 certificate for id.example.com (a day long) in DIR/cert.pem, DIR/key.pem.
deploy_make_cert() {
  local dir=$1
  mkdir -p "$dir"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=id.example.com -addext subjectAltName=DNS:id.example.com \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
}

# Replace the literal OLD by NEW in FILE, which must hold OLD exactly COUNT times (a shipped
# file that changed must change this test with it, not slip past it).
deploy_subst() {
  python3 - "$@" <<'PY'
import sys
path, old, new, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
text = open(path).read()
found = text.count(old)
if found != count:
    sys.exit(f"{path}: expected {count} of {old!r}, found {found}")
open(path, "w").write(text.replace(old, new))
PY
}

# Lay out deploy/nginx/ under OUT as Debian's /etc/nginx would hold it: OUT/conf/nginx.conf
# (the http context, with Debian's permissive TLS default that sigil.conf must override),
# OUT/conf/sigil.conf (conf.d/sigil.conf) and OUT/conf/sigil/security.conf, verbatim but for
# the certificate paths (CERTDIR/cert.pem, key.pem). With TLS_PORT, HTTP_PORT and UPSTREAM
# (host:port) also the listen addresses (loopback; no IPv6 lines) and Sigil's address.
deploy_render_nginx() {
  local out=$1 certdir=$2 tls_port=${3:-} http_port=${4:-} upstream=${5:-}
  local conf="$out/conf"
  mkdir -p "$conf/sigil" "$out/tmp" "$out/logs"
  cp "$DEPLOY_ROOT/deploy/nginx/sigil.conf" "$conf/sigil.conf"
  cp "$DEPLOY_ROOT/deploy/nginx/security.conf" "$conf/sigil/security.conf"
  deploy_subst "$conf/sigil.conf" /etc/letsencrypt/live/id.example.com/fullchain.pem "$certdir/cert.pem" 1
  deploy_subst "$conf/sigil.conf" /etc/letsencrypt/live/id.example.com/privkey.pem "$certdir/key.pem" 1
  if [ -n "$tls_port" ]; then
    deploy_subst "$conf/sigil.conf" "listen 443 ssl" "listen 127.0.0.1:$tls_port ssl" 2
    deploy_subst "$conf/sigil.conf" "listen 80;" "listen 127.0.0.1:$http_port;" 1
    deploy_subst "$conf/sigil.conf" "server 127.0.0.1:8080 " "server $upstream " 1
    python3 - "$conf/sigil.conf" <<'PY'
import re, sys
path = sys.argv[1]
text = open(path).read()
text, n = re.subn(r"(?m)^\s*listen \[::\]:.*\n", "", text)
if n != 3:
    sys.exit(f"{path}: expected 3 IPv6 listen lines, found {n}")
open(path, "w").write(text)
PY
  fi
  cat >"$conf/nginx.conf" <<NGINX
worker_processes 1;
pid $out/nginx.pid;
error_log $out/logs/error.log info;
events { worker_connections 512; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log $out/logs/access.log;
    client_body_temp_path $out/tmp/client_body;
    proxy_temp_path $out/tmp/proxy;
    fastcgi_temp_path $out/tmp/fastcgi;
    uwsgi_temp_path $out/tmp/uwsgi;
    scgi_temp_path $out/tmp/scgi;
    # As in Debian's /etc/nginx/nginx.conf: every server inherits these unless it says otherwise.
    ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;
    ssl_prefer_server_ciphers on;
    include sigil.conf;
}
NGINX
  # As root, nginx runs as nobody: it must be able to read and write its own tree.
  if [ "$(id -u)" = 0 ]; then chown -R nobody:nogroup "$out"; fi
}

# The command prefix that runs a program as an unprivileged user (nobody) when this shell is
# root, else nothing, in the array DEPLOY_AS_NOBODY (an array, not a function, so that
# `"${DEPLOY_AS_NOBODY[@]}" nginx ... &` leaves nginx's own pid in $!). With DEPLOY_LOW_PORTS=1
# the program keeps one capability: binding ports below 1024.
deploy_as_nobody() {
  DEPLOY_AS_NOBODY=()
  if [ "$(id -u)" = 0 ]; then
    DEPLOY_AS_NOBODY=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
    if [ "${DEPLOY_LOW_PORTS:-}" = 1 ]; then
      DEPLOY_AS_NOBODY+=(--inh-caps=+net_bind_service --ambient-caps=+net_bind_service)
    fi
    DEPLOY_AS_NOBODY+=(--)
  fi
}

# nginx -t on a tree made by deploy_render_nginx; fails on any warning, not only on errors.
deploy_nginx_test() {
  local out=$1 log
  deploy_as_nobody
  log=$("${DEPLOY_AS_NOBODY[@]}" nginx -t -p "$out" -e "$out/logs/error.log" -c "$out/conf/nginx.conf" 2>&1) || {
    echo "$log" >&2
    return 1
  }
  if grep -E '\[(warn|alert|emerg|crit|error)\]' <<<"$log" >&2; then
    echo "nginx -t passed with the warnings above" >&2
    return 1
  fi
  grep -q 'test is successful' <<<"$log"
}

# Stop processes: SIGTERM, up to 5 s for a graceful exit, then SIGKILL.
deploy_stop() {
  local p alive
  for p in "$@"; do kill "$p" 2>/dev/null || true; done
  for _ in $(seq 1 50); do
    alive=0
    for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for p in "$@"; do kill -9 "$p" 2>/dev/null || true; done
}
