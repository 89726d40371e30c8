"""The developer portal and the installed app page, round 3, in a real browser against the real
binary: register an app from an uploaded manifest file (a file with mistakes first), publish,
install it, see its delivery fail at the receiver, read the attempt, Retry it once the receiver
answers; then edit the install's settings; then add version 2 (one more scope) from the app's
portal page and upgrade the install with consent to the new scope. Every page is checked and
saved at 1280 and 390 px like the other journeys (test_journeys.Pages).

This module runs its own server: deliveries must reach a receiver on loopback
(MERCATO_ALLOW_PRIVATE_WEBHOOKS) and must not be retried on their own during the test (long
MERCATO_WEBHOOK_RETRIES), so that the Retry button is what sends the event again."""
import http.server
import json
import os
import re
import subprocess
import tempfile
import threading
import time

import pytest
import requests
from selenium.webdriver.common.by import By

from conftest import ROOT, free_port, serve, stop
from test_journeys import PASSWORD, Pages


@pytest.fixture(scope="module")
def portal_server():
    binary = os.environ["MERCATO_BIN"]
    data = tempfile.mkdtemp(prefix="mercato-portal-")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MERCATO_") and k != "DATABASE_URL"}
    env.update(MERCATO_DATA_DIR=data, MERCATO_PORT=str(port), MERCATO_CATALOG_DIR="none", MERCATO_LOG_LEVEL="warning",
               MERCATO_ALLOW_PRIVATE_WEBHOOKS="1", MERCATO_WEBHOOK_RETRIES="3600,3600,3600,3600,3600,3600,3600")
    if os.environ.get("MERCATO_BROWSER_DATABASE_URL"):
        # A database of its own: the first start on it prints the first owner's link.
        admin, name = os.environ["MERCATO_BROWSER_DATABASE_URL"].rsplit("/", 1)
        subprocess.run(["psql", admin + "/postgres", "-qc", f"CREATE DATABASE {name}_portal"], check=True)
        env["DATABASE_URL"] = os.environ["MERCATO_BROWSER_DATABASE_URL"] + "_portal"
    out = open(os.path.join(data, "out.log"), "w+")
    proc, base = serve(binary, env, stdout=out)
    link = re.search(r"http://\S+/invite/[A-Za-z0-9_-]+", open(os.path.join(data, "out.log")).read()).group(0)
    yield base, link
    stop(proc)


@pytest.fixture(scope="module")
def receiver():
    """A webhook receiver on loopback answering `state["status"]`; it counts what it received."""
    state = {"status": 500, "received": []}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state["received"].append((self.headers.get("webhook-id"), json.loads(body)["type"]))
            answer = json.dumps({"seen": len(state["received"])}).encode()
            self.send_response(state["status"])
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    state["url"] = f"http://127.0.0.1:{httpd.server_address[1]}/hook"
    yield state
    httpd.shutdown()


def manifest_yaml(url, version="1.0.0", scopes=("kv:read",), key="relay-desk"):
    return (f"key: {key}\nname: Relay Desk\nversion: {version}\n"
            "description: Forwards your team's alerts to the desk on duty.\n"
            "developer: {name: Relay Co, url: 'https://relay.example'}\ncategories: [productivity]\nplan: free\n"
            f"scopes: [{', '.join(scopes)}]\nevents: [app.installed, install.config_updated]\nwebhook_url: '{url}'\n"
            "command_signing: {type: hmac}\n"
            "config:\n  - {key: desk, label: Desk name, type: string, required: true, help: The desk that gets the alerts.}\n"
            "  - {key: token, label: Desk token, type: secret, required: true}\n")


def refresh_until(d, p, condition, what, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.5)
        d.refresh()
    raise AssertionError(f"timed out waiting for {what}: {p.text()[:500]}")


def test_portal_upload_deliveries_retry_settings_and_upgrade(portal_server, receiver, browser, shots):
    base, link = portal_server
    d, p = browser, Pages(browser, shots, "portal")
    d.delete_all_cookies()
    folder = tempfile.mkdtemp(prefix="mercato-manifests-")

    # The first owner (owner is developer and admin too).
    d.get(link)
    p.field("Name").send_keys("Rita Relay")
    p.field("Email").send_keys("rita@relay.example")
    p.field("Password").send_keys(PASSWORD)
    p.press("Join and sign in")

    # Upload a manifest file with mistakes: its problems listed, its text kept in the form.
    bad = os.path.join(folder, "bad.yaml")
    with open(bad, "w") as f:
        f.write(manifest_yaml(receiver["url"], version="one", key="Relay Desk"))
    d.get(base + "/developer/apps/new")
    p.check("new")
    d.find_element(By.ID, "manifest_file").send_keys(bad)
    p.press("Register")
    problems = d.find_element(By.ID, "manifest-problems").text
    assert "key" in problems and "version" in problems, problems
    assert "Relay Desk" in p.field("Manifest (JSON or YAML)").get_attribute("value")
    p.check("new-upload-problems")

    good = os.path.join(folder, "relay-desk.yaml")
    with open(good, "w") as f:
        f.write(manifest_yaml(receiver["url"]))
    p.field("Manifest (JSON or YAML)").clear()
    d.find_element(By.ID, "manifest_file").send_keys(good)
    p.press("Register")
    assert "Relay Desk is registered" in p.text()
    assert d.find_element(By.ID, "secret-webhook").text.startswith("whsec_")
    p.navigates(lambda: d.find_element(By.LINK_TEXT, "Continue to the app").click())
    assert "No deliveries yet." in p.text() and "No commands yet." in p.text()
    p.check("app-empty")
    p.press("Publish")

    # Install it: the app.installed event goes to the receiver, which answers 500.
    d.get(base + "/marketplace/relay-desk")
    p.field("Desk name").send_keys("night-desk")
    p.field("Desk token").send_keys("desk_SECRET_42")
    p.press("Install")
    assert "The app is installed." in p.text()

    d.get(base + "/developer/apps/relay-desk#deliveries")
    refresh_until(d, p, lambda: "app.installed" in p.text() and "500" in d.find_element(By.ID, "deliveries").text, "the failed attempt")
    assert receiver["received"] and receiver["received"][0][1] == "app.installed"
    p.check("app-deliveries")

    # The delivery's attempts: time, status code, duration, answer.
    p.navigates(lambda: d.find_element(By.CSS_SELECTOR, "#delivery-log tbody a").click())
    attempts = d.find_element(By.ID, "attempt-log").text
    assert "500" in attempts and " ms" in attempts, attempts
    assert '{"seen": 1}' in attempts, attempts
    p.check("delivery-failed")

    # The receiver is fixed; Retry sends the same event again (same webhook-id) and it is delivered.
    receiver["status"] = 200
    p.press("Retry")
    assert "The delivery is queued" in p.text()
    refresh_until(d, p, lambda: d.find_element(By.ID, "delivery-status").text == "delivered", "the retried delivery")
    assert len(receiver["received"]) == 2 and receiver["received"][0][0] == receiver["received"][1][0]
    assert "200" in d.find_element(By.ID, "attempt-log").text
    p.check("delivery-retried")

    # The status filter.
    d.get(base + "/developer/apps/relay-desk?status=failed")
    assert "No failed deliveries." in p.text()
    d.get(base + "/developer/apps/relay-desk?status=delivered#deliveries")
    assert "app.installed" in d.find_element(By.ID, "deliveries").text
    p.check("deliveries-filtered")

    # Settings: prefilled, the secret blank (kept), a change saved.
    d.get(base + "/marketplace/relay-desk")
    d.find_element(By.XPATH, "//summary[normalize-space()='Settings']").click()
    assert p.field("Desk name").get_attribute("value") == "night-desk"
    assert p.field("Desk token").get_attribute("value") == ""
    p.field("Desk name").clear()
    p.field("Desk name").send_keys("day-desk")
    p.press("Save settings")
    assert "Settings saved." in p.text()
    assert "desk_SECRET_42" not in d.page_source
    p.check("settings-saved")

    # Version 2 asks for one more scope: added from the portal's app page.
    d.get(base + "/developer/apps/relay-desk")
    d.find_element(By.XPATH, "//summary[normalize-space()='Add a version']").click()
    p.field("Manifest (JSON or YAML)").send_keys(manifest_yaml(receiver["url"], version="2.0.0", scopes=("kv:read", "kv:write")))
    p.press("Add version")
    assert "The new version is added." in p.text()
    assert "2.0.0" in d.find_element(By.ID, "versions").text
    p.check("version-added")

    # Upgrade: the new scope in plain words; without the consent box it is refused on the page.
    d.get(base + "/marketplace/relay-desk#upgrade")
    assert "Version 2.0.0 is available" in p.text()
    assert "kv:write" in d.find_element(By.ID, "upgrade-scopes").text
    p.check("upgrade-offer")
    p.press("Upgrade to 2.0.0")
    assert d.find_element(By.ID, "upgrade-confirm-error").text
    assert "version 1.0.0" in d.find_element(By.CSS_SELECTOR, "section.action").text
    p.check("upgrade-refused")
    p.field("I allow the new permissions listed above").click()
    p.press("Upgrade to 2.0.0")
    assert "The app is upgraded to its latest version." in p.text()
    assert "version 2.0.0" in d.find_element(By.CSS_SELECTOR, "section.action").text
    assert "is available" not in p.text()
    p.check("upgraded")
    d.delete_all_cookies()
