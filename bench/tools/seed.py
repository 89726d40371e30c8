#!/usr/bin/env python3
"""Bulk-seeds a stopped Mercato database for the "large database" scenario: N orgs each with a
live install of the benchmark app, and M command-log rows spread over those installs and the
last 20 days (inside the 30-day retention, so RetentionService leaves them alone).

All rows are made by the database itself in one transaction (a recursive CTE on SQLite,
generate_series on PostgreSQL); the command_log secondary indexes are dropped first and built
again after, from the definitions the database reports (so they always match Schema.swift).
Seeded ids sort before real ones (`ins_00...`, `cmd_00...`), as older rows would.

Usage: seed.py sqlite PATH APP_ID APP_KEY VERSION INSTALLS LOG_ROWS
       seed.py postgres URL APP_ID APP_KEY VERSION INSTALLS LOG_ROWS"""
import subprocess
import sys
import time

engine, where, app_id, app_key, version = sys.argv[1:6]
installs, rows = int(sys.argv[6]), int(sys.argv[7])
now = int(time.time() * 1000)
span = 20 * 86400 * 1000
sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
start = time.time()


def lit(s):
    return "'" + s.replace("'", "''") + "'"


if engine == "sqlite":
    import sqlite3
    db = sqlite3.connect(where, isolation_level=None)
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-1048576")
    db.execute("PRAGMA temp_store=MEMORY")
    indexes = db.execute("SELECT name, sql FROM sqlite_master WHERE type='index' AND tbl_name='command_log' AND sql IS NOT NULL").fetchall()
    series = "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < %d) "
    num = "printf('%%024d', %s)"
    db.execute("BEGIN")
    db.execute(series % installs + f"INSERT INTO orgs (id, name, plan, created_at) SELECT 'org_00' || {num % 'i'}, 'Seed ' || i, 'pro', {now} FROM s")
    db.execute(series % installs + f"""INSERT INTO installs (id, org_id, app_id, app_key, version, status, scopes, config_keys, created_by, created_at, updated_at, removed_at)
        SELECT 'ins_00' || {num % 'i'}, 'org_00' || {num % 'i'}, {lit(app_id)}, {lit(app_key)}, {lit(version)}, 'active', '["kv:write"]', '[]', 'usr_seed', {now}, {now}, NULL FROM s""")
    for name, _ in indexes:
        db.execute(f'DROP INDEX "{name}"')
    db.execute(series % rows + f"""INSERT INTO command_log (id, install_id, app_id, org_id, command, webhook_id, body_sha256, outcome, http_status, duration_us, created_at)
        SELECT 'cmd_00' || {num % 'i'}, 'ins_00' || {num % f'(i % {installs}) + 1'}, {lit(app_id)}, 'org_00' || {num % f'(i % {installs}) + 1'},
               'ping', 'seed' || i, '{sha}', 'succeeded', 200, 150, {now - span} + (i * {span // max(rows, 1)}) FROM s""")
    for _, sql in indexes:
        db.execute(sql)
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
else:
    def psql(sql, *flags):
        done = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", *flags, where], input=sql, text=True, capture_output=True)
        if done.returncode != 0:
            sys.exit(f"seed.py: psql failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout
    indexes = [line.split("|", 1) for line in psql(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'command_log' AND indexname NOT LIKE '%pkey'", "-At").splitlines() if line]
    num = "lpad((%s)::text, 24, '0')"
    script = ["SET synchronous_commit = off;", "SET maintenance_work_mem = '1GB';", "BEGIN;",
              f"INSERT INTO orgs (id, name, plan, created_at) SELECT 'org_00' || {num % 'i'}, 'Seed ' || i, 'pro', {now} FROM generate_series(1, {installs}) i;",
              f"""INSERT INTO installs (id, org_id, app_id, app_key, version, status, scopes, config_keys, created_by, created_at, updated_at, removed_at)
                  SELECT 'ins_00' || {num % 'i'}, 'org_00' || {num % 'i'}, {lit(app_id)}, {lit(app_key)}, {lit(version)}, 'active', '["kv:write"]', '[]', 'usr_seed', {now}, {now}, NULL
                  FROM generate_series(1, {installs}) i;"""]
    script += [f'DROP INDEX "{name}";' for name, _ in indexes]
    script.append(f"""INSERT INTO command_log (id, install_id, app_id, org_id, command, webhook_id, body_sha256, outcome, http_status, duration_us, created_at)
        SELECT 'cmd_00' || {num % 'i'}, 'ins_00' || {num % f'(i % {installs}) + 1'}, {lit(app_id)}, 'org_00' || {num % f'(i % {installs}) + 1'},
               'ping', 'seed' || i, '{sha}', 'succeeded', 200, 150, {now - span} + (i::bigint * {span // max(rows, 1)}) FROM generate_series(1, {rows}) i;""")
    script += [sql + ";" for _, sql in indexes]
    script += ["COMMIT;", "ANALYZE;"]
    psql("\n".join(script))
print(f"seeded {installs} installs and {rows} command-log rows in {time.time() - start:.0f} s")
