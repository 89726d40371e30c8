"""CONTRACT §9, issue 20's story over real HTTP with `requests`: a service account gets a
read-only, installs-only token limited to 1,000 requests an hour, sees its RateLimit headers,
is refused a write, shows in the usage log, and is revoked."""
import os
import secrets
import tempfile
import time
import uuid

import requests
from conftest import Server, free_port, serve, stop


def test_a_read_only_installs_token_limited_to_1000_an_hour(server):
    org, owner = server.org("Tokens story " + uuid.uuid4().hex[:6], plan="free")
    made = server.call("POST", f"/api/v1/orgs/{org}/tokens", owner,
                       {"name": "reporting bot", "role": "admin", "scopes": ["installs:read"], "hourly_limit": 1000})
    assert made.status_code == 201, made.text
    assert made.headers["Mercato-API-Version"] == "1"
    body = made.json()
    token, token_id = body["token"], body["id"]
    assert body["scopes"] == ["installs:read"] and body["hourly_limit"] == 1000

    # Reads work and announce the allowance.
    read = server.call("GET", "/api/v1/installs", token)
    assert read.status_code == 200, read.text
    assert read.headers["RateLimit-Limit"] == "1000"
    assert read.headers["RateLimit-Remaining"] == "999"
    assert 1 <= int(read.headers["RateLimit-Reset"]) <= 3600
    assert read.headers["Mercato-API-Version"] == "1"

    # A write is outside its scopes, whatever the role would allow; the answer still counts.
    write = server.call("POST", "/api/v1/installs", token, {"app": "anything", "config": {}})
    assert write.status_code == 403, write.text
    assert write.headers["Content-Type"] == "application/problem+json"
    problem = write.json()
    assert problem["code"] == "token_scope_missing" and "installs:write" in problem["detail"]
    assert write.headers["RateLimit-Remaining"] == "998"
    catalog = server.call("GET", "/api/v1/apps", token)
    assert catalog.status_code == 403 and "apps:read" in catalog.json()["detail"]

    # The owner sees the token's usage (newest first) and its last use.
    rows = []
    for _ in range(50):
        usage = server.call("GET", f"/api/v1/orgs/{org}/tokens/{token_id}/usage", owner)
        assert usage.status_code == 200, usage.text
        rows = usage.json()["data"]
        if len(rows) >= 3:
            break
        time.sleep(0.1)
    assert [(r["method"], r["path"], r["status"]) for r in rows] == [
        ("GET", "/api/v1/apps", 403), ("POST", "/api/v1/installs", 403), ("GET", "/api/v1/installs", 200)]
    assert rows[2]["request_id"] == read.headers["X-Request-Id"]
    listed = [t for t in server.call("GET", f"/api/v1/orgs/{org}/tokens", owner).json()["data"] if t["id"] == token_id]
    assert listed[0]["last_used_at"] is not None and "token" not in listed[0]

    # Revoked: the next request is 401.
    assert server.call("DELETE", f"/api/v1/orgs/{org}/tokens/{token_id}", owner).status_code == 204
    gone = server.call("GET", "/api/v1/installs", token)
    assert gone.status_code == 401 and gone.json()["code"] == "unauthenticated"


def test_idempotency_key_replays_a_token_creation(server):
    org, owner = server.org("Idempotent " + uuid.uuid4().hex[:6])
    key = {"Idempotency-Key": "create-" + uuid.uuid4().hex}
    first = server.call("POST", f"/api/v1/orgs/{org}/tokens", owner, {"name": "ci", "role": "member"}, headers=key)
    again = server.call("POST", f"/api/v1/orgs/{org}/tokens", owner, {"name": "ci", "role": "member"}, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json() == first.json()
    other = server.call("POST", f"/api/v1/orgs/{org}/tokens", owner, {"name": "ci", "role": "admin"}, headers=key)
    assert other.status_code == 409 and other.json()["code"] == "idempotency_conflict"


def test_usage_rows_of_the_last_requests_are_stored_when_the_server_stops():
    """The usage log gathers its rows for a moment before it commits them; a SIGTERM right
    after the last answer still stores every row (the log is flushed after the HTTP server
    stopped and before storage closes), as the restarted server shows."""
    data = tempfile.mkdtemp(prefix="mercato-interop-usage-")
    operator = "op-" + secrets.token_urlsafe(32)
    env = dict(os.environ, MERCATO_DATA_DIR=data, MERCATO_PORT=str(free_port()), MERCATO_OPERATOR_TOKEN=operator,
               MERCATO_CATALOG_DIR="none", MERCATO_LOG_LEVEL="warning")
    if os.environ.get("MERCATO_INTEROP_DATABASE_URL"):
        env["DATABASE_URL"] = os.environ["MERCATO_INTEROP_DATABASE_URL"]
    proc, base = serve(os.environ["MERCATO_BIN"], env)
    server = Server(base, operator)
    org, owner = server.org("Usage at stop " + secrets.token_hex(3), plan="free")
    made = server.call("POST", f"/api/v1/orgs/{org}/tokens", owner, {"name": "burst", "role": "member", "scopes": ["installs:read"]})
    assert made.status_code == 201, made.text
    made = made.json()
    session = requests.Session()
    answered = [session.get(f"{base}/api/v1/installs", headers={"Authorization": f"Bearer {made['token']}"}, timeout=30).status_code
                for _ in range(120)]
    assert answered == [200] * 120
    stop(proc)

    proc, base = serve(os.environ["MERCATO_BIN"], env)
    try:
        server = Server(base, operator)
        rows, cursor = [], None
        while True:
            page = server.call("GET", f"/api/v1/orgs/{org}/tokens/{made['id']}/usage?limit=100" + (f"&cursor={cursor}" if cursor else ""), owner)
            assert page.status_code == 200, page.text
            rows += page.json()["data"]
            cursor = page.json().get("next_cursor")
            if not cursor:
                break
        assert len(rows) == 120 and all(r["status"] == 200 for r in rows)
    finally:
        stop(proc)
