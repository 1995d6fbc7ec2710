#!/usr/bin/env bash
# GET /admin/api/v1/users with 10 000 users on PostgreSQL: the first page, a page deep in the
# list, and the last page, each by wrk for a few seconds (pages are read by the username index:
# no page loads all users). Bounded in time.
#   tests/bench/admin_users.sh [SECONDS]   (default 5; needs wrk and PostgreSQL)
#   BENCH_BIN=path/to/sigil                 (that binary instead of a release build)
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION="${1:-5}"
command -v wrk >/dev/null || { echo "wrk is required: apt-get install wrk" >&2; exit 1; }
if [ -n "${BENCH_BIN:-}" ]; then SIGIL="$BENCH_BIN"; else
  cargo build --release -q -p sigil --bin sigil; SIGIL="${CARGO_TARGET_DIR:-target}/release/sigil"; fi
WORK=$(mktemp -d)
DB="sigil_bench_admin_$$"
psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE $DB" >/dev/null
PID=""
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null
}
trap cleanup EXIT
port=$((20000 + RANDOM % 20000))
issuer="http://127.0.0.1:$port"
export SIGIL_DATA_DIR="$WORK" SIGIL_LOG_LEVEL=warn SIGIL_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB" \
  SIGIL_RATE_LIMITS_ADMIN_PER_PRINCIPAL=off
"$SIGIL" serve --listen "127.0.0.1:$port" 2>"$WORK/serve.log" &
PID=$!
for _ in $(seq 1 100); do curl -fs "$issuer/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
# 10 000 users in one statement (the password hash is one real bcrypt hash for all: only the
# listing is measured).
printf 'correct horse battery staple\n' | "$SIGIL" users create --username u00000 --password-stdin >/dev/null
psql -q -h 127.0.0.1 -U postgres -d "$DB" -c "INSERT INTO users (id, username, email, email_verified, password_hash, disabled, roles, created_at, updated_at, password_changed_at)
  SELECT 'usr_bench' || i, 'u' || lpad(i::text, 5, '0'), NULL, false, (SELECT password_hash FROM users WHERE username = 'u00000'), false, '[]', 0, 0, 0
  FROM generate_series(1, 9999) AS i"
echo "users: $(psql -tA -h 127.0.0.1 -U postgres -d "$DB" -c 'SELECT count(*) FROM users')"
creds=$("$SIGIL" clients create --name admin --grant client_credentials --role sigil-admin --json)
field() { python3 -c "import json,sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }
id=$(field client_id <<<"$creds"); secret=$(field client_secret <<<"$creds")
sleep 2.5
export BENCH_TOKEN=$(curl -fs -u "$id:$secret" -d grant_type=client_credentials "$issuer/token" | field access_token)
cat >"$WORK/bearer.lua" <<'LUA'
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
LUA
for q in "limit=50" "limit=50&after=u05000" "limit=50&after=u09960" "limit=200"; do
  n=$(curl -fs -H "Authorization: Bearer $BENCH_TOKEN" "$issuer/admin/api/v1/users?$q" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["users"]))')
  r=$(wrk -t1 -c4 -d"${DURATION}s" --latency -s "$WORK/bearer.lua" "$issuer/admin/api/v1/users?$q" \
    | awk '/Requests\/sec/ {rps=$2} $1=="50%" {p50=$2} $1=="99%" {p99=$2} /Non-2xx/ {e=$5} END {printf "%s req/s, p50 %s, p99 %s, non-2xx %s", rps, p50, p99, (e==""?0:e)}')
  echo "| users?$q ($n users) | $r |"
done
