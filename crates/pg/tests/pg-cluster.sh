#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the contactdb-pg tests.
#
#   pg-cluster.sh start   initdb + start on a free loopback port; prints the URL
#   pg-cluster.sh stop    fast shutdown, then deletes the cluster's directory
#
# The cluster lives in $PG_CLUSTER_DIR (default /tmp/contactdb-pg-cluster). initdb
# refuses to run as root, so as root the cluster runs as an unprivileged user
# ($PG_CLUSTER_USER, default pgtest, created when missing).
set -euo pipefail

dir="${PG_CLUSTER_DIR:-/tmp/contactdb-pg-cluster}"
user="${PG_CLUSTER_USER:-pgtest}"

find_bin() {
  local name="$1"
  if command -v "$name" >/dev/null 2>&1; then
    command -v "$name"
    return
  fi
  local d
  for d in /usr/lib/postgresql/*/bin; do
    if [ -x "$d/$name" ]; then
      echo "$d/$name"
      return
    fi
  done
  echo "pg-cluster.sh: $name not found (install PostgreSQL)" >&2
  exit 1
}

as_user() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u "$user" -- "$@"
  else
    "$@"
  fi
}

free_port() {
  python3 - <<'PY' 2>/dev/null || echo 54329
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

case "${1:-}" in
  start)
    initdb="$(find_bin initdb)"
    pg_ctl="$(find_bin pg_ctl)"
    if [ "$(id -u)" = 0 ] && ! id "$user" >/dev/null 2>&1; then
      useradd -r -M -s /usr/sbin/nologin "$user"
    fi
    if [ -e "$dir" ]; then
      "$0" stop >/dev/null 2>&1 || true
    fi
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
      chown "$user" "$dir"
    fi
    chmod 700 "$dir"
    as_user "$initdb" -D "$dir/data" -U postgres --auth=trust >"$dir/initdb.log" 2>&1 || {
      cat "$dir/initdb.log" >&2
      exit 1
    }
    port="$(free_port)"
    as_user "$pg_ctl" -D "$dir/data" -l "$dir/server.log" \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200" \
      -w start >/dev/null || {
      cat "$dir/server.log" >&2
      exit 1
    }
    echo "$port" >"$dir/port"
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    ;;
  stop)
    if [ -d "$dir/data" ]; then
      pg_ctl="$(find_bin pg_ctl)"
      as_user "$pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
