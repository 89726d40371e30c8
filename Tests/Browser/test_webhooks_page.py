"""`/settings/webhooks` in headless Chromium: an org admin (signed in through the embedded
sign-in) adds an endpoint with a field error first, sees its signing secret once, finds it in the
list, rotates the secret, sends a test event, filters the deliveries and deletes the endpoint
after a confirmation; a member is refused the page. Every page is checked as in the journeys."""
import uuid
from urllib.parse import urlencode

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from test_journeys import Pages
from test_sso_embedded import mint

# A name that never resolves (RFC 6761 `.invalid`): accepted (a lookup failing now may pass later),
# and nothing ever leaves the machine.
ENDPOINT_URL = "https://hooks.mercato-browser.invalid/mercato"


def sign_in(server, d, org, role):
    token = mint(server, org, role=role, sub="hooks-" + uuid.uuid4().hex, email=f"{role}-{uuid.uuid4().hex[:8]}@host.example",
                 name=f"Webhook {role.title()}")
    d.get(server.base + "/sso/jwt?" + urlencode({"token": token, "return_to": "/settings/webhooks"}))


def test_an_admin_creates_an_endpoint_and_sees_its_secret_once(server, browser, shots):
    d, p = browser, Pages(browser, shots, "webhooks")
    org = server.call("POST", "/api/v1/orgs", server.operator, {"name": "Hooks Org", "plan": "pro"}).json()["id"]
    sign_in(server, d, org, "admin")
    assert d.current_url.startswith(server.base + "/settings/webhooks"), d.current_url
    assert "No endpoints yet." in p.text()
    assert d.find_element(By.XPATH, "//nav//a[normalize-space()='Webhooks']").get_attribute("aria-current") == "page"
    p.check("empty")

    # No event chosen: the problem is shown beside the events, what was typed is kept.
    p.field("URL").send_keys(ENDPOINT_URL)
    p.field("Description").send_keys("<b>CRM</b> sync")
    p.press("Add endpoint")
    assert d.find_element(By.ID, "webhook-events-error").text == "Choose at least one event."
    assert p.field("URL").get_attribute("value") == ENDPOINT_URL
    p.check("events-error")

    p.field("app.installed").click()
    p.field("task.created").click()
    p.press("Add endpoint")
    secret = d.find_element(By.ID, "secret-webhook").text
    assert secret.startswith("whsec_"), secret
    assert "shown on this page only" in p.text()
    assert d.find_element(By.CSS_SELECTOR, "button[data-copy='secret-webhook']").is_displayed()  # the script shows Copy
    p.check("secret-once")

    p.navigates(lambda: d.find_element(By.LINK_TEXT, "Continue to the endpoint").click())
    assert secret not in d.page_source
    assert ENDPOINT_URL in p.text() and "app.installed, task.created" in p.text()
    assert "<b>CRM</b> sync" in p.text(), "what an admin typed is shown as text"
    p.check("endpoint")
    endpoint = d.current_url.split("/settings/webhooks/")[1].split("?")[0]
    assert endpoint.startswith("whe_")

    # The list shows it, without the secret.
    d.get(server.base + "/settings/webhooks")
    assert ENDPOINT_URL in p.text() and secret not in d.page_source
    p.navigates(lambda: d.find_element(By.LINK_TEXT, ENDPOINT_URL).click())

    # Rotate: a new secret, shown once, with the overlap said.
    p.press("Rotate secret")
    rotated = d.find_element(By.ID, "secret-webhook").text
    assert rotated.startswith("whsec_") and rotated != secret
    assert "The previous secret keeps signing until" in p.text()
    p.check("rotated")
    p.navigates(lambda: d.find_element(By.LINK_TEXT, "Back to the endpoint").click())

    # A test event is queued and listed; the filter narrows the list.
    p.press("Send test event")
    assert "A webhook.test event is queued" in p.text()
    assert "webhook.test" in p.text()
    p.check("test-queued")
    p.navigates(lambda: Select(p.field("Status")).select_by_visible_text("Delivered"))  # the tiny script submits the filter
    assert "status=delivered" in d.current_url
    assert "No deliveries yet." in p.text()

    # Delete asks first; Cancel keeps it, Yes deletes it.
    d.get(server.base + f"/settings/webhooks/{endpoint}")
    p.navigates(lambda: d.find_element(By.LINK_TEXT, "Delete").click())
    assert "Delete this endpoint?" in p.text()
    p.check("delete-confirm")
    p.press("Yes, delete")
    assert "The endpoint is deleted." in p.text() and "No endpoints yet." in p.text()

    # A member of the same org is refused the page.
    sign_in(server, d, org, "member")
    assert "Webhooks" not in d.find_element(By.TAG_NAME, "nav").text
    assert "Managing webhook endpoints needs the admin role" in p.text(), p.text()
