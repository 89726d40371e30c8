"""The org admin's journey in a real browser (headless Chromium), against the real binary:
first owner invitation → password → sign out / wrong password / sign in → find an app →
install with config (a field error first) → the install, its command log with a command sent
by the Python SDK → disable / enable → uninstall with confirmation. Every page visited is
checked (no console errors, every input labelled, no sideways scrolling at 390 px) and saved
as a screenshot at 1280 and 390 px."""
import os
import sys

import pytest
import requests
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.support.ui import Select, WebDriverWait

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "sdk", "python"))
from mercato_sdk import MercatoClient  # noqa: E402

PASSWORD = "correct horse battery staple"

FIELD_NOTES = {
    "key": "field-notes", "name": "Field Notes", "version": "1.0.0",
    "description": "Keeps the notes your team takes in the field, and sends a summary every evening.",
    "developer": {"name": "Notebook Co", "url": "https://notebook.example", "email": "dev@notebook.example"},
    "categories": ["productivity"], "plan": "free", "scopes": ["kv:read", "kv:write", "notifications:write"], "events": ["app.installed"],
    "webhook_url": "https://hooks.notebook.example/mercato", "command_signing": {"type": "hmac"},
    "config": [
        {"key": "api_key", "label": "Notebook API key", "type": "secret", "required": True, "help": "From your Notebook account settings."},
        {"key": "workspace", "label": "Workspace", "type": "string", "required": True, "pattern": "^[a-z-]+$",
         "help": "Lower-case letters and dashes."},
        {"key": "signature", "label": "Signature", "type": "text"},
        {"key": "daily_limit", "label": "Daily limit", "type": "number", "min": 1, "max": 100, "default": 20},
        {"key": "region", "label": "Region", "type": "enum", "options": ["eu", "us"], "default": "eu"},
        {"key": "callback", "label": "Callback URL", "type": "url"},
        {"key": "summaries", "label": "Send evening summaries", "type": "boolean"},
    ],
}

EVIL = dict(FIELD_NOTES, key="evil-notes", name="<script>alert(1)</script> Notes",
            description="<img src=x onerror=alert(2)> looks harmless",
            config=[{"key": "token", "label": "<b>Token</b>", "type": "secret", "required": True, "help": "<script>alert(3)</script>"}])


class Pages:
    """Checks and screenshots every page the journey reaches."""

    def __init__(self, driver, folder, journey):
        self.d = driver
        self.folder = folder
        self.journey = journey
        self.count = 0

    def check(self, name):
        d = self.d
        here = d.current_url
        errors = [e for e in d.get_log("browser") if e["level"] == "SEVERE"
                  # The page's own status (401, 404, 422...) is reported for the document itself.
                  and not e["message"].startswith(here.split("?")[0] + " - Failed to load resource")
                  and not (e["message"].split(" ")[0].split("?")[0] == here.split("?")[0] and "status of" in e["message"])]
        assert not errors, f"{name}: console errors {errors}"
        unlabelled = d.execute_script("""
            return Array.from(document.querySelectorAll('input, select, textarea'))
              .filter(e => e.type !== 'hidden')
              .filter(e => !(e.id && document.querySelector('label[for="' + e.id + '"]')) && !e.closest('label') && !e.getAttribute('aria-label'))
              .map(e => e.name || e.outerHTML);""")
        assert not unlabelled, f"{name}: inputs without a label {unlabelled}"
        dangling = d.execute_script("""
            return Array.from(document.querySelectorAll('[aria-describedby]'))
              .flatMap(e => e.getAttribute('aria-describedby').split(' ').filter(id => !document.getElementById(id)));""")
        assert not dangling, f"{name}: aria-describedby names missing elements {dangling}"
        self.count += 1
        d.save_screenshot(os.path.join(self.folder, f"{self.journey}-{self.count:02d}-{name}.png"))
        d.set_window_size(390, 844)
        try:
            width = d.execute_script("return document.documentElement.scrollWidth")
            assert width <= 390, f"{name}: {width}px wide at 390px"
            d.save_screenshot(os.path.join(self.folder, f"{self.journey}-{self.count:02d}-{name}-390.png"))
        finally:
            d.set_window_size(1280, 900)

    def field(self, label):
        """The input a visible label names."""
        target = self.d.find_element(By.XPATH, f"//label[starts-with(normalize-space(), '{label}')]").get_attribute("for")
        return self.d.find_element(By.ID, target)

    def button(self, text):
        return self.d.find_element(By.XPATH, f"//button[normalize-space()='{text}']")

    def navigates(self, action):
        """Runs `action` (a click, a key) and waits for the next page to replace this one."""
        old = self.d.find_element(By.TAG_NAME, "html")
        action()

        def replaced(_):
            try:
                old.is_enabled()
                return False
            except StaleElementReferenceException:
                return True
            except WebDriverException as error:
                # Chromium sometimes reports a node of the replaced document this way instead.
                if "does not belong to the document" in str(error):
                    return True
                raise

        WebDriverWait(self.d, 10).until(replaced)
        WebDriverWait(self.d, 10).until(lambda d: d.execute_script("return document.readyState") == "complete")

    def press(self, text):
        self.navigates(lambda: self.button(text).click())

    def text(self):
        return self.d.find_element(By.TAG_NAME, "main").text

    def open_signed_in(self, url):
        """Opens `url` as Ada (the admin journey's owner), signing in first if the session is gone."""
        self.d.get(url)
        if "/login" in self.d.current_url:
            self.field("Email").send_keys("ada@example.com")
            self.field("Password").send_keys(PASSWORD)
            self.press("Sign in")
            self.d.get(url)


@pytest.fixture(scope="module")
def vendor(server):
    org = server.call("POST", "/api/v1/orgs", server.operator, {"name": "Notebook Co", "plan": "enterprise"}).json()["id"]
    dev = server.call("POST", f"/api/v1/orgs/{org}/tokens", server.operator, {"name": "dev", "role": "developer"}).json()["token"]
    secrets = {}
    for manifest in (FIELD_NOTES, EVIL):
        made = server.call("POST", "/api/v1/developer/apps", dev, manifest)
        assert made.status_code == 201, made.text
        secrets[manifest["key"]] = made.json()["secrets"]["command"]
        assert server.call("POST", f"/api/v1/developer/apps/{manifest['key']}/publish", dev).status_code == 200
    return secrets


def test_admin_journey(server, vendor, browser, shots):
    d, p = browser, Pages(browser, shots, "admin")

    # The first owner's link, as the first start printed it.
    d.get(server.owner_link)
    assert "Join My organisation" in p.text()
    p.check("invite")
    p.field("Name").send_keys("Ada Owner")
    p.field("Email").send_keys("ada@example.com")
    p.field("Password").send_keys("short")
    p.button("Join and sign in").click()
    # The browser's own check stops a short password before it is sent (the server's check is
    # tested in WebPagesTests).
    assert "/invite/" in d.current_url
    assert d.execute_script("return !document.getElementById('password').checkValidity()")
    p.field("Password").clear()
    p.field("Password").send_keys(PASSWORD)
    p.press("Join and sign in")
    assert d.current_url.startswith(server.base + "/marketplace")
    assert "Welcome! You are signed in." in p.text()
    p.check("marketplace")

    # Sign out; a wrong password says so without saying which part; then sign in.
    p.press("Sign out")
    assert "/login" in d.current_url
    p.check("login")
    p.field("Email").send_keys("ada@example.com")
    p.field("Password").send_keys("not my password")
    p.press("Sign in")
    assert "That email and password do not match an account." in p.text()
    p.check("login-wrong-password")
    p.field("Password").send_keys(PASSWORD)
    p.press("Sign in")
    assert d.current_url.startswith(server.base + "/marketplace")

    # Find the app; what its developer wrote is shown as text, never run.
    p.navigates(lambda: p.field("Search apps").send_keys("notes" + Keys.ENTER))
    assert "q=notes" in d.current_url
    assert d.find_element(By.LINK_TEXT, "<script>alert(1)</script> Notes")
    assert "<img src=x onerror=alert(2)> looks harmless" in p.text()
    p.check("marketplace-search")
    p.navigates(lambda: Select(p.field("Category")).select_by_visible_text("productivity"))
    assert "category=productivity" in d.current_url  # the tiny script submits the filter
    p.navigates(lambda: d.find_element(By.LINK_TEXT, "<script>alert(1)</script> Notes").click())
    assert "<b>Token</b>" in p.text() and "<script>alert(3)</script>" in p.text()
    p.check("app-escaped")

    d.get(server.base + "/marketplace/field-notes")
    assert "Read the install's key-value store." in p.text() or "kv:read" in p.text()
    p.check("app")
    assert p.field("Notebook API key").get_attribute("type") == "password"
    assert p.field("Signature").tag_name == "textarea"
    assert p.field("Daily limit").get_attribute("type") == "number"
    assert p.field("Callback URL").get_attribute("type") == "url"
    assert p.field("Send evening summaries").get_attribute("type") == "checkbox"
    p.field("Notebook API key").send_keys("nb_live_SECRET_1234")
    p.field("Workspace").send_keys("Not Valid!")
    p.field("Signature").send_keys("Sent from the field\nby Ada")
    Select(p.field("Region")).select_by_visible_text("us")
    p.press("Install")
    error = d.find_element(By.ID, "config-workspace-error")
    assert error.text, "the problem is shown beside its field"
    assert "nb_live_SECRET_1234" not in d.page_source
    p.check("app-install-field-error")
    p.field("Notebook API key").send_keys("nb_live_SECRET_1234")
    p.field("Workspace").clear()
    p.field("Workspace").send_keys("north-team")
    p.field("Send evening summaries").click()
    p.press("Install")
    assert "The app is installed." in p.text()
    assert d.find_element(By.ID, "install-status").text == "Active"
    assert "No commands yet." in p.text()
    p.check("app-installed")

    # Settings: the values as installed, the secret never; an empty secret keeps its value.
    d.find_element(By.XPATH, "//summary[normalize-space()='Settings']").click()
    assert p.field("Workspace").get_attribute("value") == "north-team"
    assert p.field("Notebook API key").get_attribute("value") == ""
    p.field("Workspace").clear()
    p.field("Workspace").send_keys("south-team")
    p.press("Save settings")
    assert "Settings saved." in p.text()
    p.check("app-settings-saved")

    # A command sent by the SDK appears in the install's log.
    install_id = d.find_element(By.ID, "install-id").text
    with MercatoClient(server.base, install_id, secret=vendor["field-notes"]) as client:
        assert client.command("ping").result == {"pong": True}
        client.command("notifications.create", {"title": "<b>Sync</b> finished", "body": "12 notes arrived.", "level": "success"})
    d.refresh()
    log = d.find_element(By.CSS_SELECTOR, "table.log").text
    assert "ping" in log and "200" in log
    p.check("app-command-log")

    # The app's notification in the inbox: shown as text, dismissed, then under Dismissed.
    p.navigates(lambda: d.find_element(By.LINK_TEXT, "Notifications").click())
    assert "<b>Sync</b> finished" in p.text() and "12 notes arrived." in p.text()
    p.check("notifications")
    p.press("Dismiss")
    assert "Notification dismissed." in p.text() and "<b>Sync</b> finished" not in p.text()
    p.navigates(lambda: d.find_element(By.LINK_TEXT, "Dismissed").click())
    assert "<b>Sync</b> finished" in p.text()
    p.check("notifications-dismissed")
    d.get(server.base + "/marketplace/field-notes")

    # A POST without the CSRF token is refused with a 403 page and changes nothing.
    cookies = {c["name"]: c["value"] for c in d.get_cookies()}
    forged = requests.post(server.base + "/marketplace/field-notes/disable", cookies=cookies, allow_redirects=False, timeout=10)
    assert forged.status_code == 403 and "text/html" in forged.headers["Content-Type"]
    d.refresh()
    assert d.find_element(By.ID, "install-status").text == "Active"

    p.press("Disable")
    assert d.find_element(By.ID, "install-status").text == "Disabled"
    p.check("app-disabled")
    p.press("Enable")
    assert d.find_element(By.ID, "install-status").text == "Active"

    d.get(server.base + "/installs")
    assert "Field Notes" in p.text()
    p.check("installs")

    d.get(server.base + "/marketplace/field-notes")
    p.navigates(lambda: d.find_element(By.LINK_TEXT, "Uninstall").click())
    assert "Uninstall Field Notes?" in p.text()
    p.check("uninstall-confirm")
    p.press("Yes, uninstall")
    assert "The app is uninstalled" in p.text()
    assert p.button("Install")
    p.check("app-uninstalled")

    d.get(server.base + "/marketplace/no-such-app")
    assert "Not found" in p.text()
    p.check("not-found")


def test_pages_answer_the_security_headers(server):
    answer = requests.get(server.base + "/login", timeout=10)
    csp = answer.headers["Content-Security-Policy"]
    # The server under test lets the host page of test_sso_embedded.py frame it; the default
    # ('self') is checked by WebPagesTests.
    assert "default-src 'self'" in csp and f"frame-ancestors http://127.0.0.1:{server.host_port}" in csp and "unsafe-inline" not in csp
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Referrer-Policy"] == "same-origin"


def test_developer_journey(server, browser, shots):
    """Runs after the admin journey (same browser, Ada still signed in as the org's owner)."""
    d, p = browser, Pages(browser, shots, "developer")
    p.open_signed_in(server.base + "/developer")
    assert "Your organisation has no apps yet." in p.text()
    p.check("developer-empty")
    p.navigates(lambda: d.find_element(By.LINK_TEXT, "Register an app").click())

    # A manifest with mistakes: each problem is listed with its field.
    p.field("Manifest (JSON or YAML)").send_keys(
        "key: Daily Digest\nname: Daily Digest\nversion: one\ndescription: Sends a digest.\n"
        "developer: {name: Ada}\ncategories: [productivity]\nplan: free\nscopes: [kv:read, nope:write]\n"
        "events: []\ncommand_signing: {type: hmac}\nconfig: []\n")
    p.press("Register")
    problems = d.find_element(By.ID, "manifest-problems").text
    assert "key" in problems and "version" in problems and "scopes" in problems, problems
    p.check("developer-new-problems")

    text = p.field("Manifest (JSON or YAML)")
    text.clear()
    text.send_keys(
        "key: daily-digest\nname: Daily Digest\nversion: 1.0.0\ndescription: Sends a digest of the day's tasks.\n"
        "developer: {name: Ada}\ncategories: [productivity]\nplan: free\nscopes: [kv:read]\n"
        "events: []\ncommand_signing: {type: hmac}\nconfig: []\n")
    p.press("Register")
    assert "Daily Digest is registered" in p.text()
    secret = d.find_element(By.ID, "secret-command").text
    assert len(secret) > 20
    assert d.find_element(By.CSS_SELECTOR, "button[data-copy='secret-command']").is_displayed()  # the script shows Copy
    p.check("developer-secrets")

    # Shown once: the app's page lists the secrets' dates, never their text.
    p.navigates(lambda: d.find_element(By.LINK_TEXT, "Continue to the app").click())
    assert secret not in d.page_source
    assert d.find_element(By.ID, "app-status").text == "draft"
    p.check("developer-app")
    p.press("Publish")
    assert d.find_element(By.ID, "app-status").text == "published"
    d.get(server.base + "/marketplace?q=digest")
    assert d.find_element(By.LINK_TEXT, "Daily Digest")

    d.get(server.base + "/developer/apps/daily-digest")
    p.press("Rotate command secret")
    rotated = d.find_element(By.ID, "secret-command").text
    assert rotated and rotated != secret
    assert "keeps working until" in p.text()
    p.check("developer-rotated")

    # API tokens (owner): created with the text shown once, then revoked.
    p.navigates(lambda: d.find_element(By.LINK_TEXT, "API tokens").click())
    p.check("tokens")
    p.field("Name").send_keys("deploy bot")
    Select(p.field("Role")).select_by_visible_text("developer")
    p.field("See the catalog and the apps this org develops").click()
    p.press("Create token")
    token = d.find_element(By.ID, "secret-token").text
    assert token.startswith("mct_")
    assert requests.get(server.base + "/api/v1/developer/apps", headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 200
    p.check("tokens-created")
    p.navigates(lambda: d.find_element(By.LINK_TEXT, "Back to API tokens").click())
    assert token not in d.page_source
    assert "See the catalog and the apps this org develops" in p.text()
    p.navigates(lambda: d.find_element(By.CSS_SELECTOR, "a[aria-label='Usage of deploy bot']").click())
    assert "GET /api/v1/developer/apps" in p.text()
    p.check("token-usage")
    p.navigates(lambda: d.find_element(By.LINK_TEXT, "Back to API tokens").click())
    p.navigates(lambda: d.find_element(By.CSS_SELECTOR, "button[aria-label='Revoke deploy bot']").click())
    assert "The token is revoked." in p.text()
    assert requests.get(server.base + "/api/v1/developer/apps", headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 401


def test_install_with_the_keyboard_alone(server, vendor, browser, shots):
    """Runs after the admin journey (Ada signed in): Tab and Enter only, from the top of the page."""
    d, p = browser, Pages(browser, shots, "keyboard")
    p.open_signed_in(server.base + "/marketplace/evil-notes")
    def tab_to(test, limit=60):
        for _ in range(limit):
            ActionChains(d).send_keys(Keys.TAB).perform()
            if d.execute_script(f"var e = document.activeElement; return !!e && ({test});"):
                return d.switch_to.active_element
        raise AssertionError(f"Tab never reached {test}")

    first = tab_to("true", 1)
    assert first.text == "Skip to content"
    tab_to("e.id === 'config-token'").send_keys("tok_from_the_keyboard")
    button = tab_to("e.tagName === 'BUTTON' && e.textContent.trim() === 'Install'")
    p.navigates(lambda: button.send_keys(Keys.ENTER))
    assert d.find_element(By.ID, "install-status").text == "Active"
    link = tab_to("e.tagName === 'A' && e.textContent.trim() === 'Uninstall'")
    p.navigates(lambda: link.send_keys(Keys.ENTER))
    confirm = tab_to("e.tagName === 'BUTTON' && e.textContent.trim() === 'Yes, uninstall'")
    p.navigates(lambda: confirm.send_keys(Keys.ENTER))
    assert "The app is uninstalled" in p.text()
    p.check("keyboard-uninstalled")


def test_an_app_that_receives_provider_webhooks_shows_where_they_go(server, browser, shots):
    """Runs after the admin journey (Ada's account), in the order an admin works: the catalog's
    Clerk Users app installed first (Clerk gives the signing secret only once the endpoint with
    its URL exists); the install shows its receiving URL (CONTRACT §11) and that it receives
    nothing yet; the secret pasted into Settings, never shown back; an event signed as Clerk
    signs it (the standardwebhooks library) and posted to that very URL is received once, its
    retry answered as a duplicate, a bad signature refused, and the page says both; uninstalled,
    the URL is gone."""
    import base64
    import json
    import secrets as random
    from datetime import datetime, timezone

    from standardwebhooks.webhooks import Webhook

    d, p = browser, Pages(browser, shots, "inbound")
    p.open_signed_in(server.base + "/marketplace/clerk-users")
    assert "Receiving URL" not in p.text(), "no URL before the install exists"
    p.press("Install")
    assert d.find_element(By.ID, "install-status").text == "Active"
    install_id = d.find_element(By.ID, "install-id").text
    url = d.find_element(By.CSS_SELECTOR, "code.inbound-url").text
    assert url == f"{server.base}/api/v1/inbound/{install_id}/standard-webhooks"
    assert "Receiving URL for Standard Webhooks events (Clerk, Svix, Resend)" in p.text()
    assert "the endpoint's signing secret (whsec_...) into the Clerk webhook signing secret setting" in p.text()
    waiting = d.find_element(By.ID, "inbound-waiting-standard-webhooks")
    assert "Not receiving yet" in waiting.text
    d.execute_script("arguments[0].scrollIntoView({block: 'center'})", waiting)
    p.check("app-receiving-url")

    body = json.dumps({"type": "user.created", "object": "event", "data": {"id": "user_2browser", "email_addresses": []}})
    secret = "whsec_" + base64.b64encode(random.token_bytes(32)).decode()

    def signed(with_secret):
        message_id = "msg_" + random.token_hex(12)
        now = datetime.now(tz=timezone.utc)
        return {"svix-id": message_id, "svix-timestamp": str(int(now.timestamp())),
                "svix-signature": Webhook(with_secret).sign(message_id, now, body), "Content-Type": "application/json"}

    early = requests.post(url, data=body, headers=signed(secret), timeout=10)
    assert early.status_code == 404 and early.json()["code"] == "not_found", early.text

    # Clerk shows the endpoint's secret; the admin pastes it into the install's settings.
    d.find_element(By.XPATH, "//summary[normalize-space()='Settings']").click()
    p.field("Clerk webhook signing secret").send_keys(secret)
    p.press("Save settings")
    assert "Settings saved." in p.text()
    assert not d.find_elements(By.ID, "inbound-waiting-standard-webhooks")
    assert secret not in d.page_source and secret[6:] not in d.page_source
    assert d.find_element(By.ID, "inbound-received-standard-webhooks").text == "No event received yet."
    p.check("app-receiving")

    # Disabled, the page says the URL refuses what is sent, and it does; enabled, it receives.
    p.press("Disable")
    notice = d.find_element(By.ID, "inbound-paused-standard-webhooks")
    assert "Not receiving while the app is disabled" in notice.text
    d.execute_script("arguments[0].scrollIntoView({block: 'center'})", notice)
    p.check("app-receiving-disabled")
    paused = requests.post(url, data=body, headers=signed(secret), timeout=10)
    assert paused.status_code == 404 and paused.json()["code"] == "not_found", paused.text
    p.press("Enable")
    assert not d.find_elements(By.ID, "inbound-paused-standard-webhooks")

    headers = signed(secret)
    first = requests.post(url, data=body, headers=headers, timeout=10)
    assert first.status_code == 200 and first.json()["duplicate"] is False, first.text
    again = requests.post(url, data=body, headers=headers, timeout=10)
    assert again.status_code == 200 and again.json() == {"id": first.json()["id"], "duplicate": True}, again.text
    forged = requests.post(url, data=body, headers=signed("whsec_" + base64.b64encode(random.token_bytes(32)).decode()), timeout=10)
    assert forged.status_code == 401 and forged.json()["code"] == "invalid_signature", forged.text
    assert secret not in forged.text

    # The page says what the URL last got: the event, and the forged request refused after it.
    p.open_signed_in(server.base + "/marketplace/clerk-users")
    received = d.find_element(By.ID, "inbound-received-standard-webhooks")
    assert received.text.startswith("Last event received ") and received.text.endswith(": user.created."), received.text
    refused = d.find_element(By.ID, "inbound-refused-standard-webhooks")
    assert "Last request refused" in refused.text and "(invalid_signature)" in refused.text, refused.text
    assert "check that the Clerk webhook signing secret setting holds the endpoint's signing secret (whsec_...)" in refused.text, refused.text
    assert secret not in d.page_source and secret[6:] not in d.page_source
    d.execute_script("arguments[0].scrollIntoView({block: 'center'})", refused)
    p.check("app-receiving-status")

    # Uninstalled, the address receives nothing and the page no longer offers it.
    p.navigates(lambda: d.find_element(By.LINK_TEXT, "Uninstall").click())
    p.press("Yes, uninstall")
    assert "The app is uninstalled" in p.text() and "Receiving URL" not in p.text()
    gone = requests.post(url, data=body, headers=signed(secret), timeout=10)
    assert gone.status_code == 404 and gone.json()["code"] == "not_found", gone.text
