#!/usr/bin/env bash
# Runs a command with DATABASE_URL pointing at a reachable PostgreSQL: the one
# already in DATABASE_URL, else 127.0.0.1:5432, else a private throwaway server.
set -euo pipefail
reachable() {
  python3 - "$1" <<'PY'
import socket, sys
from urllib.parse import urlparse
u = urlparse(sys.argv[1])
try:
    socket.create_connection((u.hostname or "127.0.0.1", u.port or 5432), timeout=1).close()
except OSError:
    sys.exit(1)
PY
}
if [ -n "${DATABASE_URL:-}" ] && reachable "$DATABASE_URL"; then
  exec "$@"
fi
if reachable "postgresql://postgres@127.0.0.1:5432/test"; then
  export DATABASE_URL="postgresql://postgres@127.0.0.1:5432/test"
  exec "$@"
fi
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bindir" ]; then
  echo "with-postgres: no PostgreSQL reachable and no server binaries (apt-get install postgresql)" >&2
  exit 1
fi
dir=$(mktemp -d /tmp/callcenter-pg.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
as_pg=()
if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; as_pg=(runuser -u postgres --); fi
"${as_pg[@]}" "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >/dev/null
"${as_pg[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
  -o "-h 127.0.0.1 -p $port -k $dir -c fsync=off" start >/dev/null
cleanup() { "${as_pg[@]}" "$bindir/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT
"${as_pg[@]}" "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres test
export DATABASE_URL="postgresql://postgres@127.0.0.1:$port/test"
echo "with-postgres: private server on port $port" >&2
"$@"
