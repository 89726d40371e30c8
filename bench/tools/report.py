#!/usr/bin/env python3
"""Results of bench/run: one JSON object a line in results.jsonl, and the table with targets.

  report.py record RESULTS WRK_OUTPUT META_JSON   adds one wrk run (META: scenario, system, ...)
  report.py memory RESULTS JSON                    adds one RSS reading of the memory scenario
  report.py delivery RESULTS JSON                  adds the delivery scenario's result (bench/tools/sink_wait.py)
  report.py skip RESULTS JSON                      records a skipped scenario
  report.py table RESULTS MACHINE_JSON             prints every scenario with its targets
"""
import json
import sys

# Issue 9's targets (release build, 32 connections, 20 s).
TARGETS = {
    ("ping", "sqlite"): {"rps": 15000, "p99_ms": 10, "ratio": 0.40},
    ("ping", "postgres"): {"rps": 8000},
    ("kv", "sqlite"): {"rps": 8000},
}
GET_P99_MS = 2.0
PING_GROWTH = 0.10
NODES_CPU_GROWTH = 1.15
RSS_MB = 150
MEMORY_COMMANDS = 1_000_000
DELIVERIES_PER_S = 5000


def record(path, wrk_output, meta):
    line = next((l for l in open(wrk_output) if l.startswith("WRK_RESULT ")), None)
    if line is None:
        sys.exit("no WRK_RESULT in " + wrk_output + ":\n" + open(wrk_output).read()[-2000:])
    w = json.loads(line[len("WRK_RESULT "):])
    seconds = w["duration_us"] / 1e6
    r = dict(meta)
    r.update(kind="load", requests=w["requests"], seconds=round(seconds, 2), rps=round(w["requests"] / seconds, 1),
             p50_ms=w["p50_us"] / 1000, p90_ms=w["p90_us"] / 1000, p99_ms=w["p99_us"] / 1000, p999_ms=w["p999_us"] / 1000,
             max_ms=w["max_us"] / 1000, mean_ms=round(w["mean_us"] / 1000, 3), errors=w["errors"],
             planned=w["planned"], exhausted_threads=w["exhausted_threads"])
    before, after = r.pop("outcomes_before", {}), r.pop("outcomes_after", {})
    r["outcomes"] = {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)}
    r["server_cores"] = round(r["cpu_s"] / seconds, 2) if seconds else None
    # CPU a request cost the server (with PostgreSQL: Mercato's nodes and the database's backends).
    r["cpu_us_per_request"] = round(r["cpu_s"] * 1e6 / w["requests"], 1) if w["requests"] else None
    # Of which PostgreSQL's backends (0 on SQLite).
    r["db_cpu_us_per_request"] = round(r.get("cpu_s_db", 0) * 1e6 / w["requests"], 1) if w["requests"] else None
    # Bytes the server process wrote to storage a request (SQLite's WAL and checkpoints; with
    # PostgreSQL only the node's own, the database's writes are its backends').
    r["written_bytes_per_request"] = round(r["written_bytes"] / w["requests"]) if w["requests"] and "written_bytes" in r else None
    with open(path, "a") as f:
        f.write(json.dumps(r) + "\n")
    written = f", {r['written_bytes_per_request']:,} B written/request" if r.get("written_bytes_per_request") is not None else ""
    note = f" (ran out of prepared commands after {seconds:.1f} s)" if w["exhausted_threads"] else ""
    print(f"   {r['system']:8} {r['variant']:14} c={r['connections']:<3} {r['rps']:>10,.0f} rps  p50 {r['p50_ms']:.2f} ms  "
          f"p99 {r['p99_ms']:.2f} ms  server {r['server_cores']} cores, {r['cpu_us_per_request']} CPU µs/request{db_part(r)}{written}  (others {r.get('busy_before')} cores, speed {r.get('speed_ms')} ms)  "
          f"{fmt_outcomes(r)}{note}")


def db_part(r):
    return f" (PostgreSQL {r['db_cpu_us_per_request']})" if r.get("db_cpu_us_per_request") else ""


def append(path, obj):
    with open(path, "a") as f:
        f.write(json.dumps(obj) + "\n")
    if obj.get("kind") == "memory":
        print(f"   after {obj['commands']:>9,} commands: VmRSS {obj['rss_kib'] / 1024:.0f} MB, VmHWM {obj['hwm_kib'] / 1024:.0f} MB")


def fmt_outcomes(r):
    o = dict(r.get("outcomes") or {})
    if r["system"] != "mercato" or not o:
        bad = r["errors"]["status"] + r["errors"]["timeout"] + r["errors"]["connect"] + r["errors"]["read"] + r["errors"]["write"]
        return f"errors {bad}" if bad else ""
    return "outcomes " + ", ".join(f"{k} {v:,}" for k, v in sorted(o.items(), key=lambda kv: -kv[1]))


def verdict(checks):
    missed = [name for name, ok in checks if not ok]
    return "met" if not missed else "missed (" + ", ".join(missed) + ")"


def table(path, machine_path):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    m = json.load(open(machine_path))
    print(f"Mercato benchmarks, {m['date']}, commit {m['commit']}: {m['nproc']} cores ({m['cpu']}), {m['ram_gib']} GiB, engine {m['engine']}")
    print(f"command: {m['command']}")
    f = m.get("fsync", {})
    print(f"fsync of 4 KiB on the data dir's disk: p50 {f.get('fsync_p50_ms')} ms, p99 {f.get('fsync_p99_ms')} ms; load average before: {m.get('load_before')}\n")
    hdr = f"{'scenario':10} {'system':8} {'variant':14} {'conn':>4} {'rps':>10} {'p50 ms':>7} {'p99 ms':>7} {'ratio':>6}  target / result"
    print(hdr)
    print("-" * len(hdr))
    loads = [r for r in rows if r.get("kind") == "load"]

    def find(scenario, system, variant, conns=None):
        for r in loads:
            if r["scenario"] == scenario and r["system"] == system and r["variant"] == variant and (conns is None or r["connections"] == conns):
                return r
        return None

    for r in loads:
        if r["scenario"] == "memory":
            continue
        ratio, target = None, ""
        if r["system"] == "floor":
            ceil = find(r["scenario"], "ceiling", "empty")
            if ceil:
                ratio = r["rps"] / ceil["rps"]
            target = "(the durable floor: the ceiling's work, a point read, two rows group-committed before the answer)"
        if r["system"] == "mercato":
            ceil = None
            if r["variant"] == "empty":
                ceil = find(r["scenario"], "ceiling", "empty")
            elif r["variant"].startswith("get-"):
                ceil = find(r["scenario"], "ceiling", "get", r["connections"])
            elif r["variant"].startswith("nodes-"):
                ceil = find(r["scenario"], "ceiling", r["variant"])
            if ceil:
                ratio = r["rps"] / ceil["rps"]
            t = TARGETS.get((r["scenario"], r["engine"]))
            if t and r["variant"] == "empty":
                checks = [(f">= {t['rps']:,} rps", r["rps"] >= t["rps"])]
                if "p99_ms" in t:
                    checks.append((f"p99 <= {t['p99_ms']} ms", r["p99_ms"] <= t["p99_ms"]))
                if "ratio" in t:
                    checks.append((f">= {t['ratio']:.2f} of ceiling", ratio is not None and ratio >= t["ratio"]))
                target = " and ".join(n for n, _ in checks) + ": " + verdict(checks)
            floor = find(r["scenario"], "floor", "empty")
            if floor and r["variant"] == "empty" and ceil:
                cpu = lambda x: f"{x['cpu_us_per_request']:.0f}" if x.get("cpu_us_per_request") else "?"
                target += (f" [{r['rps'] / floor['rps']:.2f} of the durable floor's rps; CPU µs a command: "
                           f"Mercato {cpu(r)}, floor {cpu(floor)}, ceiling {cpu(ceil)}]")
            if r["variant"] == "get-seeded" and r["connections"] >= 32:
                target = f"p99 <= {GET_P99_MS} ms: " + verdict([(f"p99 {r['p99_ms']:.2f} ms", r["p99_ms"] <= GET_P99_MS)])
            if r["variant"] == "get-seeded" and r["connections"] < 32:
                target = f"(p99 <= {GET_P99_MS} ms at 1 connection: {'yes' if r['p99_ms'] <= GET_P99_MS else 'no'})"
            bad = sum(r["errors"][k] for k in ("status", "timeout", "connect", "read", "write"))
            if bad and r["scenario"] in ("installs",):
                # A GET load's answers are all 200 or it measured something else (e.g. 429s).
                target = f"NOT A RESULT: {bad:,} answers were errors or not 2xx"
            if r["scenario"] == "inbound" and r["variant"] == "empty":
                # Issue 21: verified provider events against their ceiling at least as fast as
                # signed commands against theirs. The ratio is the measure: a provider's request
                # is larger than a ping (its headers, its JSON), so the bare ceiling itself answers
                # 0.73-0.96 as many of them (wrk and the HTTP parse share the 2 cores); the rps of
                # each is printed beside it.
                ping = find("ping", "mercato", "empty")
                ping_ceil = find("ping", "ceiling", "empty")
                if ping and ping_ceil and ratio is not None:
                    ping_ratio = ping["rps"] / ping_ceil["rps"]
                    ceil_share = ceil["rps"] / ping_ceil["rps"]
                    target = (f">= ping's ratio ({ping_ratio:.2f}): " + verdict([(f"ratio {ratio:.2f}", ratio >= ping_ratio)])
                              + f" [rps {r['rps'] / ping['rps']:.2f} of ping's; the ceiling's own {ceil_share:.2f} of its ping's]")
                else:
                    target = "(run with ping for the target: at least ping's ratio to the ceiling)"
            if r["variant"].startswith("nodes-"):
                # Issue 19: CPU a command with N nodes against one node, beside what the bare
                # framework pays for the same spread: N ceilings behind the same nginx, each as
                # much less busy as each node is (on 2 cores a process serving a third of the
                # load wakes more often a request, and the framework's own cost a request grows).
                one = find(r["scenario"], "mercato", "empty")
                ceil_one, ceil_n = find(r["scenario"], "ceiling", "empty"), find(r["scenario"], "ceiling", r["variant"])
                if one and one.get("cpu_us_per_request") and r.get("cpu_us_per_request"):
                    growth = r["cpu_us_per_request"] / one["cpu_us_per_request"]
                    target = f"CPU a command {growth:.2f}x one node's, <= {NODES_CPU_GROWTH:.2f}x: " + verdict([(f"{growth:.2f}x", growth <= NODES_CPU_GROWTH)])
                    if ceil_one and ceil_n and ceil_one.get("cpu_us_per_request") and ceil_n.get("cpu_us_per_request"):
                        target += f" [the bare ceiling's own: {ceil_n['cpu_us_per_request'] / ceil_one['cpu_us_per_request']:.2f}x]"
            if r["variant"] == "ping-seeded":
                empty = find(r["scenario"], "mercato", "ping-empty")
                if empty:
                    change = r["rps"] / empty["rps"] - 1
                    target = f"no more than 10% below empty ({change:+.1%}): " + verdict([("ping fell more than 10%", change >= -PING_GROWTH)])
        if r["exhausted_threads"]:
            target += f" [ran out of prepared commands after {r['seconds']} s]"
        print(f"{r['scenario']:10} {r['system']:8} {r['variant']:14} {r['connections']:>4} {r['rps']:>10,.0f} {r['p50_ms']:>7.2f} "
              f"{r['p99_ms']:>7.2f} {('%.2f' % ratio) if ratio is not None else '':>6}  {target}")
        o = fmt_outcomes(r)
        if o:
            print(f"{'':10} {'':8} {o}")
    mem = [r for r in rows if r.get("kind") == "memory"]
    if mem:
        last = mem[-1]
        chunks = [r for r in loads if r["scenario"] == "memory"]
        rps = sum(c["requests"] for c in chunks) / max(sum(c["seconds"] for c in chunks), 1e-9) if chunks else 0
        series = ", ".join(f"{r['commands'] // 1000}k: {r['rss_kib'] / 1024:.0f}" for r in mem)
        checks = [(f"RSS {last['rss_kib'] / 1024:.0f} MB", last["rss_kib"] / 1024 <= RSS_MB),
                  (f"only {last['commands']:,} commands", last["commands"] >= MEMORY_COMMANDS)]
        print(f"{'memory':10} {'mercato':8} {'RSS MB':14} {'':>4} {rps:>10,.0f} {'':>7} {'':>7} {'':>6}  "
              f"RSS <= {RSS_MB} MB after {MEMORY_COMMANDS:,}: {verdict(checks)}")
        print(f"{'':10} {'':8} VmRSS by commands sent (MB): {series}; VmHWM {last['hwm_kib'] / 1024:.0f} MB")
    for r in rows:
        if r.get("kind") == "delivery":
            checks = [(f"{r['rate_window']:,.0f}/s", r["rate_window"] >= DELIVERIES_PER_S), ("incomplete", r["complete"])]
            print(f"{'delivery':10} {'mercato':8} {'deliveries/s':14} {'':>4} {r['rate_window']:>10,.0f} {'':>7} {'':>7} {'':>6}  "
                  f">= {DELIVERIES_PER_S:,} signed deliveries/s: {verdict(checks)}")
            print(f"{'':10} {'':8} {r['valid']:,} valid of {r['expected']:,} ({r['invalid']} invalid) in {r['window_s']} s from the first to the last; "
                  f"{r['rate_total']:,.0f}/s counted from the server's start ({r['total_s']} s); server {r['cpu_s']} CPU s; {r.get('outcomes')}")
    for r in rows:
        if r.get("kind") == "skipped":
            print(f"{r['scenario']:10} {'':8} skipped: {r['why']}")


def main():
    cmd = sys.argv[1]
    if cmd == "record":
        record(sys.argv[2], sys.argv[3], json.loads(sys.argv[4]))
    elif cmd == "memory":
        append(sys.argv[2], dict(json.loads(sys.argv[3]), kind="memory", scenario="memory"))
    elif cmd == "delivery":
        obj = dict(json.loads(sys.argv[3]), kind="delivery")
        append(sys.argv[2], obj)
        print(f"   {obj['valid']:,} valid deliveries ({obj['invalid']} invalid) of {obj['expected']:,}: {obj['rate_window']:,.0f}/s first to last "
              f"({obj['window_s']} s), {obj['rate_total']:,.0f}/s from the server's start; server {obj['cpu_s']} CPU s")
    elif cmd == "skip":
        append(sys.argv[2], dict(json.loads(sys.argv[3]), kind="skipped"))
        print("   skipped: " + json.loads(sys.argv[3])["why"])
    elif cmd == "table":
        table(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
