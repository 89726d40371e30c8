#!/usr/bin/env python3
"""Who spends a profile's CPU: self samples grouped by the code that owns them.

Two views, each read on standard input with the symbols demangled in full (`swift demangle`, not
--simplified: the module names stay):

- by leaf (default): `perf report --stdio --no-children --sort dso,symbol -g none --percent-limit 0`;
  each sample goes to the owner of the function it was in: Mercato's own modules, the framework
  (SwiftNIO, Hummingbird, HTTP types, the service lifecycle, logging and metrics), the storage
  engine (SQLite or PostgresNIO), libsodium, Foundation, the Swift runtime and allocator (retain,
  release, malloc), the kernel.
- by caller (--stacks): `perf script -F comm,tid,ip,sym,dso` of a profile recorded with call
  graphs; each sample goes to the nearest frame on its stack that belongs to an owner other than
  the kernel, the Swift runtime and standard library, so a `swift_retain` or a `write(2)` counts
  for the code that asked for it; the columns say how much of each owner's share was spent in the
  kernel and in the runtime on its behalf.

With --us-per-request N each share is also printed as CPU microseconds of a request (or, with
--unit, as whatever the profile's samples count: `bench/profile --allocs` samples malloc calls).

    perf report ... | swift demangle | bench/tools/owners.py [--us-per-request 170]
    perf script ... | swift demangle | bench/tools/owners.py --stacks [--us-per-request 170]
"""
import argparse
import re
import sys

UNIT = "µs/request"
LINE = re.compile(r"^\s*([0-9.]+)%\s+(\S+)\s+\[(.)\]\s+(.*)$")

# Module name → owner. The first module a demangled symbol names decides (a generic
# specialization is named after the generic's module, which is where its code was written).
MODULES = [
    ("Mercato", re.compile(r"\b(Mercato\w*|mercato)\.")),
    ("framework: SwiftNIO", re.compile(r"\b(NIO\w*|_NIO\w*)\.")),
    ("framework: Hummingbird", re.compile(r"\b(Hummingbird\w*|HTTPTypes\w*|Mustache)\.")),
    ("framework: logging, metrics, lifecycle", re.compile(r"\b(Logging|Metrics|CoreMetrics|Prometheus|ServiceLifecycle|UnixSignals|Tracing|Instrumentation|ServiceContextModule|AsyncAlgorithms)\.")),
    ("storage: PostgresNIO, SQLKit", re.compile(r"\b(PostgresNIO|_ConnectionPoolModule|SQLKit|SQLiteNIO|SQLiteKit|PostgresKit)\.")),
    ("HTTP client", re.compile(r"\b(AsyncHTTPClient)\.")),
    ("crypto: jwt-kit, swift-crypto", re.compile(r"\b(JWTKit|Crypto|_CryptoExtras|X509|SwiftASN1)\.")),
    ("Foundation", re.compile(r"\b(Foundation\w*|_FoundationEssentials|_FoundationCShims)\.")),
    ("Swift standard library", re.compile(r"\b(Swift|_Concurrency|Synchronization|_StringProcessing|Atomics|DequeModule|Collections\w*)\.")),
]

RUNTIME = re.compile(r"^(swift_|_swift_|malloc|free|cfree|calloc|realloc|_int_malloc|_int_free|__libc_malloc|__libc_free|"
                     r"tcache|malloc_consolidate|unlink_chunk|__memcpy|__memmove|__memset|memcpy|memmove|memset|__memcmp|memcmp|"
                     r"__strlen|strlen|_dl_|__tls_get_addr|pthread_|__pthread|__lll_|__GI_|__futex|sem_)")


def owner(dso: str, kind: str, symbol: str) -> str:
    if kind == "k" or dso.startswith("[kernel"):
        return "kernel"
    if "sqlite" in dso or symbol.startswith("sqlite3") or symbol.startswith("sqlite_nio"):
        return "storage: SQLite"
    if "sodium" in dso or symbol.startswith(("crypto_", "sodium_", "_sodium")):
        return "libsodium"
    if "Foundation" in dso:
        return "Foundation"
    # The earliest module named outside generic arguments (`<…>`) and closure signatures decides:
    # `closure #1 in MercatoCore.X.f(Swift.String)` is Mercato's, `generic specialization
    # <MercatoCore.Y> of Swift.Array.append` the standard library's.
    plain = symbol
    while True:
        stripped = re.sub(r"<[^<>]*>", "", plain)
        if stripped == plain:
            break
        plain = stripped
    plain = re.sub(r"^(closure #\d+ |implicit closure #\d+ )\([^)]*\)[^ ]* ", "", plain)
    found = [(m.start(), name) for name, pattern in MODULES if (m := pattern.search(plain))]
    if found:
        return min(found)[1]
    if RUNTIME.match(symbol) or "libswiftCore" in dso or "libc.so" in dso or "libc-" in dso:
        return "Swift runtime, allocator, libc"
    if "libswift_Concurrency" in dso or "libdispatch" in dso:
        return "Swift standard library"
    return "other"


# libc's file I/O and lock calls, whose callers' frames are lost (libc and Debian's libsqlite3
# have no frame pointers): in this server only SQLite reads and writes files at an offset, syncs
# them and locks them (the log goes through write(2)).
SQLITE_IO = re.compile(r"^(fdatasync|fsync|__libc_pwrite\w*|__libc_pread\w*|pwrite\w*|pread\w*|__fcntl\w*|fcntl\w*)$")

# Owners a sample is not charged to when a frame further up the stack has another.
PASS_THROUGH = {"kernel", "Swift runtime, allocator, libc", "Swift standard library", "other"}
FRAME = re.compile(r"^\s+[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$")


def by_caller(lines, us: float | None, examples: int) -> None:
    """The --stacks view: each sample charged to its nearest owning frame."""
    totals: dict[str, list[float]] = {}   # owner → [samples, in kernel, in runtime/stdlib]
    callers: dict[str, dict[str, int]] = {}
    samples = 0

    def settle(frames: list[tuple[str, str]]) -> None:
        nonlocal samples
        if not frames:
            return
        samples += 1
        leaf = owner(frames[0][1], "k" if "kernel" in frames[0][1] else ".", frames[0][0])
        charged, via = None, None
        for symbol, dso in frames:
            who = owner(dso, "k" if "kernel" in dso else ".", symbol)
            if "libc" in dso and SQLITE_IO.match(symbol):
                who = "storage: SQLite"
            if who not in PASS_THROUGH:
                charged, via = who, symbol
                break
        if charged is None:
            charged = "kernel (no user frame)" if leaf == "kernel" else "runtime, standard library (no owner on the stack)"
        row = totals.setdefault(charged, [0, 0, 0])
        row[0] += 1
        if leaf == "kernel":
            row[1] += 1
        elif leaf in PASS_THROUGH:
            row[2] += 1
        if via:
            callers.setdefault(charged, {})[via[:150]] = callers.get(charged, {}).get(via[:150], 0) + 1

    frames: list[tuple[str, str]] = []
    for line in lines:
        m = FRAME.match(line)
        if m:
            symbol = re.sub(r"\+0x[0-9a-f]+$", "", m.group(1))
            frames.append((symbol, m.group(2)))
        elif not line.strip() or not line.startswith((" ", "\t")):
            settle(frames)
            frames = []
    settle(frames)
    if samples == 0:
        sys.exit("owners.py: no samples on standard input")
    header = f"{'charged to (nearest owning frame)':52} {'share':>7} {'in kernel':>10} {'in runtime':>11}"
    print(header + (f" {UNIT:>11}" if us else ""))
    for who, (n, kernel, runtime) in sorted(totals.items(), key=lambda kv: -kv[1][0]):
        row = f"{who:52} {n / samples * 100:6.1f}% {kernel / samples * 100:9.1f}% {runtime / samples * 100:10.1f}%"
        if us:
            row += f" {n / samples * us:11.1f}"
        print(row)
        for name, count in sorted(callers.get(who, {}).items(), key=lambda kv: -kv[1])[:examples]:
            print(f"    {count / samples * 100:5.2f}%  {name}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--us-per-request", type=float, default=None)
    parser.add_argument("--examples", type=int, default=0, help="the top symbols of each owner")
    parser.add_argument("--stacks", action="store_true", help="read perf script output; charge each sample to its nearest owning frame")
    parser.add_argument("--unit", default="µs/request", help="what --us-per-request counts (e.g. mallocs/request for a profile of malloc calls)")
    args = parser.parse_args()
    global UNIT
    UNIT = args.unit
    if args.stacks:
        by_caller(sys.stdin, args.us_per_request, args.examples)
        return
    shares: dict[str, float] = {}
    symbols: dict[str, list[tuple[float, str]]] = {}
    total = 0.0
    for line in sys.stdin:
        m = LINE.match(line)
        if not m:
            continue
        share, dso, kind, symbol = float(m.group(1)), m.group(2), m.group(3), m.group(4).strip()
        who = owner(dso, kind, symbol)
        shares[who] = shares.get(who, 0.0) + share
        symbols.setdefault(who, []).append((share, symbol))
        total += share
    if total == 0:
        sys.exit("owners.py: no samples on standard input")
    print(f"{'owner':44} {'share':>7}" + (f" {UNIT:>11}" if args.us_per_request else ""))
    for who, share in sorted(shares.items(), key=lambda kv: -kv[1]):
        row = f"{who:44} {share / total * 100:6.1f}%"
        if args.us_per_request:
            row += f" {share / total * args.us_per_request:11.1f}"
        print(row)
        for s, name in sorted(symbols[who], reverse=True)[:args.examples]:
            print(f"    {s / total * 100:5.2f}%  {name[:150]}")


if __name__ == "__main__":
    main()
