#!/usr/bin/env python3
"""Median and p99 latency of write(4 KiB) + fsync on the file system of DIR, in ms: the floor
under every durable commit (SQLite synchronous=FULL, PostgreSQL fsync on). Usage: fsync_probe.py DIR [N]"""
import os
import statistics
import sys
import time

directory = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 300
path = os.path.join(directory, ".fsync-probe")
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
samples = []
try:
    for _ in range(n):
        t = time.perf_counter()
        os.write(fd, b"x" * 4096)
        os.fsync(fd)
        samples.append((time.perf_counter() - t) * 1000)
finally:
    os.close(fd)
    os.remove(path)
samples.sort()
print('{"fsync_p50_ms": %.2f, "fsync_p99_ms": %.2f, "fsync_mean_ms": %.2f}' % (
    statistics.median(samples), samples[int(len(samples) * 0.99) - 1], statistics.mean(samples)))
