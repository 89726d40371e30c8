"""The SDKs in sdk/ against the live binary: the Python SDK's MercatoClient sends commands
(HMAC and Ed25519), replays, meets Problem+JSON refusals; verify_webhook checks real event
deliveries; the JS SDK sends signed pings from a node subprocess."""
import base64
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "sdk", "python"))

from mercato_sdk import MercatoClient, MercatoError, WebhookVerificationError, verify_webhook  # noqa: E402

SEED = bytes(range(32))  # the Ed25519 app's key, fixed so the JS run can use it too


def public_key(seed):
    import nacl.signing

    return "whpk_" + base64.b64encode(bytes(nacl.signing.SigningKey(seed).verify_key)).decode()


def manifest(key, signing, scopes, **extra):
    return {"key": key, "name": key.title(), "version": "1.0.0", "description": "SDK interop app.",
            "developer": {"name": "SDK"}, "scopes": scopes, "command_signing": signing, **extra}


@pytest.fixture(scope="module")
def apps(server):
    _, vendor = server.org("SDK Vendor")
    hmac_app = server.call("POST", "/api/v1/developer/apps", vendor, manifest("sdk-hmac", {"type": "hmac"}, ["kv:write", "kv:read"]))
    assert hmac_app.status_code == 201, hmac_app.text
    ed_app = server.call("POST", "/api/v1/developer/apps", vendor,
                         manifest("sdk-ed25519", {"type": "ed25519", "public_key": public_key(SEED)}, ["install:read"]))
    assert ed_app.status_code == 201, ed_app.text
    _, owner = server.org("SDK Customer", plan="pro")
    installs = {}
    for key in ("sdk-hmac", "sdk-ed25519"):
        assert server.call("POST", f"/api/v1/developer/apps/{key}/publish", vendor).status_code == 200
        r = server.call("POST", "/api/v1/installs", owner, {"app": key})
        assert r.status_code == 201, r.text
        installs[key] = r.json()["id"]
    return {"secret": hmac_app.json()["secrets"]["command"], "installs": installs, "vendor": vendor, "owner": owner}


@pytest.fixture()
def client(server, apps):
    with MercatoClient(server.base, apps["installs"]["sdk-hmac"], secret=apps["secret"]) as c:
        yield c


def test_ping_and_kv_set(client):
    pong = client.command("ping")
    assert (pong.status, pong.result, pong.replayed, pong.attempts) == (200, {"pong": True}, False, 1)
    assert pong.json["id"].startswith("cmd_") and pong.json["status"] == "succeeded"
    assert pong.rate_limit.limit > 0 and pong.rate_limit.remaining >= 0 and pong.rate_limit.reset is not None
    assert pong.request_id
    value = {"text": "Grüße aus Zürich, 東京 🚀", "n": [1, 2.5, None, True]}
    stored = client.command("kv.set", {"key": "sdk/greeting", "value": value})
    assert stored.result["key"] == "sdk/greeting" and isinstance(stored.result["version"], int)
    # The exact UTF-8 bytes were signed and stored: they read back unchanged.
    assert client.command("kv.get", {"key": "sdk/greeting"}).result["value"] == value


def test_a_reused_webhook_id_replays(client):
    webhook_id = "sdk-replay-" + uuid.uuid4().hex
    first = client.command("kv.set", {"key": "sdk/replay", "value": 1}, webhook_id=webhook_id)
    again = client.command("kv.set", {"key": "sdk/replay", "value": 1}, webhook_id=webhook_id)
    assert not first.replayed and again.replayed
    assert again.json == first.json and again.webhook_id == webhook_id
    # The handler ran once: a third write with a new id is version + 1, not + 2.
    third = client.command("kv.set", {"key": "sdk/replay", "value": 2})
    assert third.result["version"] == first.result["version"] + 1
    with pytest.raises(MercatoError) as raised:
        client.command("kv.set", {"key": "sdk/replay", "value": 3}, webhook_id=webhook_id)
    assert (raised.value.status, raised.value.code) == (409, "idempotency_conflict")


@pytest.mark.parametrize("name,args,status,code,named", [
    ("no.such.command", {}, 404, "unknown_command", "no.such.command"),
    ("install.info", {}, 403, "scope_missing", "install:read"),
    ("kv.set", {"value": 1}, 422, "invalid_args", "key"),
    ("kv.get", {"key": "sdk/never-written"}, 404, "not_found", ""),
])
def test_refusals_are_problem_json(client, name, args, status, code, named):
    with pytest.raises(MercatoError) as raised:
        client.command(name, args)
    error = raised.value
    assert (error.status, error.code) == (status, code), str(error)
    assert named in error.detail and error.request_id and error.problem["status"] == status
    assert error.rate_limit.limit is not None  # authenticated: the answer carries RateLimit headers
    assert error.webhook_id and not error.replayed and error.problem.get("type") and error.title


def test_a_wrong_secret_is_401(server, apps):
    other = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    with MercatoClient(server.base, apps["installs"]["sdk-hmac"], secret=other) as c:
        with pytest.raises(MercatoError) as raised:
            c.command("ping")
    assert (raised.value.status, raised.value.code) == (401, "invalid_signature")
    assert other[6:] not in str(raised.value) and other[6:] not in repr(raised.value)


def test_ed25519_client(server, apps):
    with MercatoClient(server.base, apps["installs"]["sdk-ed25519"], signing_key=SEED) as c:
        info = c.command("install.info")
    assert info.result["install_id"] == apps["installs"]["sdk-ed25519"]


def test_both_secrets_work_during_a_rotation(server, apps):
    rotated = server.call("POST", "/api/v1/developer/apps/sdk-hmac/secrets/rotate", apps["vendor"], {"kind": "command"})
    assert rotated.status_code == 200, rotated.text
    for secret in (apps["secret"], rotated.json()["secret"]):
        with MercatoClient(server.base, apps["installs"]["sdk-hmac"], secret=secret) as c:
            assert c.command("ping").result == {"pong": True}


JS_PING = """
import { MercatoClient } from %s;
const env = process.env;
const results = [];
for (const [install, credentials] of [[env.HMAC_INSTALL, { secret: env.HMAC_SECRET }], [env.ED_INSTALL, { signingKey: env.ED_SEED }]]) {
  const client = new MercatoClient(env.MERCATO_URL, install, credentials);
  const webhookId = 'js-' + install;
  const first = await client.command('ping', {}, { webhookId });
  const again = await client.command('ping', {}, { webhookId });
  results.push({ result: first.result, status: first.status, replayed: [first.replayed, again.replayed], limit: first.rateLimit.limit });
}
try {
  await new MercatoClient(env.MERCATO_URL, env.HMAC_INSTALL, { secret: env.HMAC_SECRET }).command('no.such.command');
} catch (error) {
  results.push({ code: error.code, status: error.status, requestId: Boolean(error.requestId) });
}
console.log(JSON.stringify(results));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_js_sdk_against_the_server(server, apps):
    module = json.dumps("file://" + os.path.join(ROOT, "sdk", "js", "mercato.mjs"))
    # Credentials go through the environment, not the command line.
    env = dict(os.environ, MERCATO_URL=server.base, HMAC_INSTALL=apps["installs"]["sdk-hmac"], HMAC_SECRET=apps["secret"],
               ED_INSTALL=apps["installs"]["sdk-ed25519"], ED_SEED=base64.b64encode(SEED).decode())
    run = subprocess.run(["node", "--input-type=module", "-e", JS_PING % module], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
    hmac_ping, ed_ping, refused = json.loads(run.stdout)
    for ping in (hmac_ping, ed_ping):
        assert ping["result"] == {"pong": True} and ping["status"] == 200
        assert ping["replayed"] == [False, True] and ping["limit"] > 0
    assert refused == {"code": "unknown_command", "status": 404, "requestId": True}


class Receiver:
    """An app's webhook endpoint that trusts only what verify_webhook accepts."""

    def __init__(self):
        self.secrets = []
        self.verified, self.refused = [], []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    event = verify_webhook(self.headers, body, secrets=list(owner.secrets))
                    owner.verified.append(event)
                    self.send_response(204)
                except WebhookVerificationError as error:
                    owner.refused.append(error.reason)
                    self.send_response(400)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hooks"

    def wait_for(self, count, what, timeout=30):
        deadline = time.time() + timeout
        while len(self.verified) < count:
            if time.time() > deadline:
                raise AssertionError(f"timed out waiting for {what}: refused {self.refused}")
            time.sleep(0.1)


def test_verify_webhook_accepts_real_deliveries():
    # Deliveries to loopback need a server that allows them: a second instance of the binary.
    from test_deliveries import Mercato

    mercato = Mercato()
    if os.environ.get("MERCATO_INTEROP_DATABASE_URL"):
        url = os.environ["MERCATO_INTEROP_DATABASE_URL"]
        admin, name = url.rsplit("/", 1)
        subprocess.run(["psql", admin + "/postgres", "-qc", f"CREATE DATABASE {name}_sdk"], check=True)
        mercato.env["DATABASE_URL"] = url + "_sdk"
    receiver = Receiver()
    mercato.start()
    try:
        api = mercato.api
        _, vendor = api.org("SDK Hooks Vendor")
        registered = api.call("POST", "/api/v1/developer/apps", vendor, manifest(
            "sdk-hooks", {"type": "hmac"}, ["install:read"], events=["app.installed", "install.config_updated"],
            webhook_url=receiver.url, config=[{"key": "channel", "label": "Channel", "type": "string"}]))
        assert registered.status_code == 201, registered.text
        old = registered.json()["secrets"]["webhook"]
        receiver.secrets = [old]
        assert api.call("POST", "/api/v1/developer/apps/sdk-hooks/publish", vendor).status_code == 200
        _, owner = api.org("SDK Hooks Customer", plan="pro")
        install = api.call("POST", "/api/v1/installs", owner, {"app": "sdk-hooks"}).json()["id"]
        receiver.wait_for(1, "app.installed")
        event = receiver.verified[0].json()
        assert event["type"] == "app.installed" and receiver.verified[0].id.startswith("msg_")
        assert install in json.dumps(event["data"])

        # During a rotation both secrets sign: the new one alone verifies, then the old one alone.
        rotated = api.call("POST", "/api/v1/developer/apps/sdk-hooks/secrets/rotate", vendor, {"kind": "webhook"})
        assert rotated.status_code == 200, rotated.text
        for n, secrets in enumerate(([rotated.json()["secret"]], [old]), start=2):
            receiver.secrets = secrets
            assert api.call("PATCH", f"/api/v1/installs/{install}/config", owner, {"channel": f"#{n}"}).status_code == 200
            receiver.wait_for(n, f"config update {n}")
            assert receiver.verified[-1].json()["type"] == "install.config_updated"
        assert receiver.refused == []
        mercato.stop()
    finally:
        receiver.httpd.shutdown()
        if mercato.proc.poll() is None:
            mercato.proc.kill()
