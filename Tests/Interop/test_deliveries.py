"""Outbound deliveries of the live binary, verified by two outside libraries: the receiver peer
checks every delivery with the `standardwebhooks` reference library and with `svix`. The server
runs with short retry waits (MERCATO_WEBHOOK_RETRIES) and private addresses allowed, on a data
dir of its own so that it can be restarted in the middle."""
import os
import secrets
import subprocess
import sys
import tempfile
import time

import pytest
import requests

from conftest import Server, free_port, stop, wait_healthy

PEERS = os.path.join(os.path.dirname(__file__), "peers")


class Mercato:
    """The binary on one data dir (and database), started and stopped at will."""

    def __init__(self):
        self.data = tempfile.mkdtemp(prefix="mercato-deliveries-")
        self.port = free_port()
        self.operator = "op-" + secrets.token_urlsafe(32)
        self.env = dict(os.environ, MERCATO_DATA_DIR=self.data, MERCATO_PORT=str(self.port), MERCATO_OPERATOR_TOKEN=self.operator,
                        MERCATO_CATALOG_DIR="none", MERCATO_LOG_LEVEL="warning", MERCATO_ALLOW_PRIVATE_WEBHOOKS="1",
                        MERCATO_WEBHOOK_RETRIES="1,1,1,1,1,1,1", MERCATO_WEBHOOK_CIRCUIT_COOLDOWN_SECONDS="1")
        if os.environ.get("MERCATO_INTEROP_DATABASE_URL"):
            self.env["DATABASE_URL"] = os.environ["MERCATO_INTEROP_DATABASE_URL"] + "_deliveries"
        self.proc = None
        self.api = Server(f"http://127.0.0.1:{self.port}", self.operator)

    def start(self):
        self.proc = subprocess.Popen([os.environ["MERCATO_BIN"], "serve"], env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_healthy(self.api.base, self.proc)

    def stop(self):
        stop(self.proc)


@pytest.fixture()
def receiver():
    proc = subprocess.Popen([sys.executable, os.path.join(PEERS, "webhook_receiver.py"), "--port", "0"], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("LISTENING "), line
    yield f"http://127.0.0.1:{line.split()[1]}"
    proc.terminate()
    proc.wait(timeout=10)


def control(base, **body):
    r = requests.post(base + "/_control", json=body, timeout=5)
    assert r.ok, r.text


def stats(base):
    return requests.get(base + "/_stats", timeout=5).json()


def wait_for(condition, what, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting for " + what)


def test_every_delivery_verifies_survives_outage_restart_and_rotation(receiver):
    if os.environ.get("MERCATO_INTEROP_DATABASE_URL"):
        url = os.environ["MERCATO_INTEROP_DATABASE_URL"]
        admin, name = url.rsplit("/", 1)
        subprocess.run(["psql", admin + "/postgres", "-qc", f"CREATE DATABASE {name}_deliveries"], check=True)
    server = Mercato()
    server.start()
    try:
        check_deliveries(server, receiver)
    finally:
        if server.proc.poll() is None:
            server.proc.kill()


def check_deliveries(server, receiver):
    api = server.api
    _, vendor = api.org("Hook Vendor")
    manifest = {
        "key": "hooked", "name": "Hooked", "version": "1.0.0", "description": "Receives events.", "developer": {"name": "Interop"},
        "scopes": ["install:read"], "command_signing": {"type": "hmac"},
        "events": ["app.installed", "install.config_updated"], "webhook_url": receiver + "/hooks",
        "config": [{"key": "channel", "label": "Channel", "type": "string"}],
    }
    registered = api.call("POST", "/api/v1/developer/apps", vendor, manifest)
    assert registered.status_code == 201, registered.text
    old_secret = registered.json()["secrets"]["webhook"]
    control(receiver, secrets=[old_secret])
    assert api.call("POST", "/api/v1/developer/apps/hooked/publish", vendor).status_code == 200
    _, owner = api.org("Hook Customer", plan="pro")
    install = api.call("POST", "/api/v1/installs", owner, {"app": "hooked"}).json()["id"]

    def patch(n):
        assert api.call("PATCH", f"/api/v1/installs/{install}/config", owner, {"channel": f"#{n}"}).status_code == 200

    wait_for(lambda: stats(receiver)["types"].get("app.installed") == 1, "app.installed")

    # An outage: the next 3 answers fail; retries deliver everything.
    control(receiver, mode="fail", times=3)
    for n in range(3):
        patch(n)
    wait_for(lambda: len([i for i, a in stats(receiver)["ids"].items()]) == 4 and stats(receiver)["received"] >= 7, "retries after the outage")

    # A restart in the middle: the endpoint is down while the server stops; nothing is lost.
    control(receiver, mode="503", retry_after=1)
    patch(10)
    patch(11)
    wait_for(lambda: stats(receiver)["answered"].get("503", 0) >= 2, "the failing attempts")
    server.stop()
    control(receiver, mode="ok")
    server.start()
    wait_for(lambda: stats(receiver)["unique_ids"] == 6 and stats(receiver)["types"].get("install.config_updated", 0) >= 5, "delivery after the restart")

    # A rotation: both secrets sign, so the receiver verifies with the new one alone, then the old one alone.
    rotated = api.call("POST", "/api/v1/developer/apps/hooked/secrets/rotate", vendor, {"kind": "webhook"})
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["secret"]
    control(receiver, secrets=[new_secret])
    patch(20)
    wait_for(lambda: stats(receiver)["unique_ids"] == 7, "delivery checked with the new secret")
    control(receiver, secrets=[old_secret])
    patch(21)
    wait_for(lambda: stats(receiver)["unique_ids"] == 8, "delivery checked with the old secret")

    s = stats(receiver)
    assert s["unverified"] == 0, s
    assert s["verified_standardwebhooks"] == s["received"] and s["verified_svix"] == s["received"], s
    assert s["unique_ids"] == 8
    # Every event arrived; repeats carry the same webhook-id (none delivered twice after a 2xx here).
    assert s["duplicates"] == 0, s
    assert all(n >= 1 for n in s["ids"].values())
    # The developer's log agrees (the last answer may still be being recorded).
    def log():
        return api.call("GET", "/api/v1/developer/apps/hooked/deliveries?limit=200", vendor).json()["data"]
    wait_for(lambda: len(log()) == 8 and all(d["status"] == "delivered" for d in log()), "the log to show 8 delivered", timeout=10)
    server.stop()
