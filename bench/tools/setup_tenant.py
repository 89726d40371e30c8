#!/usr/bin/env python3
"""Creates what a benchmark needs through Mercato's own API and prints it as one JSON object:
a vendor org and owner token, the app `bench-app` (HMAC command signing, scope kv:write, one
secret and one plain config field) registered and published by the vendor, a customer org
(enterprise) with an owner token that installs it with a config, and an operator override of the
install's command rate so the load measures the server, not the plan's limit.
With WEBHOOK_URL the app also subscribes to `task.created` events delivered there (the delivery
scenario), and the answer carries its webhook secret. With BENCH_INBOUND=1 in the environment
the app also receives Standard Webhooks provider events (CONTRACT §11) with the secret field
`inbound_secret`, and the answer carries that secret (the inbound scenario).
Usage: setup_tenant.py BASE_URL OPERATOR_TOKEN [WEBHOOK_URL]"""
import base64
import json
import os
import secrets
import sys
import urllib.error
import urllib.request

base, operator = sys.argv[1], sys.argv[2]
webhook_url = sys.argv[3] if len(sys.argv) > 3 else None


def call(method, path, token, body=None, expect=(200, 201)):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    if status not in expect:
        sys.exit(f"{method} {path}: {status} {text}")
    return json.loads(text)


def org(name, plan):
    org_id = call("POST", "/api/v1/orgs", operator, {"name": name, "plan": plan})["id"]
    # The highest hourly limit a token may have (CONTRACT §9): the GET loads send more requests
    # in a few minutes than a plan's default allows an hour, and their 429s are not results.
    token = call("POST", f"/api/v1/orgs/{org_id}/tokens", operator,
                 {"name": "bench-owner", "role": "owner", "hourly_limit": 1_000_000})["token"]
    return org_id, token


vendor_org, vendor = org("Bench Vendor", "pro")
manifest = {
    "key": "bench-app", "name": "Bench App", "version": "1.0.0",
    "description": "The app bench/run loads Mercato with.", "developer": {"name": "Bench"},
    "scopes": ["kv:write"], "command_signing": {"type": "hmac"},
    "config": [
        {"key": "api_key", "label": "API key", "type": "secret", "required": True},
        {"key": "channel", "label": "Channel", "type": "string", "required": False, "default": "#general"},
    ],
}
inbound_secret = None
if os.environ.get("BENCH_INBOUND") == "1":
    inbound_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    manifest["config"].append({"key": "inbound_secret", "label": "Inbound secret", "type": "secret", "required": False})
    manifest["inbound"] = [{"provider": "standard-webhooks", "secret_field": "inbound_secret"}]
if webhook_url:
    manifest["webhook_url"] = webhook_url
    manifest["events"] = ["task.created"]
app = call("POST", "/api/v1/developer/apps", vendor, manifest)
call("POST", "/api/v1/developer/apps/bench-app/publish", vendor)
customer_org, owner = org("Bench Customer", "enterprise")
config = {"api_key": "sk_bench_0123456789abcdef", "channel": "#ops"}
if inbound_secret:
    config["inbound_secret"] = inbound_secret
install = call("POST", "/api/v1/installs", owner, {"app": "bench-app", "config": config})
call("PUT", f"/api/v1/installs/{install['id']}/rate_limit", operator, {"per_second": 1000000, "burst": 1000000})
print(json.dumps({"vendor_org": vendor_org, "customer_org": customer_org, "owner": owner, "app_id": app["id"],
                  "secret": app["secrets"]["command"], "install": install["id"], "install_status": install["status"],
                  "webhook_secret": app["secrets"]["webhook"], "inbound_secret": inbound_secret}))
