#!/usr/bin/env python3
"""Seeds N undelivered outbox events of type `task.created` for one install, into a stopped
Mercato database, for the delivery scenario: DeliveryService fans them out to the install's app
(which subscribes to `task.created`) and delivers each to its webhook_url. The rows say their
plugin hooks already ran (hooks_done_at), so only delivery works on them. Ids sort before real
ones (`msg_00...`). One transaction, made by the database itself.

Usage: seed_outbox.py sqlite PATH ORG_ID INSTALL_ID APP_ID N
       seed_outbox.py postgres URL ORG_ID INSTALL_ID APP_ID N"""
import subprocess
import sys
import time

engine, where, org, install, app = sys.argv[1:6]
n = int(sys.argv[6])
now = int(time.time() * 1000)
stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now / 1000))


def lit(s):
    return "'" + s.replace("'", "''") + "'"


def payload(i):
    # A task event as the Tasks plugin would emit it (about 200 bytes).
    return ("'{\"type\":\"task.created\",\"timestamp\":\"" + stamp + "\",\"data\":{\"install_id\":\"" + install +
            "\",\"task\":{\"id\":\"tsk_seed' || " + i + " || '\",\"title\":\"Benchmark task\",\"status\":\"open\",\"description\":\"seeded by bench/tools/seed_outbox.py\"}}}'")


start = time.time()
if engine == "sqlite":
    import sqlite3
    db = sqlite3.connect(where, isolation_level=None)
    db.execute("BEGIN")
    db.execute(f"""WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n})
        INSERT INTO outbox_events (id, org_id, install_id, app_id, type, payload, created_at, dispatched_at, hooks_done_at)
        SELECT 'msg_00' || printf('%024d', i), {lit(org)}, {lit(install)}, {lit(app)}, 'task.created', {payload('i')}, {now}, NULL, {now} FROM s""")
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
else:
    sql = f"""INSERT INTO outbox_events (id, org_id, install_id, app_id, type, payload, created_at, dispatched_at, hooks_done_at)
        SELECT 'msg_00' || lpad(i::text, 24, '0'), {lit(org)}, {lit(install)}, {lit(app)}, 'task.created', {payload('i')}, {now}, NULL, {now}
        FROM generate_series(1, {n}) i;"""
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", where], input=sql, text=True, check=True)
print(f"   seeded {n:,} outbox events in {time.time() - start:.1f} s", file=sys.stderr)
