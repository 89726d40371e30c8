#!/usr/bin/env python3
"""WAL pages a plugin key costs on SQLite: random keys (as an inbound event's hash) written in
commits of 30, as the writer's group commit writes them, into a copy of a migrated database.

    bench/tools/plugin_kv_wal.py DATA_DIR/mercato.sqlite [--keys 90000] [--index "CREATE INDEX ..."] [--org-id ORG]

DATA_DIR is a data directory `mercato serve` created (so the schema is the current one); the
file is copied, never written. --index adds an index first, to price one (for example migration
9's `plugin_kv_usage`, dropped by migration 43). The keys are written without an org, as for
a plugin that does not declare `orgWideReads` (migration 44); --org-id writes them with one, as
for the audit trail, to price the org index. Prints WAL frames per commit and bytes per key:
on these machines the WAL's writes and their fdatasync are most of an inbound event's CPU.
"""
import argparse
import hashlib
import os
import shutil
import sqlite3
import tempfile
import time

parser = argparse.ArgumentParser()
parser.add_argument("database")
parser.add_argument("--keys", type=int, default=90_000)
parser.add_argument("--per-commit", type=int, default=30)
parser.add_argument("--index", action="append", default=[])
parser.add_argument("--org-id", default=None)
args = parser.parse_args()

work = tempfile.mkdtemp(prefix="plugin-kv-wal.")
path = os.path.join(work, "copy.sqlite")
shutil.copy(args.database, path)
db = sqlite3.connect(path, isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=FULL")
db.execute("PRAGMA wal_autocheckpoint=0")   # counted here, then checkpointed by hand
page = db.execute("PRAGMA page_size").fetchone()[0]
for statement in args.index:
    db.execute(statement)
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

commits = args.keys // args.per_commit
frames = 0
started = time.time()


def checkpoint() -> int:
    size = os.path.getsize(path + "-wal") if os.path.exists(path + "-wal") else 0
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return max(0, size - 32) // (page + 24)


for commit in range(commits):
    db.execute("BEGIN IMMEDIATE")
    for i in range(args.per_commit):
        key = "evt:stripe:" + hashlib.sha256(f"{commit}-{i}".encode()).hexdigest()
        db.execute("""INSERT INTO plugin_kv (plugin_id, install_id, org_id, key, value, size, version, updated_at, expires_at)
                      VALUES ('inbound', 'ins_bench', ?, ?, '{"id":"inb_bench"}', 110, 1, ?, ?)""",
                   (args.org_id, key, commit, commit + 1_000_000))
    db.execute("COMMIT")
    if commit % 500 == 499:
        frames += checkpoint()
frames += checkpoint()
elapsed = time.time() - started
db.close()
shutil.rmtree(work)
print(f"{args.keys:,} keys in {commits:,} commits of {args.per_commit}: {frames:,} WAL frames of {page} bytes, "
      f"{frames / commits:.1f} a commit, {frames * (page + 24) / args.keys:,.0f} WAL bytes a key; {elapsed:.1f} s"
      + (f" (with {len(args.index)} extra index)" if args.index else ""))
