# A throwaway PostgreSQL 15 for bench/run, started like scripts/postgres.sh (loopback port,
# trust auth, a temp data dir, run as `postgres` when we are root) but durable: fsync and
# synchronous_commit stay on, as on a real server, since SQLite runs with synchronous=FULL
# and the comparison must be fair. shared_buffers 1 GB (the default 128 MB is a laptop value).
# BENCH_PG_NOFSYNC=1 (bench/run --no-fsync, a diagnostic) turns fsync and synchronous_commit off.
# Sets BENCH_PG_URL (admin URL) and BENCH_PG_PORT; bench_pg_stop removes it.
# shellcheck shell=bash

BENCH_PG_BIN=/usr/lib/postgresql/15/bin
bench_pg_start() {
  BENCH_PG_DIR=$(mktemp -d /tmp/mercato-bench-pg.XXXXXX)
  BENCH_PG_PORT=$(free_port)
  BENCH_PG_AS=()
  local durability="" said="fsync on, synchronous_commit on"
  [ "${BENCH_PG_NOFSYNC:-0}" = 1 ] && { durability="-c fsync=off -c synchronous_commit=off"; said="fsync OFF: diagnostic"; }
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$BENCH_PG_DIR"
    BENCH_PG_AS=(runuser -u postgres --)
  fi
  "${BENCH_PG_AS[@]}" "$BENCH_PG_BIN/initdb" -D "$BENCH_PG_DIR/data" -A trust -U postgres >/dev/null
  "${BENCH_PG_AS[@]}" "$BENCH_PG_BIN/pg_ctl" -D "$BENCH_PG_DIR/data" -l "$BENCH_PG_DIR/log" -w \
    -o "-p $BENCH_PG_PORT -k $BENCH_PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=300 -c shared_buffers=1GB -c max_wal_size=4GB $durability" start >/dev/null
  BENCH_PG_URL="postgres://postgres@127.0.0.1:$BENCH_PG_PORT/postgres"
  echo "postgres: started on 127.0.0.1:$BENCH_PG_PORT ($said)"
}

bench_pg_stop() {
  [ -n "${BENCH_PG_DIR:-}" ] || return 0
  "${BENCH_PG_AS[@]}" "$BENCH_PG_BIN/pg_ctl" -D "$BENCH_PG_DIR/data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$BENCH_PG_DIR"
  BENCH_PG_DIR=""
}
