"""Signed commands from outside libraries: the Standard Webhooks reference library (v1) and
PyNaCl (v1a), against a live server. None of the signing here is Mercato's own code."""
import base64
import json
import time
import uuid
from datetime import datetime, timezone

import nacl.signing
import pytest
from standardwebhooks.webhooks import Webhook

COMMANDS = "/api/v1/apps/commands"


def manifest(key, signing):
    return {
        "key": key, "name": key.title(), "version": "1.0.0", "description": "Interop test app.",
        "developer": {"name": "Interop"}, "scopes": ["install:read"], "command_signing": signing,
    }


@pytest.fixture(scope="module")
def apps(server):
    _, vendor = server.org("Interop Vendor")
    hmac_app = server.call("POST", "/api/v1/developer/apps", vendor, manifest("interop-hmac", {"type": "hmac"})).json()
    signing_key = nacl.signing.SigningKey.generate()
    public = "whpk_" + base64.b64encode(bytes(signing_key.verify_key)).decode()
    ed_app = server.call("POST", "/api/v1/developer/apps", vendor, manifest("interop-ed25519", {"type": "ed25519", "public_key": public}))
    assert ed_app.status_code == 201, ed_app.text
    for key in ("interop-hmac", "interop-ed25519"):
        assert server.call("POST", f"/api/v1/developer/apps/{key}/publish", vendor).status_code == 200
    _, owner = server.org("Interop Customer", plan="pro")
    installs = {}
    for key in ("interop-hmac", "interop-ed25519"):
        r = server.call("POST", "/api/v1/installs", owner, {"app": key})
        assert r.status_code == 201, r.text
        installs[key] = r.json()["id"]
    return {"secret": hmac_app["secrets"]["command"], "signing_key": signing_key, "installs": installs,
            "vendor": vendor, "owner": owner}


def body_for(install, command="ping"):
    return json.dumps({"install_id": install, "command": command, "args": {}})


def reference_headers(secret, body, msg_id=None, when=None):
    msg_id = msg_id or "msg_" + uuid.uuid4().hex
    when = when or datetime.now(tz=timezone.utc)
    signature = Webhook(secret).sign(msg_id, when, body)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(when.timestamp())), "webhook-signature": signature,
            "Content-Type": "application/json"}


def nacl_headers(key, body, msg_id=None):
    msg_id = msg_id or "msg_" + uuid.uuid4().hex
    ts = str(int(time.time()))
    signed = key.sign(f"{msg_id}.{ts}.{body}".encode()).signature
    return {"webhook-id": msg_id, "webhook-timestamp": ts, "webhook-signature": "v1a," + base64.b64encode(signed).decode(),
            "Content-Type": "application/json"}


def test_reference_library_v1_signature_is_accepted(server, apps):
    body = body_for(apps["installs"]["interop-hmac"])
    r = server.call("POST", COMMANDS, headers=reference_headers(apps["secret"], body), data=body)
    assert r.status_code == 200, r.text
    assert r.json()["result"] == {"pong": True}
    assert r.json()["id"].startswith("cmd_")
    assert int(r.headers["RateLimit-Remaining"]) >= 0


def test_install_info_signed_by_the_reference_library(server, apps):
    install = apps["installs"]["interop-hmac"]
    body = body_for(install, "install.info")
    r = server.call("POST", COMMANDS, headers=reference_headers(apps["secret"], body), data=body)
    assert r.status_code == 200, r.text
    assert r.json()["result"]["install_id"] == install
    assert r.json()["result"]["scopes"] == ["install:read"]


def test_one_byte_changed_anywhere_is_401(server, apps):
    body = body_for(apps["installs"]["interop-hmac"])
    headers = reference_headers(apps["secret"], body)
    # Every byte of the body: a changed byte either breaks the JSON (400) or the signature (401).
    for i in range(len(body)):
        changed = body[:i] + chr(ord(body[i]) ^ 1) + body[i + 1:]
        r = server.call("POST", COMMANDS, headers=headers, data=changed.encode("latin-1"))
        assert r.status_code in (400, 401), (i, r.status_code, r.text)
        if r.status_code == 400:
            assert r.json()["code"] == "malformed_json", (i, r.text)
        else:
            assert r.json()["code"] == "invalid_signature", (i, r.text)
    # The id, the timestamp and the signature itself.
    for name, value in [("webhook-id", headers["webhook-id"][:-1] + "x"),
                        ("webhook-timestamp", str(int(headers["webhook-timestamp"]) - 1))]:
        r = server.call("POST", COMMANDS, headers=dict(headers, **{name: value}), data=body)
        assert (r.status_code, r.json()["code"]) == (401, "invalid_signature"), name
    sig = headers["webhook-signature"]
    raw = bytearray(base64.b64decode(sig[3:]))
    for i in range(len(raw)):
        tampered = bytes(raw[:i]) + bytes([raw[i] ^ 1]) + bytes(raw[i + 1:])
        r = server.call("POST", COMMANDS, headers=dict(headers, **{"webhook-signature": "v1," + base64.b64encode(tampered).decode()}), data=body)
        assert (r.status_code, r.json()["code"]) == (401, "invalid_signature"), i
    # And unchanged it still passes (a fresh id: the first use is not consumed by failures).
    r = server.call("POST", COMMANDS, headers=headers, data=body)
    assert r.status_code == 200, r.text


def test_old_timestamp_signed_correctly_is_out_of_window(server, apps):
    body = body_for(apps["installs"]["interop-hmac"])
    old = datetime.fromtimestamp(time.time() - 301, tz=timezone.utc)
    r = server.call("POST", COMMANDS, headers=reference_headers(apps["secret"], body, when=old), data=body)
    assert (r.status_code, r.json()["code"]) == (401, "timestamp_out_of_window")


def test_pynacl_v1a_signature_is_accepted_and_a_changed_byte_is_not(server, apps):
    body = body_for(apps["installs"]["interop-ed25519"])
    r = server.call("POST", COMMANDS, headers=nacl_headers(apps["signing_key"], body), data=body)
    assert r.status_code == 200, r.text
    assert r.json()["result"] == {"pong": True}
    headers = nacl_headers(apps["signing_key"], body)
    changed = body.replace('"ping"', '"pinf"')
    r = server.call("POST", COMMANDS, headers=headers, data=changed)
    assert (r.status_code, r.json()["code"]) == (401, "invalid_signature")
    # A v1 HMAC header is no credential for an ed25519 app.
    r = server.call("POST", COMMANDS, headers=reference_headers(apps["secret"], body), data=body)
    assert (r.status_code, r.json()["code"]) == (401, "invalid_signature")


def test_the_same_request_twice_replays_the_answer(server, apps):
    body = body_for(apps["installs"]["interop-hmac"])
    headers = reference_headers(apps["secret"], body)
    first = server.call("POST", COMMANDS, headers=headers, data=body)
    second = server.call("POST", COMMANDS, headers=headers, data=body)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert second.headers.get("Idempotent-Replayed") == "true"


def test_both_secrets_verify_during_a_rotation(server, apps):
    rotated = server.call("POST", "/api/v1/developer/apps/interop-hmac/secrets/rotate", apps["vendor"], {"kind": "command"})
    assert rotated.status_code == 200, rotated.text
    body = body_for(apps["installs"]["interop-hmac"])
    for secret in (apps["secret"], rotated.json()["secret"]):
        r = server.call("POST", COMMANDS, headers=reference_headers(secret, body), data=body)
        assert r.status_code == 200, r.text
