# Starts a throwaway PostgreSQL 15 cluster on a loopback port (trust auth, a temp data dir);
# `pg_stop` removes it. Arguments are extra server settings (`-c name=value ...`): the tests
# pass `-c fsync=off`, bench/ passes durable, larger settings. Sets PG_URL (an admin URL) and
# PG_PORT. PostgreSQL refuses to run as root, so as root the cluster belongs to `postgres`.
# shellcheck shell=bash

PG_BIN=/usr/lib/postgresql/15/bin
pg_start() {
  PG_DIR=$(mktemp -d /tmp/mercato-pg.XXXXXX)
  PG_PORT=$(free_port)
  local as=()
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$PG_DIR"
    as=(runuser -u postgres --)
  fi
  "${as[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U postgres >/dev/null
  "${as[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w \
    -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=300 $*" start >/dev/null
  PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
  PG_AS=("${as[@]}")
  echo "postgres: started on 127.0.0.1:$PG_PORT${*:+ ($*)}"
}

pg_stop() {
  local status=$?
  [ -n "${PG_DIR:-}" ] || return 0
  # After a failure (pg_stop runs from an EXIT trap), the server's own complaints: connections
  # refused or ended, which a failing test reports only as "unreachable".
  if [ "$status" -ne 0 ] && [ -f "$PG_DIR/log" ]; then
    echo "postgres: FATAL and PANIC lines of the server's log (last 20):"
    grep -E "FATAL|PANIC" "$PG_DIR/log" | tail -n 20 || true
  fi
  "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
  PG_DIR=""
}
