"""MercatoClient against a real local HTTP server (http.server in a thread) that answers from
a script and records every request as it arrived."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mercato_sdk import MercatoClient, MercatoConnectionError, MercatoError, verify_webhook

SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
INSTALL = "ins_01jdclienttest000000000000"
PROBLEM = "application/problem+json"


def ok(result=None, **headers):
    body = {"id": "cmd_01jd", "command": "ping", "status": "succeeded", "result": result or {"pong": True}}
    return 200, {"Content-Type": "application/json", "X-Request-Id": "req-ok", **headers}, body


def problem(status, code, detail="", **headers):
    return status, {"Content-Type": PROBLEM, **headers}, {
        "type": "about:blank", "title": code.replace("_", " ").capitalize(), "status": status, "detail": detail,
        "code": code, "request_id": f"req-{status}"}


DROP = "drop"  # close the connection without an answer


class ScriptedServer:
    def __init__(self, script):
        self.script = list(script)
        self.requests = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                owner.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                step = owner.script.pop(0) if owner.script else ok()
                if step == DROP:
                    self.close_connection = True
                    return
                status, headers, document = step
                raw = json.dumps(document).encode() if not isinstance(document, bytes) else document
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def serve():
    servers = []

    def start(*script):
        servers.append(ScriptedServer(script))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


class Sleeps(list):
    def __call__(self, seconds):
        self.append(seconds)


def client_for(server, **kwargs):
    sleeps = Sleeps()
    return MercatoClient(server.url, INSTALL, secret=SECRET, sleep=sleeps, **kwargs), sleeps


def assert_same_command(requests_seen):
    ids = {r["headers"]["webhook-id"] for r in requests_seen}
    bodies = {r["body"] for r in requests_seen}
    assert len(ids) == 1 and len(bodies) == 1, (ids, bodies)
    for r in requests_seen:
        verify_webhook(r["headers"], r["body"], secrets=[SECRET])  # every attempt is signed anew


def test_ping_builds_signs_and_parses(serve):
    server = serve(ok(**{"RateLimit-Limit": "20", "RateLimit-Remaining": "19", "RateLimit-Reset": "1"}))
    client, sleeps = client_for(server)
    result = client.command("ping", {})
    assert result.status == 200 and result.result == {"pong": True} and not result.replayed
    assert tuple(result.rate_limit) == (20, 19, 1)
    assert result.request_id == "req-ok" and result.attempts == 1 and sleeps == []
    seen = server.requests[0]
    assert seen["path"] == "/api/v1/apps/commands"
    assert json.loads(seen["body"]) == {"install_id": INSTALL, "command": "ping", "args": {}}
    assert seen["headers"]["Content-Type"] == "application/json"
    assert verify_webhook(seen["headers"], seen["body"], secrets=[SECRET]).id == result.webhook_id


def test_503_then_200_reuses_the_webhook_id_and_body(serve):
    server = serve(problem(503, "unavailable", "Storage is unavailable; retry with the same webhook-id."), ok())
    client, sleeps = client_for(server)
    result = client.command("kv.set", {"key": "k", "value": "Grüße 🚀"})
    assert result.status == 200 and result.attempts == 2
    assert len(server.requests) == 2 and len(sleeps) == 1
    assert_same_command(server.requests)
    assert server.requests[0]["headers"]["webhook-id"] == result.webhook_id
    assert "Grüße 🚀" in server.requests[0]["body"].decode("utf-8")


def test_a_given_webhook_id_is_used(serve):
    server = serve(problem(502, "bad_gateway"), ok(**{"Idempotent-Replayed": "true"}))
    client, _ = client_for(server)
    result = client.command("ping", webhook_id="order-1234.retry")
    assert result.replayed and result.webhook_id == "order-1234.retry"
    assert_same_command(server.requests)
    assert server.requests[0]["headers"]["webhook-id"] == "order-1234.retry"


def test_retry_after_is_honoured(serve):
    server = serve(problem(503, "unavailable", **{"Retry-After": "2"}), problem(429, "rate_limited", **{"Retry-After": "1"}), ok())
    client, sleeps = client_for(server)
    assert client.command("ping").attempts == 3
    assert sleeps == [2.0, 1.0]
    assert_same_command(server.requests)


def test_a_retry_after_beyond_the_limit_is_not_waited_for(serve):
    server = serve(problem(429, "rate_limited", **{"Retry-After": "3600"}))
    client, sleeps = client_for(server, max_retry_after=60)
    with pytest.raises(MercatoError) as raised:
        client.command("ping")
    assert raised.value.code == "rate_limited" and raised.value.retry_after == 3600 and sleeps == []


def test_network_error_then_200(serve):
    server = serve(DROP, ok())
    client, sleeps = client_for(server)
    assert client.command("ping").attempts == 2 and len(sleeps) == 1
    assert_same_command(server.requests)


def test_in_progress_is_retried(serve):
    server = serve(problem(409, "idempotency_in_progress"), ok(**{"Idempotent-Replayed": "true"}))
    client, _ = client_for(server)
    assert client.command("ping").replayed
    assert_same_command(server.requests)


def test_retries_are_bounded_and_back_off(serve):
    server = serve(*[problem(503, "unavailable")] * 10)
    client, sleeps = client_for(server, max_retries=3, backoff=0.5, max_backoff=1.5)
    with pytest.raises(MercatoError) as raised:
        client.command("ping")
    error = raised.value
    assert (error.status, error.code, error.request_id) == (503, "unavailable", "req-503")
    assert len(server.requests) == 4 and len(sleeps) == 3
    assert 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0 and 0.75 <= sleeps[2] <= 1.5
    assert_same_command(server.requests)


def test_no_answer_at_all(serve):
    server = serve(DROP, DROP, DROP)
    client, sleeps = client_for(server, max_retries=2)
    with pytest.raises(MercatoConnectionError) as raised:
        client.command("ping", webhook_id="msg_lost")
    assert raised.value.code == "connection_failed" and raised.value.webhook_id == "msg_lost"
    assert len(server.requests) == 3
    assert_same_command(server.requests)


@pytest.mark.parametrize("status,code", [(400, "malformed_json"), (401, "invalid_signature"), (403, "scope_missing"),
                                         (404, "unknown_command"), (409, "idempotency_conflict"), (422, "invalid_args")])
def test_client_errors_are_not_retried(serve, status, code):
    server = serve(problem(status, code, "details here"))
    client, sleeps = client_for(server)
    with pytest.raises(MercatoError) as raised:
        client.command("ping")
    error = raised.value
    assert (error.status, error.code, error.detail, error.request_id) == (status, code, "details here", f"req-{status}")
    assert error.problem["code"] == code and len(server.requests) == 1 and sleeps == []
    assert code in str(error) and SECRET[6:] not in str(error) and SECRET[6:] not in repr(error)


def test_a_replayed_server_error_is_final(serve):
    server = serve(problem(500, "handler_failed", **{"Idempotent-Replayed": "true"}))
    client, _ = client_for(server)
    with pytest.raises(MercatoError) as raised:
        client.command("ping")
    assert raised.value.replayed and len(server.requests) == 1


@pytest.mark.parametrize("status,code", [(500, "handler_failed"), (504, "handler_timeout")])
def test_a_handler_outcome_is_final(serve, status, code):
    server = serve(problem(status, code))
    client, sleeps = client_for(server)
    with pytest.raises(MercatoError) as raised:
        client.command("ping")
    assert raised.value.code == code and len(server.requests) == 1 and sleeps == []


def test_a_proxy_504_is_retried(serve):
    server = serve((504, {"Content-Type": "text/html"}, b"<html>gateway timeout</html>"), ok())
    client, _ = client_for(server)
    assert client.command("ping").attempts == 2
    assert_same_command(server.requests)


def test_an_answer_that_is_not_json(serve):
    server = serve((502, {"Content-Type": "text/html"}, b"<html>bad gateway</html>"), (404, {"Content-Type": "text/html"}, b"nope"))
    client, _ = client_for(server)
    with pytest.raises(MercatoError) as raised:
        client.command("ping")
    assert (raised.value.status, raised.value.code) == (404, "http_404")


def test_ed25519_client(serve):
    import base64

    import nacl.signing

    key = nacl.signing.SigningKey.generate()
    public = "whpk_" + base64.b64encode(bytes(key.verify_key)).decode()
    server = serve(ok())
    client = MercatoClient(server.url + "/", INSTALL, signing_key=bytes(key))
    client.command("ping")
    seen = server.requests[0]
    assert seen["headers"]["webhook-signature"].startswith("v1a,")
    verify_webhook(seen["headers"], seen["body"], public_keys=[public])


def test_repr_hides_the_secret():
    client = MercatoClient("http://127.0.0.1:1", INSTALL, secret=SECRET)
    assert SECRET[6:] not in repr(client) and SECRET[6:] not in repr(vars(client))
