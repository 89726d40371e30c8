#!/usr/bin/env python3
"""Standard Webhooks receiver peer for Mercato's interop tests (CONTRACT.md section 5).

Tests start it as a subprocess, read the single stdout line ``LISTENING <port>``, point an app's
``webhook_url`` at ``http://127.0.0.1:<port>/<any path>`` and then inspect what arrived:

    python3 webhook_receiver.py --port 0 --secret whsec_... [--secret whsec_...]

Every POST to a path other than the control paths is a delivery. Its signature is checked with
two independent implementations, the ``standardwebhooks`` and ``svix`` PyPI libraries, against
each configured secret separately (so during a rotation a test can see that the new secret alone
and the old secret alone both verify). The answer depends on the current mode.

Control API (JSON):
  POST /_control  {"mode": "ok"|"fail"|"hang"|"429"|"503"|"410", "status": int (fail, default 500),
                   "retry_after": seconds (429/503, optional), "hang_seconds": float (default 60),
                   "secrets": [...] (replaces the list), "times": n (mode for the next n
                   deliveries, then back to "ok")}  -> current settings (secrets never echoed)
  GET  /_stats    counters, per-id attempts, per-type counts and the last 1000 delivery records
  POST /_reset    clears the stats; an optional body is applied like /_control

Modes: "ok" answers 200 {"ok": true} when at least one library verified, 400 otherwise;
"fail" answers `status`; "429"/"503" answer that status with Retry-After when set; "410" answers
410 Gone; "hang" waits hang_seconds, then answers 200 (other requests are served meanwhile).

"duplicates" counts deliveries whose webhook-id had already been answered 2xx with a verified
signature before this delivery arrived. A "hang" answer counts only if the sender was still
waiting for it: one that timed out first never saw the 2xx, so its retry is no duplicate.
Secrets are never printed or returned.
"""
import argparse
import collections
import json
import select
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook as StandardWebhook
from svix.webhooks import Webhook as SvixWebhook

CONTROL_PATHS = ("/_control", "/_stats", "/_reset")
MODES = ("ok", "fail", "hang", "429", "503", "410")
MAX_RECORDS = 1000


class Settings:
    """Current answering behaviour; mutated only under State.lock."""

    def __init__(self, secrets):
        self.secrets = list(secrets)
        self.mode = "ok"
        self.status = 500
        self.retry_after = None
        self.hang_seconds = 60.0
        self.times = None  # remaining deliveries for the current mode; None = until changed

    def public(self):
        return {"mode": self.mode, "status": self.status, "retry_after": self.retry_after,
                "hang_seconds": self.hang_seconds, "times": self.times,
                "secrets_configured": len(self.secrets)}


class State:
    def __init__(self, secrets):
        self.lock = threading.Lock()
        self.settings = Settings(secrets)
        self.reset_stats()

    def reset_stats(self):
        self.received = 0
        self.verified_standardwebhooks = 0
        self.verified_svix = 0
        self.unverified = 0
        self.duplicates = 0
        self.ids = collections.OrderedDict()  # webhook-id -> attempts
        self.types = collections.Counter()
        self.answered = collections.Counter()  # status code -> count
        self.succeeded_ids = set()  # ids answered 2xx after verification
        self.records = collections.deque(maxlen=MAX_RECORDS)

    def apply_control(self, body):
        """Validate and apply a /_control body atomically; raises ValueError on bad input."""
        s = self.settings
        mode = body.get("mode", s.mode)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        secrets = body.get("secrets")
        if secrets is not None:
            if not isinstance(secrets, list) or not all(isinstance(x, str) for x in secrets):
                raise ValueError("secrets must be a list of strings")
            for secret in secrets:
                try:
                    StandardWebhook(secret)
                except Exception:
                    raise ValueError("a secret is not a valid whsec_/base64 secret") from None
        times = body.get("times")
        if times is not None and (not isinstance(times, int) or times < 1):
            raise ValueError("times must be a positive integer")
        status = int(body.get("status", 500 if "mode" in body else s.status))
        retry_after = body.get("retry_after", None if "mode" in body else s.retry_after)
        hang_seconds = float(body.get("hang_seconds", 60.0 if "mode" in body else s.hang_seconds))
        if secrets is not None:
            s.secrets = list(secrets)
        if "mode" in body:
            s.mode, s.status, s.retry_after, s.hang_seconds = mode, status, retry_after, hang_seconds
            s.times = times
        else:  # tweak parameters of the current mode
            s.status, s.retry_after, s.hang_seconds = status, retry_after, hang_seconds
            if "times" in body:
                s.times = times

    def take_mode(self):
        """The settings that apply to one delivery; consumes one of `times` if set."""
        s = self.settings
        snapshot = (s.mode, s.status, s.retry_after, s.hang_seconds)
        if s.times is not None:
            s.times -= 1
            if s.times <= 0:
                s.mode, s.times = "ok", None
        return snapshot

    def stats(self):
        return {
            "received": self.received,
            "verified_standardwebhooks": self.verified_standardwebhooks,
            "verified_svix": self.verified_svix,
            "unverified": self.unverified,
            "unique_ids": len(self.ids),
            "duplicates": self.duplicates,
            "ids": dict(self.ids),
            "types": dict(self.types),
            "answered": {str(k): v for k, v in self.answered.items()},
            "settings": self.settings.public(),
            "deliveries": list(self.records),
        }


def verify_each(cls, secrets, body, headers):
    """Indexes of the secrets whose signature `cls` (a library's Webhook class) accepts."""
    ok = []
    for index, secret in enumerate(secrets):
        try:
            cls(secret).verify(body, headers)
            ok.append(index)
        except Exception:  # bad signature, stale timestamp, malformed header or body
            pass
    return ok


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so pooled sender connections work
    server_version = "MercatoWebhookPeer/1"

    def log_message(self, format, *args):  # quiet: tests read stdout, and nothing secret leaks
        pass

    @property
    def state(self):
        return self.server.state

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # skip trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send_json(self, status, payload, extra_headers=()):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in extra_headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def do_GET(self):
        if self.path.split("?")[0] == "/_stats":
            with self.state.lock:
                payload = self.state.stats()
            self.send_json(200, payload)
        else:
            self.send_json(404, {"error": "not_found"})

    def do_POST(self):
        body = self.read_body()
        path = self.path.split("?")[0]
        if path in ("/_control", "/_reset"):
            try:
                control = json.loads(body or b"{}")
                if not isinstance(control, dict):
                    raise ValueError("body must be a JSON object")
                with self.state.lock:
                    if path == "/_reset":
                        self.state.reset_stats()
                    self.state.apply_control(control)
                    settings = self.state.settings.public()
            except (ValueError, TypeError) as e:
                self.send_json(400, {"error": str(e)})
                return
            self.send_json(200, settings)
        elif path == "/_stats":
            self.send_json(405, {"error": "use GET"})
        else:
            self.deliver(path, body)

    def deliver(self, path, body):
        arrived_mono, arrived_wall = time.monotonic(), time.time()
        headers = {k.lower(): v for k, v in self.headers.items()}
        with self.state.lock:
            secrets = list(self.state.settings.secrets)
        # Verification is CPU-only and independent per request: done outside the lock.
        std_ok = verify_each(StandardWebhook, secrets, body, headers)
        svix_ok = verify_each(SvixWebhook, secrets, body, headers)
        verified = bool(std_ok or svix_ok)
        try:
            event_type = json.loads(body).get("type")
        except Exception:
            event_type = None
        msg_id = headers.get("webhook-id")

        with self.state.lock:
            st = self.state
            mode, status, retry_after, hang_seconds = st.take_mode()
            if mode == "ok":
                status = 200 if verified else 400
            elif mode in ("429", "503", "410"):
                status = int(mode)
            elif mode == "hang":
                status = 200
            st.received += 1
            st.verified_standardwebhooks += bool(std_ok)
            st.verified_svix += bool(svix_ok)
            st.unverified += not verified
            if msg_id is not None:
                st.ids[msg_id] = st.ids.get(msg_id, 0) + 1
                if msg_id in st.succeeded_ids:
                    st.duplicates += 1
                if mode != "hang" and verified and 200 <= status < 300:
                    st.succeeded_ids.add(msg_id)
            st.types[event_type if isinstance(event_type, str) else "(none)"] += 1
            st.answered[status] += 1
            st.records.append({
                "webhook_id": msg_id,
                "webhook_timestamp": headers.get("webhook-timestamp"),
                "signatures": len(headers.get("webhook-signature", "").split()),
                "path": path,
                "type": event_type,
                "verified_standardwebhooks": bool(std_ok),
                "verified_svix": bool(svix_ok),
                "standardwebhooks_secrets": std_ok,  # indexes into the configured secret list
                "svix_secrets": svix_ok,
                "mode": mode,
                "status": status,
                "arrived_monotonic": arrived_mono,
                "arrived_wall": arrived_wall,
                "body": body.decode("utf-8", "replace") if isinstance(body, bytes) else body,
            })

        extra = []
        if mode in ("429", "503") and retry_after is not None:
            extra.append(("Retry-After", str(retry_after)))
        if mode == "hang":
            time.sleep(hang_seconds)
            if self.peer_closed():
                return  # the sender gave up waiting: it never saw a 2xx
        try:
            if status == 200:
                self.send_json(200, {"ok": True})
            else:
                self.send_json(status, {"ok": False, "verified": verified}, extra)
        except OSError:
            return
        if mode == "hang" and verified and msg_id is not None:
            with self.state.lock:
                self.state.succeeded_ids.add(msg_id)

    def peer_closed(self):
        """True when the sender has closed its side of the connection (e.g. after a timeout)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True


class Server(ThreadingHTTPServer):
    daemon_threads = True  # a hanging delivery never keeps the process alive
    request_queue_size = 128


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--secret", action="append", default=[], help="whsec_... (repeatable)")
    args = parser.parse_args(argv)
    for secret in args.secret:
        try:
            StandardWebhook(secret)
        except Exception:
            parser.error("a --secret is not a valid whsec_/base64 secret")  # never echo it

    server = Server((args.host, args.port), Handler)
    server.state = State(args.secret)
    print(f"LISTENING {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    sys.exit(main())
