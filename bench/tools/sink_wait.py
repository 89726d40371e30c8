#!/usr/bin/env python3
"""Polls the sink's /sink/stats every 0.2 s until N valid deliveries arrived (or TIMEOUT seconds
without progress), then prints one JSON object: valid, invalid, the sink's first and last valid
delivery times, the server's start time given, and the rates:
  rate_window: valid deliveries / (last - first)  - sustained delivery once deliveries flow
  rate_total:  valid deliveries / (last - START_MS) - including the first fan-out pass
Usage: sink_wait.py SINK_BASE N START_MS [TIMEOUT]"""
import json
import sys
import time
import urllib.request

base, n, start_ms = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
idle_limit = float(sys.argv[4]) if len(sys.argv) > 4 else 30
last_valid, last_change = -1, time.time()
while True:
    with urllib.request.urlopen(base + "/sink/stats", timeout=5) as r:
        s = json.load(r)
    if s["valid"] != last_valid:
        last_valid, last_change = s["valid"], time.time()
    if s["valid"] >= n or time.time() - last_change > idle_limit:
        break
    time.sleep(0.2)
window = max(s["last_ms"] - s["first_ms"], 1) / 1000
total = max(s["last_ms"] - start_ms, 1) / 1000
s.update(expected=n, start_ms=start_ms, window_s=round(window, 2), total_s=round(total, 2),
         rate_window=round(s["valid"] / window, 1), rate_total=round(s["valid"] / total, 1), complete=s["valid"] >= n)
print(json.dumps(s))
