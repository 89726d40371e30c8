"""Inbound provider webhooks (CONTRACT §11) on the live binary, signed by the providers' own
libraries where they are on PyPI (`stripe`'s WebhookSignature, `slack_sdk`'s SignatureVerifier,
`standardwebhooks`, `svix` for Clerk-style senders; `razorpay`'s SDK only verifies, so it checks
the header made from Razorpay's documentation) and by hand from the providers' documentation otherwise; each verified event
reaches the app as `inbound.received`, checked by the receiver peer with `standardwebhooks` and
`svix`, exactly once."""
import base64
import datetime
import hashlib
import hmac
import json
import os
import secrets
import subprocess
import time

import razorpay
import slack_sdk.signature
import standardwebhooks
import stripe
import svix.webhooks

from test_deliveries import Mercato, control, receiver, stats, wait_for  # noqa: F401 (receiver is a fixture)

PROVIDERS = ["stripe", "github", "standard-webhooks", "slack", "shopify", "razorpay", "phonepe"]


def field(provider):
    return provider.replace("-", "_") + "_secret"


def sign(provider, secret, body, event_id, timestamp):
    """The headers each provider sends, made as the provider (or its library) makes them."""
    text = body.decode()
    if provider == "stripe":
        return {"Stripe-Signature": stripe.WebhookSignature.generate_signature_header(text, secret, timestamp=timestamp)}
    if provider == "standard-webhooks":
        when = datetime.datetime.fromtimestamp(timestamp, tz=datetime.timezone.utc)
        signature = standardwebhooks.Webhook(secret).sign(event_id, when, text)
        return {"webhook-id": event_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}
    if provider == "github":
        return {"X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
                "X-GitHub-Delivery": event_id, "X-GitHub-Event": "push"}
    if provider == "slack":
        signature = slack_sdk.signature.SignatureVerifier(secret).generate_signature(timestamp=str(timestamp), body=body)
        return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": signature}
    if provider == "shopify":
        return {"X-Shopify-Hmac-Sha256": base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode(),
                "X-Shopify-Webhook-Id": event_id, "X-Shopify-Topic": "orders/create"}
    if provider == "razorpay":
        # Razorpay's SDK only verifies: the header made from its documentation must pass the SDK's own check.
        signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        if secret != "nope":
            assert razorpay.Client(auth=("rzp_test_interop", "unused")).utility.verify_webhook_signature(text, signature, secret)
        return {"X-Razorpay-Signature": signature, "X-Razorpay-Event-Id": event_id}
    if provider == "phonepe":
        response = json.loads(body)["response"]
        return {"X-VERIFY": hashlib.sha256((response + secret).encode()).hexdigest() + "###1"}
    raise AssertionError(provider)


def body_for(provider, event_id):
    if provider == "stripe":
        event = {"id": event_id, "object": "event", "type": "payment_intent.succeeded", "data": {"object": {"amount": 2000}}}
    elif provider == "slack":
        event = {"type": "event_callback", "event_id": event_id, "event": {"type": "app_mention", "text": "hi"}}
    elif provider == "razorpay":
        event = {"entity": "event", "event": "payment.captured", "payload": {"payment": {"entity": {"amount": 2000}}}}
    elif provider == "phonepe":
        inner = {"success": True, "code": "PAYMENT_SUCCESS", "data": {"merchantTransactionId": event_id, "transactionId": event_id}}
        event = {"response": base64.b64encode(json.dumps(inner).encode()).decode()}
    else:
        event = {"type": "user.created", "data": {"id": "user_1"}}
    return json.dumps(event).encode()


class InboundMercato(Mercato):
    def __init__(self):
        super().__init__()
        if os.environ.get("MERCATO_INTEROP_DATABASE_URL"):
            self.env["DATABASE_URL"] = os.environ["MERCATO_INTEROP_DATABASE_URL"] + "_inbound"


def test_each_scheme_signed_by_the_providers_code_reaches_the_app_once(receiver):  # noqa: F811
    if os.environ.get("MERCATO_INTEROP_DATABASE_URL"):
        admin, name = os.environ["MERCATO_INTEROP_DATABASE_URL"].rsplit("/", 1)
        subprocess.run(["psql", admin + "/postgres", "-qc", f"CREATE DATABASE {name}_inbound"], check=True)
    server = InboundMercato()
    server.start()
    try:
        check_inbound(server, receiver)
    finally:
        if server.proc.poll() is None:
            server.proc.kill()


def check_inbound(server, receiver):  # noqa: F811
    api = server.api
    _, vendor = api.org("Inbound Vendor")
    manifest = {
        "key": "payments-in", "name": "Payments In", "version": "1.0.0", "description": "Receives provider events.",
        "developer": {"name": "Interop"}, "scopes": ["install:read"], "command_signing": {"type": "hmac"},
        "events": ["inbound.received"], "webhook_url": receiver + "/hooks",
        "config": [{"key": field(p), "label": p, "type": "secret"} for p in PROVIDERS],
        "inbound": [{"provider": p, "secret_field": field(p)} for p in PROVIDERS],
    }
    registered = api.call("POST", "/api/v1/developer/apps", vendor, manifest)
    assert registered.status_code == 201, registered.text
    control(receiver, secrets=[registered.json()["secrets"]["webhook"]])
    assert api.call("POST", "/api/v1/developer/apps/payments-in/publish", vendor).status_code == 200
    _, owner = api.org("Inbound Customer", plan="pro")
    provider_secrets = {
        p: ("whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()) if p in ("stripe", "standard-webhooks") else secrets.token_hex(16)
        for p in PROVIDERS
    }
    installed = api.call("POST", "/api/v1/installs", owner, {"app": "payments-in", "config": {field(p): s for p, s in provider_secrets.items()}})
    assert installed.status_code == 201, installed.text
    install = installed.json()["id"]

    now = int(time.time())
    ids = {}
    for provider in PROVIDERS:
        event_id = f"evt_{provider}_{secrets.token_hex(4)}"
        body = body_for(provider, event_id)
        url = f"/api/v1/inbound/{install}/{provider}"
        headers = sign(provider, provider_secrets[provider], body, event_id, now)
        # A wrong secret and a tampered body: 401, nothing stored.
        wrong = sign(provider, "whsec_" + base64.b64encode(b"x" * 24).decode() if provider == "standard-webhooks" else "nope", body, event_id, now)
        r = api.call("POST", url, headers=dict(wrong, **{"Content-Type": "application/json"}), data=body)
        assert r.status_code == 401 and r.json()["code"] == "invalid_signature", (provider, r.text)
        assert provider_secrets[provider] not in r.text
        tampered = body.replace(b"2000", b"9000") if b"2000" in body else body[:-1] + b', "extra": 1}'
        assert tampered != body
        if provider == "phonepe":
            tampered = body_for(provider, event_id + "x")
        r = api.call("POST", url, headers=dict(headers, **{"Content-Type": "application/json"}), data=tampered)
        assert r.status_code == 401, (provider, r.text)
        if provider in ("stripe", "standard-webhooks", "slack"):
            stale = sign(provider, provider_secrets[provider], body, event_id, now - 600)
            r = api.call("POST", url, headers=dict(stale, **{"Content-Type": "application/json"}), data=body)
            assert r.status_code == 401, (provider, r.text)
        # The good one, twice.
        first = api.call("POST", url, headers=dict(headers, **{"Content-Type": "application/json"}), data=body)
        assert first.status_code == 200, (provider, first.text)
        assert first.json()["duplicate"] is False and first.json()["id"].startswith("inb_")
        again = api.call("POST", url, headers=dict(headers, **{"Content-Type": "application/json"}), data=body)
        assert again.status_code == 200 and again.json() == {"id": first.json()["id"], "duplicate": True}, again.text
        ids[provider] = event_id

    # Clerk signs with svix: the same scheme, svix- headers.
    clerk_secret = provider_secrets["standard-webhooks"]
    clerk_id = "msg_" + secrets.token_hex(8)
    clerk_body = json.dumps({"type": "user.updated", "data": {"id": "user_2"}}).encode()
    when = datetime.datetime.fromtimestamp(now, tz=datetime.timezone.utc)
    clerk_headers = {"svix-id": clerk_id, "svix-timestamp": str(now),
                     "svix-signature": svix.webhooks.Webhook(clerk_secret).sign(clerk_id, when, clerk_body.decode()),
                     "Content-Type": "application/json"}
    r = api.call("POST", f"/api/v1/inbound/{install}/standard-webhooks", headers=clerk_headers, data=clerk_body)
    assert r.status_code == 200 and r.json()["duplicate"] is False, r.text

    # Every verified event reaches the app once, signed (the peer checks with standardwebhooks and svix).
    wait_for(lambda: stats(receiver)["types"].get("inbound.received", 0) >= len(PROVIDERS) + 1, "inbound.received deliveries")
    time.sleep(1)
    s = stats(receiver)
    assert s["unverified"] == 0, s
    assert s["types"]["inbound.received"] == len(PROVIDERS) + 1, s["types"]
    datas = [json.loads(d["body"])["data"] for d in s["deliveries"] if d["type"] == "inbound.received"]
    seen = {(d["provider"], d["event_id"]) for d in datas}
    for provider, event_id in ids.items():
        expected = f"{event_id}:PAYMENT_SUCCESS" if provider == "phonepe" else event_id
        assert (provider, expected) in seen, (provider, seen)
    assert ("standard-webhooks", clerk_id) in seen
    for d in datas:
        assert d["install_id"] == install and d["received_at"] and isinstance(d["payload"], dict)
    everything = json.dumps(s["deliveries"])
    for secret in provider_secrets.values():
        assert secret not in everything

    # kill -9 between the answers and the deliveries: the receiver is failing (503), so every
    # event is still in the outbox or waiting for a retry when the node dies. Nothing answered
    # 200 is lost, and each event reaches the app under one webhook-id.
    control(receiver, mode="503", retry_after=1)
    github = provider_secrets["github"]
    sent = []
    for n in range(20):
        event_id = f"kill-{n}-{secrets.token_hex(4)}"
        body = json.dumps({"action": "opened", "number": n}).encode()
        headers = dict(sign("github", github, body, event_id, now), **{"Content-Type": "application/json"})
        r = api.call("POST", f"/api/v1/inbound/{install}/github", headers=headers, data=body)
        assert r.status_code == 200 and r.json()["duplicate"] is False, r.text
        sent.append((event_id, body, headers))
    server.proc.kill()
    server.proc.wait(timeout=10)
    control(receiver, mode="ok")
    server.start()

    def delivered_kill_events():
        found = {}
        for d in stats(receiver)["deliveries"]:
            if d["type"] == "inbound.received" and d["status"] == 200:
                assert d["verified_standardwebhooks"], d
                data = json.loads(d["body"])["data"]
                if data["event_id"].startswith("kill-"):
                    found.setdefault(data["event_id"], set()).add(d["webhook_id"])
        return found

    # An attempt in flight at the kill keeps its claim for the lease (the webhook timeout + 30 s),
    # so some events wait that long after the restart.
    wait_for(lambda: len(delivered_kill_events()) == len(sent), "the events answered before kill -9, delivered after the restart", timeout=120)
    found = delivered_kill_events()
    assert set(found) == {e for e, _, _ in sent}
    assert all(len(ids) == 1 for ids in found.values()), found
    # The provider retries them all: duplicates, and nothing new reaches the app.
    for event_id, body, headers in sent:
        r = api.call("POST", f"/api/v1/inbound/{install}/github", headers=headers, data=body)
        assert r.status_code == 200 and r.json()["duplicate"] is True, r.text
    time.sleep(2)
    assert delivered_kill_events() == found
