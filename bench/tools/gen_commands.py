#!/usr/bin/env python3
"""Pre-signs N distinct Mercato commands for wrk (bench/wrk/load.lua).

Each command gets its own webhook-id (ids are idempotency keys: a repeated id would be a replay,
not a command). Signatures are Standard Webhooks v1: base64(HMAC-SHA256(key, "{id}.{ts}.{body}"))
with key = base64-decoded part of the `whsec_` secret, computed with Python's hmac module; the
first one is cross-checked against the `standardwebhooks` reference library when it is installed.
Timestamps are "now", so generate right before loading (the server accepts ±300 s).

Writes FILES files OUT.0 .. OUT.{FILES-1} (one per wrk thread), one request a line:
webhook-id TAB webhook-timestamp TAB webhook-signature TAB body.
"""
import argparse
import base64
import hashlib
import hmac
import json
import sys
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--secret", required=True, help="the app's command secret, whsec_<base64>")
    p.add_argument("--install", required=True)
    p.add_argument("--command", default="ping", choices=["ping", "kv.set", "inbound"],
                   help="inbound: a provider's Standard Webhooks event (a user.created like Clerk's) for the inbound route")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--files", type=int, default=2)
    p.add_argument("--out", required=True)
    p.add_argument("--id-prefix", required=True, help="makes ids distinct across batches of one data dir")
    p.add_argument("--value-bytes", type=int, default=1024, help="kv.set: bytes of the string value")
    p.add_argument("--kv-keys", type=int, default=1000, help="kv.set: keys cycled through (the store has a byte quota)")
    a = p.parse_args()

    secret = a.secret[len("whsec_"):] if a.secret.startswith("whsec_") else a.secret
    mac = hmac.new(base64.b64decode(secret), digestmod=hashlib.sha256)
    ts = str(int(time.time()))
    install = json.dumps(a.install)
    if a.command == "inbound":
        make_body = lambda i: '{"type":"user.created","object":"event","data":{"id":"user_%09d","email_addresses":[]}}' % i
    elif a.command == "ping":
        template = '{"install_id":%s,"command":"ping","args":{}}' % install
        make_body = lambda i: template
    else:
        filler = "v" * (a.value_bytes - 12)
        head = '{"install_id":%s,"command":"kv.set","args":{"key":"k' % install
        make_body = lambda i: '%s%d","value":"%012d%s"}}' % (head, i % a.kv_keys, i, filler)

    outs = [open(f"{a.out}.{n}", "w", buffering=1 << 20) for n in range(a.files)]
    first = None
    for i in range(a.count):
        wid = "%s%09d" % (a.id_prefix, i)
        body = make_body(i)
        m = mac.copy()
        m.update(f"{wid}.{ts}.{body}".encode())
        sig = "v1," + base64.b64encode(m.digest()).decode()
        outs[i % a.files].write(f"{wid}\t{ts}\t{sig}\t{body}\n")
        if first is None:
            first = (wid, body, sig)
    for f in outs:
        f.close()

    try:
        from datetime import datetime, timezone
        from standardwebhooks.webhooks import Webhook
    except ImportError:
        return
    wid, body, sig = first
    reference = Webhook(a.secret).sign(wid, datetime.fromtimestamp(int(ts), tz=timezone.utc), body)
    if reference != sig:
        sys.exit(f"signature mismatch with the standardwebhooks library: {sig} != {reference}")


if __name__ == "__main__":
    main()
