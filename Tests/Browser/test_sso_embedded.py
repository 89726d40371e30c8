"""The marketplace embedded in a host SaaS page (another origin of the same site, listed in
MERCATO_FRAME_ANCESTORS), its user signed in by a JWT minted with PyJWT (CONTRACT §8); then the
admin pages of round 2, /audit and /developer/docs, checked like every other page."""
import http.server
import threading
import time
import uuid
from urllib.parse import urlencode

import jwt
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from test_journeys import Pages


def mint(server, org, role="owner", **changes):
    now = int(time.time())
    claims = {"sub": "host-user-7", "email": "sam@host.example", "name": "Sam From The Host", "org": org, "role": role,
              "iat": now, "exp": now + 120, "jti": str(uuid.uuid4())}
    claims.update(changes)
    return jwt.encode(claims, server.sso_key, algorithm="HS256")


@pytest.fixture(scope="module")
def host_page(server):
    """The host SaaS: one page that frames whatever `frame` is set to."""
    state = {"frame": "about:blank"}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Host</title></head>'
                    f'<body><h1>Host SaaS</h1><iframe id="market" title="Marketplace" src="{state["frame"]}" '
                    f'width="1000" height="700"></iframe></body></html>').encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", server.host_port), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()


def test_embedded_marketplace_signs_the_host_user_in(server, browser, shots, host_page):
    d, p = browser, Pages(browser, shots, "embedded")
    org = server.call("POST", "/api/v1/orgs", server.operator, {"name": "Host Workspace", "plan": "enterprise"}).json()["id"]
    token = mint(server, org)
    host_page["frame"] = server.base + "/sso/jwt?" + urlencode({"token": token, "return_to": "/marketplace"})
    d.get(f"http://127.0.0.1:{server.host_port}/")
    d.switch_to.frame(d.find_element(By.ID, "market"))
    WebDriverWait(d, 10).until(lambda d: "Sam From The Host" in d.find_element(By.TAG_NAME, "body").text)
    assert d.execute_script("return location.pathname") == "/marketplace"
    assert "Host Workspace" in d.find_element(By.TAG_NAME, "header").text
    d.switch_to.default_content()
    d.save_screenshot(f"{shots}/embedded-00-host-page.png")

    # The same token again: a 401 page in the layout, and no session from it.
    d.delete_all_cookies()
    d.get(server.base + "/sso/jwt?" + urlencode({"token": token, "return_to": "/audit"}))
    assert "Sign-in link not accepted" in p.text()
    assert "already used" in p.text()
    p.check("replayed-token")
    assert d.get_cookie("mercato_session") is None

    # A fresh token, top level, straight to the audit trail (owner on enterprise: Export CSV).
    d.get(server.base + "/sso/jwt?" + urlencode({"token": mint(server, org), "return_to": "/audit"}))
    assert d.execute_script("return location.pathname") == "/audit"
    text = p.text()
    assert "member.signed_in_sso" in text or "Nothing recorded yet" in text
    assert d.find_element(By.LINK_TEXT, "Export CSV")
    p.check("audit")

    # The API reference, grouped by tag, with curl samples.
    p.navigates(lambda: d.find_element(By.LINK_TEXT, "Developer").click())
    p.navigates(lambda: d.find_element(By.LINK_TEXT, "API reference").click())
    assert d.execute_script("return location.pathname") == "/developer/docs"
    assert "curl -s -X POST" in p.text()
    p.check("developer-docs")

    # Leave the shared browser signed out for whatever runs next.
    d.delete_all_cookies()
