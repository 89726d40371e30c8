"""The developer CLI (`mercato app ...`, CONTRACT §13) against outside code: what `sign` writes is
checked by the Standard Webhooks reference library (v1) and PyNaCl (v1a); `verify` judges
requests signed by the reference library; `send --send`/`send` talk to the live server and to
a scripted local server that refuses twice before it answers."""
import base64
import json
import os
import subprocess
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import nacl.signing
import pytest
from standardwebhooks.webhooks import Webhook

BIN = os.environ["MERCATO_BIN"]
SECRET = "whsec_" + base64.b64encode(b"interop-cli-secret-0123456789abc").decode()
OTHER = "whsec_" + base64.b64encode(b"another-secret-0123456789abcdefg").decode()


def cli(*args, stdin=None, env=None, cwd=None):
    return subprocess.run([BIN, "app", *args], input=stdin, capture_output=True, env=dict(os.environ, **(env or {})), cwd=cwd, timeout=60)


def parse_signed(output):
    lines = output.decode().rstrip("\n").split("\n")
    headers = dict(line.split(": ", 1) for line in lines[:3])
    return headers, lines[3]


@pytest.fixture(scope="module")
def app(server):
    org, owner = server.org("CLI Vendor", plan="pro")
    manifest = {"key": "cli-app", "name": "CLI App", "version": "1.0.0", "description": "CLI test app.", "developer": {"name": "CLI"},
                "scopes": ["install:read", "kv:write"], "command_signing": {"type": "hmac"}}
    registered = server.call("POST", "/api/v1/developer/apps", owner, manifest)
    assert registered.status_code == 201, registered.text
    install = server.call("POST", "/api/v1/installs", owner, {"app": "cli-app"})
    assert install.status_code == 201, install.text
    return {"secret": registered.json()["secrets"]["command"], "install": install.json()["id"], "token": owner}


def test_validate_names_every_problem(tmp_path):
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"key": "good-app", "name": "Good", "version": "1.0.0", "description": "d", "developer": {"name": "D"},
                                "command_signing": {"type": "hmac"}}))
    ok = cli("validate", str(good))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("key: Bad Key\nname: x\nversion: one\nscopes: [nope:write]\nextra: 1\n")
    refused = cli("validate", str(bad))
    assert refused.returncode == 1
    lines = refused.stdout.decode().splitlines()
    for field in ("key", "version", "description", "developer", "scopes[0]", "extra"):
        assert any(line.startswith(field + ": ") for line in lines), (field, lines)
    broken = tmp_path / "broken.yaml"
    broken.write_text("key: [unclosed\n")
    assert cli("validate", str(broken)).returncode == 1
    missing = cli("validate", str(tmp_path / "none.yaml"))
    assert missing.returncode != 0 and b"none.yaml" in missing.stderr


def test_init_writes_a_valid_manifest_and_refuses_a_used_folder(tmp_path):
    made = cli("init", str(tmp_path / "my-app"))
    assert made.returncode == 0, made.stderr
    assert sorted(os.listdir(tmp_path / "my-app")) == ["README.md", "manifest.yaml", "receiver.py"]
    assert cli("validate", str(tmp_path / "my-app" / "manifest.yaml")).returncode == 0
    again = cli("init", str(tmp_path / "my-app"))
    assert again.returncode != 0 and b"not empty" in again.stderr
    assert cli("init", str(tmp_path / "Bad_Name")).returncode != 0


def test_sign_v1_verifies_with_the_reference_library():
    signed = cli("sign", "--secret", SECRET, "--install", "ins_x", "--command", "kv.set", "--args", '{"key": "a", "value": [1, "b"]}',
                 "--id", "cli-test-1")
    assert signed.returncode == 0, signed.stderr
    headers, body = parse_signed(signed.stdout)
    assert headers["webhook-id"] == "cli-test-1"
    assert json.loads(body) == {
        "install_id": "ins_x", "command": "kv.set", "args": {"key": "a", "value": [1, "b"]}}
    assert Webhook(SECRET).verify(body, headers)["command"] == "kv.set"
    with pytest.raises(Exception):
        Webhook(OTHER).verify(body, headers)


def test_sign_v1a_verifies_with_pynacl(tmp_path):
    key = nacl.signing.SigningKey.generate()
    key_file = tmp_path / "app.ed25519"
    key_file.write_text(base64.b64encode(bytes(key)).decode() + "\n")
    signed = cli("sign", "--key-file", str(key_file), "--install", "ins_x", "--command", "ping")
    assert signed.returncode == 0, signed.stderr
    headers, body = parse_signed(signed.stdout)
    version, signature = headers["webhook-signature"].split(",", 1)
    assert version == "v1a"
    content = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.{body}".encode()
    key.verify_key.verify(content, base64.b64decode(signature))
    bad = tmp_path / "bad.key"
    bad.write_text("c2hvcnQ=")
    refused = cli("sign", "--key-file", str(bad), "--install", "ins_x", "--command", "ping")
    assert refused.returncode != 0 and b"32-byte" in refused.stderr


def test_sign_refuses_bad_input():
    for args in (["--install", "i", "--command", "c"], ["--secret", SECRET, "--key-file", "f", "--install", "i", "--command", "c"],
                 ["--secret", "nope", "--install", "i", "--command", "c"], ["--secret", SECRET, "--install", "i", "--command", "c", "--args", "[1]"],
                 ["--secret", SECRET, "--install", "i", "--command", "c", "--id", "bad id"]):
        answer = cli("sign", *args)
        assert answer.returncode != 0 and answer.stderr, args


def test_sign_and_send_against_the_server(server, app):
    ok = cli("sign", "--secret", app["secret"], "--install", app["install"], "--command", "ping", "--send", server.base)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert b'"pong":true' in ok.stdout
    wrong = cli("sign", "--secret", OTHER, "--install", app["install"], "--command", "ping", "--send", server.base)
    assert wrong.returncode == 1 and b"invalid_signature" in wrong.stderr
    args = '{"key": "k", "value": 1}'
    first = cli("send", "--url", server.base, "--secret", app["secret"], "--install", app["install"], "--command", "kv.set", "--args", args, "--id", "cli-once")
    again = cli("send", "--url", server.base, "--secret", app["secret"], "--install", app["install"], "--command", "kv.set", "--args", args, "--id", "cli-once")
    assert first.returncode == 0 and again.returncode == 0, again.stderr
    assert b"(replayed)" in again.stdout and first.stdout.splitlines()[1] == again.stdout.splitlines()[1]


def test_send_retries_with_the_same_id_and_body():
    seen = []

    class Flaky(BaseHTTPRequestHandler):
        def do_POST(self):
            seen.append((self.headers["webhook-id"], self.rfile.read(int(self.headers["Content-Length"])), self.headers["webhook-signature"]))
            if len(seen) < 3:
                self.send_response(503)
                self.send_header("Retry-After", "0")
                self.send_header("Content-Type", "application/problem+json")
                self.end_headers()
                self.wfile.write(b'{"code":"storage_unavailable","detail":"try again"}')
            else:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"status":"succeeded"}')

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        sent = cli("send", "--url", f"http://127.0.0.1:{httpd.server_port}", "--secret", SECRET, "--install", "ins_x", "--command", "ping")
    finally:
        httpd.shutdown()
    assert sent.returncode == 0, sent.stderr
    assert len(seen) == 3 and len({s[0] for s in seen}) == 1 and len({s[1] for s in seen}) == 1
    assert sent.stderr.count(b"retrying webhook-id") == 2


def request_text(headers, body):
    return ("POST /webhooks HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode() + body


def test_verify_judges_reference_signatures():
    body = b'{"type":"app.installed","data":{"install_id":"ins_1"}}'
    now = datetime.now(tz=timezone.utc)
    headers = {"webhook-id": "msg_cli", "webhook-timestamp": str(int(now.timestamp())),
               "webhook-signature": Webhook(SECRET).sign("msg_cli", now, body.decode())}
    good = cli("verify", "--secret", OTHER, "--secret", SECRET, stdin=request_text(headers, body))
    assert good.returncode == 0 and b"verified" in good.stdout, good.stdout
    tampered = cli("verify", "--secret", SECRET, stdin=request_text(headers, body.replace(b"ins_1", b"ins_2")))
    assert tampered.returncode == 1 and b"invalid_signature" in tampered.stdout
    old = datetime.fromtimestamp(time.time() - 3600, tz=timezone.utc)
    stale = dict(headers, **{"webhook-timestamp": str(int(old.timestamp())), "webhook-signature": Webhook(SECRET).sign("msg_cli", old, body.decode())})
    assert b"timestamp_out_of_window" in cli("verify", "--secret", SECRET, stdin=request_text(stale, body)).stdout
    missing = {k: v for k, v in headers.items() if k != "webhook-signature"}
    answer = cli("verify", "--secret", SECRET, stdin=request_text(missing, body))
    assert answer.returncode == 1 and b"missing_header" in answer.stdout


def test_tail_shows_commands(server, app):
    assert cli("sign", "--secret", app["secret"], "--install", app["install"], "--command", "install.info", "--send", server.base).returncode == 0
    tail = cli("tail", "--app", "cli-app", "--url", server.base, "--once", env={"MERCATO_TOKEN": app["token"]})
    assert tail.returncode == 0, tail.stderr
    lines = tail.stdout.decode().splitlines()
    assert lines[0].split()[:4] == ["TIME", "KIND", "STATUS", "WHAT"]
    assert any("command" in line and "succeeded" in line and "install.info" in line for line in lines), lines
    refused = cli("tail", "--app", "cli-app", "--url", server.base, "--once", env={"MERCATO_TOKEN": "mct_nope"})
    assert refused.returncode != 0 and b"unauthenticated" in refused.stderr


def test_every_command_has_help_with_an_example_and_completions_exist():
    for command in ("validate", "sign", "send", "verify", "init", "tail"):
        text = cli(command, "--help").stdout
        assert b"Example" in text, command
    completion = subprocess.run([BIN, "--generate-completion-script", "bash"], capture_output=True, timeout=30)
    assert completion.returncode == 0 and b"app" in completion.stdout
