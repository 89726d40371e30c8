"""An org's own webhook endpoint (CONTRACT §10) against the live binary, checked by outside
libraries: an org admin subscribes a receiver to `app.installed` and `task.created`, installs an
app that creates a task through a command signed by the `standardwebhooks` reference library, and
the receiver peer verifies both deliveries with `standardwebhooks` (and `svix`); then a rotation
(both secrets sign during the overlap, each alone verifies) and `webhook.test`."""
import json
import os
import subprocess
import uuid
from datetime import datetime, timezone

import requests
from standardwebhooks.webhooks import Webhook

from test_deliveries import Mercato, control, receiver, stats, wait_for  # noqa: F401 (receiver is a fixture)


class OrgWebhookServer(Mercato):
    """The binary with private addresses allowed (the receiver is on loopback), on its own database."""

    def __init__(self):
        super().__init__()
        if os.environ.get("MERCATO_INTEROP_DATABASE_URL"):
            url = os.environ["MERCATO_INTEROP_DATABASE_URL"]
            admin, name = url.rsplit("/", 1)
            subprocess.run(["psql", admin + "/postgres", "-qc", f"CREATE DATABASE {name}_org_webhooks"], check=True)
            self.env["DATABASE_URL"] = url + "_org_webhooks"


def signed_command(secret, install, command, args):
    body = json.dumps({"install_id": install, "command": command, "args": args})
    msg_id = "msg_" + uuid.uuid4().hex
    when = datetime.now(tz=timezone.utc)
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(int(when.timestamp())),
               "webhook-signature": Webhook(secret).sign(msg_id, when, body), "Content-Type": "application/json"}
    return body, headers


def test_an_org_admin_subscribes_a_receiver_that_verifies_install_and_task_events(receiver):  # noqa: F811
    server = OrgWebhookServer()
    server.start()
    try:
        check(server.api, receiver)
    finally:
        if server.proc.poll() is None:
            server.proc.kill()


def check(api, receiver):
    _, vendor = api.org("Task Vendor")
    manifest = {
        "key": "task-maker", "name": "Task maker", "version": "1.0.0", "description": "Creates tasks.", "developer": {"name": "Interop"},
        "scopes": ["tasks:write"], "command_signing": {"type": "hmac"},
    }
    registered = api.call("POST", "/api/v1/developer/apps", vendor, manifest)
    assert registered.status_code == 201, registered.text
    command_secret = registered.json()["secrets"]["command"]
    assert api.call("POST", "/api/v1/developer/apps/task-maker/publish", vendor).status_code == 200
    _, admin = api.org("Endpoint Customer", plan="pro")

    types = api.call("GET", "/api/v1/webhooks/event_types", admin)
    assert types.status_code == 200 and {"app.installed", "task.created"} <= set(types.json()["data"]), types.text
    unknown = api.call("POST", "/api/v1/webhooks", admin, {"url": receiver + "/org", "events": ["app.installed", "invoice.paid"]})
    assert unknown.status_code == 422 and "invoice.paid" in unknown.json()["detail"], unknown.text
    assert unknown.headers["Content-Type"].startswith("application/problem+json")

    created = api.call("POST", "/api/v1/webhooks", admin,
                       {"url": receiver + "/org", "events": ["app.installed", "task.created"], "description": "Interop receiver"})
    assert created.status_code == 201, created.text
    endpoint = created.json()["id"]
    secret = created.json()["secret"]
    assert endpoint.startswith("whe_") and secret.startswith("whsec_")
    assert "secret" not in api.call("GET", f"/api/v1/webhooks/{endpoint}", admin).json()
    control(receiver, secrets=[secret])

    install = api.call("POST", "/api/v1/installs", admin, {"app": "task-maker"})
    assert install.status_code == 201, install.text
    install_id = install.json()["id"]
    body, headers = signed_command(command_secret, install_id, "tasks.create", {"title": "Call the customer back"})
    answer = requests.post(api.base + "/api/v1/apps/commands", data=body, headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text

    wait_for(lambda: {"app.installed", "task.created"} <= set(stats(receiver)["types"]), "app.installed and task.created")
    records = [r for r in stats(receiver)["deliveries"] if r["type"] in ("app.installed", "task.created")]
    assert len(records) == 2, records
    for r in records:
        assert r["verified_standardwebhooks"] and r["verified_svix"], r
        assert r["path"] == "/org"
        assert json.loads(r["body"])["data"]["install_id"] == install_id
    task = next(r for r in records if r["type"] == "task.created")
    assert json.loads(task["body"])["data"]["task"]["title"] == "Call the customer back"

    # Rotation: during the overlap both secrets sign; each verifies on its own.
    rotated = api.call("POST", f"/api/v1/webhooks/{endpoint}/secret/rotate", admin)
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["secret"]
    assert new_secret != secret and rotated.json()["previous_valid_until"]
    control(receiver, secrets=[new_secret, secret])
    test = api.call("POST", f"/api/v1/webhooks/{endpoint}/test", admin)
    assert test.status_code == 202 and test.json()["type"] == "webhook.test", test.text
    wait_for(lambda: stats(receiver)["types"].get("webhook.test") == 1, "webhook.test")
    probe = next(r for r in stats(receiver)["deliveries"] if r["type"] == "webhook.test")
    assert probe["webhook_id"] == test.json()["id"]
    assert probe["signatures"] == 2
    assert probe["standardwebhooks_secrets"] == [0, 1] and probe["svix_secrets"] == [0, 1], probe

    s = stats(receiver)
    assert s["unverified"] == 0 and s["received"] == 3, s

    # The endpoint's delivery log agrees.
    def log():
        return api.call("GET", f"/api/v1/webhooks/{endpoint}/deliveries?status=delivered", admin).json()["data"]
    wait_for(lambda: len(log()) == 3, "the endpoint's log to show 3 delivered", timeout=10)
    assert {d["type"] for d in log()} == {"app.installed", "task.created", "webhook.test"}
