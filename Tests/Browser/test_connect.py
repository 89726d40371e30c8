"""The OAuth part of the org admin's journey in headless Chromium, against the real binary and the
Authlib authorization server peer of the interop tests (Tests/Interop/peers/oauth_server.py, on
loopback): the operator registers the provider, a vendor publishes an app that connects to it,
and an org admin (signed in through the embedded sign-in) installs it, presses `Connect`, goes
through the provider's authorize step, comes back, sees the connected-account badge (account,
expiry, status), disconnects (the provider sees the grant revoked) and uninstalls. Every page is
checked and saved at 1280 and 390 px as in the journeys."""
import os
import secrets
import subprocess
import sys
import uuid
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from test_journeys import Pages
from test_sso_embedded import mint

PEERS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "Interop", "peers")
PROVIDER = "authlib-browser"

CONNECTED = {
    "key": "crm-sync", "name": "CRM Sync", "version": "1.0.0",
    "description": "Copies your CRM contacts into the workspace, with the account you connect.",
    "developer": {"name": "Sync Works", "url": "https://sync.example"}, "categories": ["sales"], "plan": "free",
    "scopes": ["connections:token"], "events": [], "command_signing": {"type": "hmac"},
    "oauth": {"provider": PROVIDER, "scopes": ["profile", "email"]},
}


@pytest.fixture(scope="module")
def provider(server):
    """The Authlib peer on loopback, registered by the operator as a provider."""
    client_secret = "peer-" + secrets.token_urlsafe(24)
    proc = subprocess.Popen([sys.executable, os.path.join(PEERS, "oauth_server.py"), "--port", "0", "--host", "127.0.0.1",
                             "--client-id", "mercato-browser", "--client-secret", client_secret,
                             "--redirect-uri", server.base + "/api/v1/oauth/callback"], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("LISTENING "), line
        base = f"http://127.0.0.1:{line.split()[1]}"
        definition = {"name": "Authlib peer", "authorize_url": base + "/authorize", "token_url": base + "/token",
                      "revoke_url": base + "/revoke", "userinfo_url": base + "/userinfo", "scopes": ["profile"],
                      "token_auth_method": "client_secret_post", "account_id_field": "sub", "account_name_field": "name",
                      "client_id": "mercato-browser", "client_secret": client_secret}
        put = server.call("PUT", f"/api/v1/providers/{PROVIDER}", server.operator, definition)
        assert put.status_code in (200, 201), put.text
        yield {"base": base, "client_secret": client_secret}
    finally:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def connected_app(server, provider):
    org = server.call("POST", "/api/v1/orgs", server.operator, {"name": "Sync Works", "plan": "pro"}).json()["id"]
    dev = server.call("POST", f"/api/v1/orgs/{org}/tokens", server.operator, {"name": "dev", "role": "developer"}).json()["token"]
    made = server.call("POST", "/api/v1/developer/apps", dev, CONNECTED)
    assert made.status_code == 201, made.text
    assert server.call("POST", f"/api/v1/developer/apps/{CONNECTED['key']}/publish", dev).status_code == 200
    return CONNECTED["key"]


def stats(provider):
    return requests.get(provider["base"] + "/_stats", timeout=5).json()


def badge_at_390(d, folder):
    """The badge itself at 390 px (below the fold of the page's own screenshot): it fits."""
    d.set_window_size(390, 844)
    try:
        d.execute_script("document.querySelector('.connection').scrollIntoView()")
        right = d.execute_script("return document.querySelector('.connection').getBoundingClientRect().right")
        assert right <= 390, f"the badge ends at {right}px"
        d.save_screenshot(os.path.join(folder, "connect-badge-390.png"))
    finally:
        d.set_window_size(1280, 900)


def test_admin_connects_an_account_sees_the_badge_disconnects_and_uninstalls(server, provider, connected_app, browser, shots):
    d, p = browser, Pages(browser, shots, "connect")
    org = server.call("POST", "/api/v1/orgs", server.operator, {"name": "Connect Customer", "plan": "pro"}).json()["id"]
    token = mint(server, org, role="admin", sub="connect-" + uuid.uuid4().hex, email="grace@customer.example", name="Grace Admin")
    try:
        d.get(server.base + "/sso/jwt?" + urlencode({"token": token, "return_to": f"/marketplace/{connected_app}"}))
        assert d.current_url.startswith(server.base + f"/marketplace/{connected_app}"), d.current_url
        assert "CRM Sync" in p.text()
        p.check("app")

        # Installing an OAuth app leaves it waiting for an account; the page offers Connect.
        p.press("Install")
        assert "The app is installed. Connect an account to start using it." in p.text()
        assert d.find_element(By.ID, "install-status").text == "Waiting for an account connection"
        assert d.find_element(By.ID, "connection-status").text == "Not connected"
        assert not d.find_elements(By.XPATH, "//button[normalize-space()='Disable']"), "nothing to disable before the account is connected"
        install_id = d.find_element(By.ID, "install-id").text
        p.check("app-waiting-for-connect")

        # Connect: the provider's authorize step (the peer shows no consent form: it approves at
        # once, as its user u_1), its redirect to Mercato's callback, then back to the app page.
        before = stats(provider)
        p.navigates(lambda: d.find_element(By.LINK_TEXT, "Connect").click())
        WebDriverWait(d, 10).until(lambda d: urlparse(d.current_url).path == f"/marketplace/{connected_app}")
        after = stats(provider)
        assert after["authorize_calls"] - before["authorize_calls"] == 1
        assert after["code_exchanges_ok"] - before["code_exchanges_ok"] == 1
        assert after["userinfo_ok"] - before["userinfo_ok"] == 1

        # The badge shows the account (name and id), the token's expiry and the status.
        assert parse_qs(urlparse(d.current_url).query) == {"done": ["connected"]}, d.current_url
        assert "The account is connected." in p.text()
        assert d.find_element(By.ID, "install-status").text == "Active"
        assert d.find_element(By.ID, "install-id").text == install_id
        assert d.find_element(By.ID, "connection-status").text == "Connected"
        assert d.find_element(By.ID, "connection-account").text == "Ada Example"
        assert d.find_element(By.ID, "connection-account-id").text == "u_1"
        badge = d.find_element(By.CSS_SELECTOR, ".connection").text
        assert "with Authlib peer" in badge and "access until" in badge, badge
        assert d.find_element(By.LINK_TEXT, "Reconnect")
        issued = requests.get(provider["base"] + "/_issued", timeout=5).json()
        for value in issued["access_tokens"] + issued["refresh_tokens"] + [provider["client_secret"]]:
            assert value not in d.page_source, "a token or the client secret on the page"
        p.check("app-connected")
        badge_at_390(d, shots)

        # Disconnect: the badge says so, the provider saw the grant revoked.
        before = stats(provider)
        p.press("Disconnect")
        assert "The account is disconnected" in p.text()
        assert d.find_element(By.ID, "connection-status").text == "Not connected"
        assert not d.find_elements(By.ID, "connection-account")
        assert not d.find_elements(By.XPATH, "//button[normalize-space()='Disconnect']")
        assert d.find_element(By.LINK_TEXT, "Connect")
        assert d.find_element(By.ID, "install-status").text == "Waiting for an account connection"
        after = stats(provider)
        assert after["revocations"] - before["revocations"] >= 1, after
        assert after["active_refresh_tokens"] == 0 and after["active_access_tokens"] == 0, after
        p.check("app-disconnected")

        # Uninstall, with its confirmation step.
        p.navigates(lambda: d.find_element(By.LINK_TEXT, "Uninstall").click())
        assert "Uninstall CRM Sync?" in p.text()
        p.check("uninstall-confirm")
        p.press("Yes, uninstall")
        assert "The app is uninstalled" in p.text()
        assert p.button("Install")
        assert not d.find_elements(By.ID, "connection-status")
        p.check("app-uninstalled")
    finally:
        # The journeys that follow start from their own sign-in.
        d.delete_all_cookies()
