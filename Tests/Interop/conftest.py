"""A live Mercato server for the interop tests: the built binary on a fresh data dir.

MERCATO_BIN names the binary; MERCATO_INTEROP_DATABASE_URL, when set, runs it on PostgreSQL.
"""
import base64
import os
import secrets
import sys
import tempfile

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "support"))
from mercato_process import free_port, serve, stop, wait_healthy  # noqa: E402,F401 (free_port, wait_healthy: for the tests)


class Server:
    def __init__(self, base, operator_token, sso_key=None, sso_ed_key=None):
        self.base = base
        self.operator = operator_token
        # The HS256 key of embedded sign-in (MERCATO_SSO_SECRET is whsec_ + its base64), and the
        # host's Ed25519 private key whose public half is MERCATO_SSO_PUBLIC_KEY.
        self.sso_key = sso_key
        self.sso_ed_key = sso_ed_key

    def call(self, method, path, token=None, json=None, headers=None, data=None):
        h = dict(headers or {})
        if token:
            h["Authorization"] = f"Bearer {token}"
        return requests.request(method, self.base + path, json=json, data=data, headers=h, timeout=30)

    def org(self, name, plan="enterprise"):
        org = self.call("POST", "/api/v1/orgs", self.operator, {"name": name, "plan": plan}).json()["id"]
        token = self.call("POST", f"/api/v1/orgs/{org}/tokens", self.operator, {"name": "owner", "role": "owner"}).json()["token"]
        return org, token


@pytest.fixture(scope="session")
def server():
    binary = os.environ["MERCATO_BIN"]
    data = tempfile.mkdtemp(prefix="mercato-interop-")
    port = free_port()
    operator = "op-" + secrets.token_urlsafe(32)
    sso_key = secrets.token_bytes(32)
    sso_ed_key = Ed25519PrivateKey.generate()
    sso_public = sso_ed_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    env = dict(os.environ, MERCATO_DATA_DIR=data, MERCATO_PORT=str(port), MERCATO_OPERATOR_TOKEN=operator,
               # The tamper tests send hundreds of refusals from one address; the per-address limit on
               # them is tested in GatewayTests.
               MERCATO_REFUSED_COMMANDS_BURST="100000",
               MERCATO_CATALOG_DIR="none", MERCATO_LOG_LEVEL="warning",
               MERCATO_SSO_SECRET="whsec_" + base64.b64encode(sso_key).decode(),
               MERCATO_SSO_PUBLIC_KEY=base64.b64encode(sso_public).decode())
    if os.environ.get("MERCATO_INTEROP_DATABASE_URL"):
        env["DATABASE_URL"] = os.environ["MERCATO_INTEROP_DATABASE_URL"]
    proc, base = serve(binary, env)
    yield Server(base, operator, sso_key, sso_ed_key)
    stop(proc)
