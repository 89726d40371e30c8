"""A live Mercato server and a headless Chromium (Debian's chromium + chromium-driver) for the
browser journeys.

MERCATO_BIN names the binary; MERCATO_BROWSER_DATABASE_URL, when set, runs it on PostgreSQL.
The server starts on an empty database, so it prints the first owner's invitation link and the
operator token, as `scripts/serve` does for a newcomer. Screenshots go to MERCATO_SCREENSHOTS
(default: a new temporary folder), printed at the start.
"""
import base64
import os
import re
import secrets
import subprocess
import sys
import tempfile

import pytest
import requests
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "Tests", "support"))
from mercato_process import free_port, serve, stop, wait_healthy  # noqa: E402,F401 (wait_healthy: for the tests)


class Server:
    def __init__(self, base, operator_token, owner_link, sso_key=None, host_port=None):
        self.base = base
        self.operator = operator_token
        self.owner_link = owner_link
        # Embedded sign-in: the HS256 key (MERCATO_SSO_SECRET), and the port of the host SaaS page
        # that MERCATO_FRAME_ANCESTORS lets frame the marketplace.
        self.sso_key = sso_key
        self.host_port = host_port

    def call(self, method, path, token=None, json=None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.request(method, self.base + path, json=json, headers=headers, timeout=30)


@pytest.fixture(scope="session")
def server():
    binary = os.environ["MERCATO_BIN"]
    data = tempfile.mkdtemp(prefix="mercato-browser-")
    port = free_port()
    host_port = free_port()
    sso_key = secrets.token_bytes(32)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MERCATO_") and k != "DATABASE_URL"}
    env.update(MERCATO_DATA_DIR=data, MERCATO_PORT=str(port), MERCATO_CATALOG_DIR=os.path.join(ROOT, "catalog"),
               MERCATO_LOG_LEVEL="warning", MERCATO_SSO_SECRET="whsec_" + base64.b64encode(sso_key).decode(),
               MERCATO_FRAME_ANCESTORS=f"http://127.0.0.1:{host_port}")
    if os.environ.get("MERCATO_BROWSER_DATABASE_URL"):
        env["DATABASE_URL"] = os.environ["MERCATO_BROWSER_DATABASE_URL"]
    out = open(os.path.join(data, "out.log"), "w+")
    proc, base = serve(binary, env, stdout=out)
    printed = open(os.path.join(data, "out.log")).read()
    operator = re.search(r"mct_[A-Za-z0-9_-]{43}", printed).group(0)
    link = re.search(r"http://\S+/invite/[A-Za-z0-9_-]+", printed).group(0)
    yield Server(base, operator, link, sso_key, host_port)
    stop(proc)


@pytest.fixture(scope="session")
def shots():
    folder = os.environ.get("MERCATO_SCREENSHOTS") or tempfile.mkdtemp(prefix="mercato-screens-")
    os.makedirs(folder, exist_ok=True)
    print(f"\nscreenshots: {folder}")
    return folder


@pytest.fixture(scope="session")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()
