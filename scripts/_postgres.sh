# Sourced by scripts/test.sh: a throwaway PostgreSQL cluster on 127.0.0.1.
# start_postgres exports DATABUTLER_TEST_POSTGRESQL; stop_postgres removes everything.
set -euo pipefail

PG_TMP=""
PG_BIN=""

_pg_as_owner() {
  # From /, which the postgres user can always enter (a clone may be in a private dir).
  if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

_find_pg_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  if [ -z "$dir" ] && command -v pg_config >/dev/null 2>&1; then
    dir=$(pg_config --bindir)
  fi
  [ -n "$dir" ] && [ -x "$dir/initdb" ] && echo "$dir"
}

start_postgres() {
  PG_BIN=$(_find_pg_bin || true)
  if [ -z "$PG_BIN" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "Installing PostgreSQL (Debian package postgresql)..."
      apt-get update -q >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null
      PG_BIN=$(_find_pg_bin)
    else
      echo "PostgreSQL is not installed: its tests will be skipped." >&2
      echo "Install it (Debian: apt-get install postgresql) to run them." >&2
      return 0
    fi
  fi
  local port
  port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  PG_TMP=$(mktemp -d)
  chmod 755 "$PG_TMP"
  [ "$(id -u)" = 0 ] && chown postgres: "$PG_TMP"
  _pg_as_owner "$PG_BIN/initdb" -D "$PG_TMP/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >"$PG_TMP/initdb.log"
  _pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/server.log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $PG_TMP -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null
  _pg_as_owner "$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres databutler_test
  export DATABUTLER_TEST_POSTGRESQL="postgresql://postgres@127.0.0.1:$port/databutler_test"
  echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') running on 127.0.0.1:$port"
}

stop_postgres() {
  if [ -n "$PG_TMP" ] && [ -d "$PG_TMP/data" ]; then
    _pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -m fast -w stop >/dev/null || true
  fi
  [ -n "$PG_TMP" ] && rm -rf "$PG_TMP"
  PG_TMP=""
}
