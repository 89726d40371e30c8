# The benchmarks' PostgreSQL: scripts/postgres.sh's throwaway cluster, but durable (fsync and
# synchronous_commit stay on, as on a real server, since SQLite runs with synchronous=FULL and
# the comparison must be fair) with shared_buffers 1 GB (the default 128 MB is a laptop value).
# `bench_pg_start 1` (bench/run --no-fsync, a diagnostic) turns fsync and synchronous_commit off;
# a second argument 1 (bench/run --pg-stats) loads pg_stat_statements with planning times tracked.
# BENCH_PG_SETTINGS adds server settings for an experiment (e.g. "-c plan_cache_mode=force_generic_plan").
# Sets PG_URL and PG_PORT; pg_stop removes it.
# shellcheck shell=bash

. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/postgres.sh"

bench_pg_start() {
  local settings=(-c shared_buffers=1GB -c max_wal_size=4GB)
  [ "${1:-0}" = 1 ] && settings+=(-c fsync=off -c synchronous_commit=off)
  [ "${2:-0}" = 1 ] && settings+=(-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track_planning=on)
  # shellcheck disable=SC2206 # words on purpose: "-c name=value ..."
  [ -n "${BENCH_PG_SETTINGS:-}" ] && settings+=(${BENCH_PG_SETTINGS})
  pg_start "${settings[@]}"
}
