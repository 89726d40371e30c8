"""OAuth connections of the live binary against the Authlib authorization server peer
(CONTRACT.md section 6): the browser's part is played by a `requests.Session` (it keeps the
cookie the start redirect sets), commands are signed with the Standard Webhooks reference
library, and the app's events reach the webhook receiver peer.

On PostgreSQL the concurrency check runs two server processes on one database (two nodes behind
one public URL): 20 concurrent `connections.token` commands split between them make exactly one
refresh at the provider. At the end every token the provider issued, and the client secret, is
searched for in both servers' logs (at debug level), the API answers and the delivered events.
"""
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from standardwebhooks.webhooks import Webhook

from conftest import Server, free_port

PEERS = os.path.join(os.path.dirname(__file__), "peers")
PG = os.environ.get("MERCATO_INTEROP_DATABASE_URL")


def start_peer(script, *args):
    proc = subprocess.Popen([sys.executable, os.path.join(PEERS, script), "--port", "0", *args], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("LISTENING "), line
    return proc, f"http://127.0.0.1:{line.split()[1]}"


class Node:
    """One `mercato serve` process; its log (stdout and stderr) goes to a file."""

    def __init__(self, public_url, port, env):
        self.port = port
        self.log = tempfile.NamedTemporaryFile(prefix="mercato-oauth-", suffix=".log", delete=False)
        env = dict(env, MERCATO_PORT=str(port), MERCATO_PUBLIC_URL=public_url)
        self.proc = subprocess.Popen([os.environ["MERCATO_BIN"], "serve"], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if requests.get(self.base + "/readyz", timeout=1).ok:
                    return
            except requests.ConnectionError:
                time.sleep(0.05)
        self.proc.kill()
        raise RuntimeError("mercato did not start: " + open(self.log.name).read()[-2000:])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            assert self.proc.wait(timeout=30) == 0, "SIGTERM must drain and exit 0"

    def text(self):
        with open(self.log.name, encoding="utf-8", errors="replace") as f:
            return f.read()


@pytest.fixture()
def world():
    port_a, port_b = free_port(), free_port()
    public = f"http://127.0.0.1:{port_a}"
    client_secret = "peer-" + secrets.token_urlsafe(24)
    oauth, oauth_base = start_peer("oauth_server.py", "--client-id", "mercato-interop", "--client-secret", client_secret,
                                   "--redirect-uri", public + "/api/v1/oauth/callback")
    receiver, receiver_base = start_peer("webhook_receiver.py")
    operator = "op-" + secrets.token_urlsafe(32)
    env = dict(os.environ, MERCATO_DATA_DIR=tempfile.mkdtemp(prefix="mercato-oauth-"), MERCATO_OPERATOR_TOKEN=operator,
               MERCATO_CATALOG_DIR="none", MERCATO_LOG_LEVEL="debug", MERCATO_ALLOW_PRIVATE_WEBHOOKS="1",
               MERCATO_OAUTH_REFRESH_SCAN_SECONDS="3600")
    if PG:
        admin, name = PG.rsplit("/", 1)
        subprocess.run(["psql", admin + "/postgres", "-qc", f"CREATE DATABASE {name}_oauth"], check=True)
        env["DATABASE_URL"] = PG + "_oauth"
    nodes = [Node(public, port_a, env)]
    if PG:
        nodes.append(Node(public, port_b, env))
    try:
        yield {"nodes": nodes, "api": Server(nodes[0].base, operator), "oauth": oauth_base, "receiver": receiver_base,
               "client_secret": client_secret}
    finally:
        for node in nodes:
            node.stop()
        for proc in (oauth, receiver):
            proc.kill()
            proc.wait(timeout=10)


def signed(secret, body, msg_id=None):
    msg_id = msg_id or "msg_" + uuid.uuid4().hex
    when = datetime.now(tz=timezone.utc)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(when.timestamp())), "webhook-signature": Webhook(secret).sign(msg_id, when, body),
            "Content-Type": "application/json"}


def test_connect_refresh_once_across_nodes_disconnect_and_no_token_leaks(world):
    api, oauth, receiver = world["api"], world["oauth"], world["receiver"]
    answers = []

    def keep(response):
        answers.append(response.text)
        return response

    # The operator sets the provider; the secret never comes back.
    provider = {"name": "Authlib peer", "authorize_url": oauth + "/authorize", "token_url": oauth + "/token", "revoke_url": oauth + "/revoke",
                "userinfo_url": oauth + "/userinfo", "scopes": ["profile"], "token_auth_method": "client_secret_post",
                "account_id_field": "sub", "account_name_field": "name", "client_id": "mercato-interop", "client_secret": world["client_secret"]}
    put = keep(api.call("PUT", "/api/v1/providers/authlib", api.operator, provider))
    assert put.status_code == 201, put.text

    _, vendor = api.org("OAuth Vendor")
    manifest = {"key": "connected-app", "name": "Connected", "version": "1.0.0", "description": "Uses the org's account.",
                "developer": {"name": "Interop"}, "scopes": ["connections:token"], "command_signing": {"type": "hmac"},
                "events": ["connection.connected", "connection.disconnected"], "webhook_url": receiver + "/hooks",
                "oauth": {"provider": "authlib", "scopes": ["profile", "email"]}}
    registered = api.call("POST", "/api/v1/developer/apps", vendor, manifest)
    assert registered.status_code == 201, registered.text
    command_secret = registered.json()["secrets"]["command"]
    requests.post(receiver + "/_control", json={"secrets": [registered.json()["secrets"]["webhook"]]}, timeout=5).raise_for_status()
    assert api.call("POST", "/api/v1/developer/apps/connected-app/publish", vendor).status_code == 200
    _, admin = api.org("OAuth Customer", plan="pro")
    installed = keep(api.call("POST", "/api/v1/installs", admin, {"app": "connected-app"}))
    assert installed.json()["status"] == "pending_oauth"
    install = installed.json()["id"]

    # The browser: start (bearer), the provider approves, the callback (with the cookie).
    # Access tokens live 4 s for this connection, so that it is soon due for a refresh.
    requests.post(oauth + "/_control", json={"access_token_ttl": 4}, timeout=5).raise_for_status()
    browser = requests.Session()
    start = browser.get(api.base + f"/api/v1/installs/{install}/oauth/start", headers={"Authorization": f"Bearer {admin}"}, allow_redirects=False)
    assert start.status_code == 302, start.text
    query = parse_qs(urlparse(start.headers["Location"]).query)
    assert query["code_challenge_method"] == ["S256"] and query["redirect_uri"] == [api.base + "/api/v1/oauth/callback"]
    assert query["scope"] == ["profile email"]
    approved = browser.get(start.headers["Location"], allow_redirects=False)
    assert approved.status_code == 302
    done = browser.get(approved.headers["Location"], allow_redirects=False)
    assert done.status_code == 302
    landing = urlparse(done.headers["Location"])
    assert parse_qs(landing.query) == {"result": ["connected"], "install_id": [install]}
    page = browser.get(done.headers["Location"])
    assert page.status_code == 200 and "Account connected" in page.text
    # The same callback again is a replay, and stores nothing new.
    again = browser.get(approved.headers["Location"], allow_redirects=False)
    assert parse_qs(urlparse(again.headers["Location"]).query)["error"] == ["state_replayed"]
    requests.post(oauth + "/_control", json={"access_token_ttl": 3600, "refresh_delay_seconds": 0.3}, timeout=5).raise_for_status()

    connection = keep(api.call("GET", f"/api/v1/installs/{install}/connection", admin)).json()
    assert connection["status"] == "connected" and connection["account"] == {"id": "u_1", "name": "Ada Example"}
    assert keep(api.call("GET", f"/api/v1/installs/{install}", admin)).json()["status"] == "active"

    # Past half the 4 s lifetime the token is due: 20 concurrent requests, over every node.
    time.sleep(2.3)
    before = requests.get(oauth + "/_stats", timeout=5).json()
    results, errors = [], []

    def ask(node):
        body = json.dumps({"install_id": install, "command": "connections.token", "args": {}})
        try:
            r = requests.post(node.base + "/api/v1/apps/commands", data=body, headers=signed(command_secret, body), timeout=60)
            results.append((r.status_code, r.json()))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=ask, args=(world["nodes"][i % len(world["nodes"])],)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert all(status == 200 for status, _ in results), results
    tokens = {body["result"]["access_token"] for _, body in results}
    assert len(tokens) == 1, "every request got the one refreshed token"
    after = requests.get(oauth + "/_stats", timeout=5).json()
    assert after["refresh_calls"] - before["refresh_calls"] == 1, after
    assert after["refresh_reuse_rejected"] == 0 and after["refresh_ok"] - before["refresh_ok"] == 1
    token = tokens.pop()
    assert requests.get(oauth + "/userinfo", headers={"Authorization": f"Bearer {token}"}, timeout=5).status_code == 200

    # Disconnect: revoked at the provider, gone here.
    gone = keep(api.call("DELETE", f"/api/v1/installs/{install}/connection", admin))
    assert gone.status_code == 200 and gone.json()["revoked_at_provider"] is True, gone.text
    assert requests.get(oauth + "/userinfo", headers={"Authorization": f"Bearer {token}"}, timeout=5).status_code == 401
    body = json.dumps({"install_id": install, "command": "connections.token", "args": {}})
    refused = keep(requests.post(api.base + "/api/v1/apps/commands", data=body, headers=signed(command_secret, body), timeout=30))
    assert refused.status_code == 409 and refused.json()["code"] == "not_connected"

    # The app heard about it, through signed deliveries.
    deadline = time.time() + 30
    while time.time() < deadline:
        delivered = requests.get(receiver + "/_stats", timeout=5).json()["deliveries"]
        types = {d["type"] for d in delivered if d["verified_standardwebhooks"] and d["status"] == 200}
        if {"connection.connected", "connection.disconnected"} <= types:
            break
        time.sleep(0.3)
    else:
        raise AssertionError(f"connection events not delivered: {delivered}")
    events = [d["body"] for d in delivered]
    assert any('"account_id":"u_1"' in e for e in events)

    for path in (f"/api/v1/installs/{install}/connection", f"/api/v1/installs/{install}", "/api/v1/audit", "/api/v1/providers",
                 f"/api/v1/installs/{install}/commands"):
        keep(api.call("GET", path, admin))

    # Nothing secret anywhere: every token the provider issued, and the client secret.
    issued = requests.get(oauth + "/_issued", timeout=5).json()
    secrets_issued = issued["access_tokens"] + issued["refresh_tokens"] + [world["client_secret"]]
    assert len(issued["refresh_tokens"]) >= 2
    logs = [node.text() for node in world["nodes"]]
    assert any('"oauth token refreshed"' in log or "oauth token refreshed" in log for log in logs)
    for text_name, texts in (("server log", logs), ("API answer", answers), ("event", events)):
        for value in secrets_issued:
            assert not any(value in t for t in texts), f"a secret appears in a {text_name}"
