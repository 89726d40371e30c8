"""Self-tests of the interop peers: each peer runs as a subprocess, exactly as the Swift-driven
interop tests start it, and is driven with real clients (`requests`, `standardwebhooks`)."""
import base64
import hashlib
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from standardwebhooks.webhooks import Webhook

HERE = os.path.dirname(os.path.abspath(__file__))


def start_peer(script, *args):
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, script), "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()  # the peer prints exactly this line once it is bound
    if not line.startswith("LISTENING "):
        proc.kill()
        raise RuntimeError(f"{script} did not start: {line!r} {proc.stderr.read()[-2000:]}")
    return proc, f"http://127.0.0.1:{int(line.split()[1])}"


def stop_peer(proc):
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def new_secret():
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


# ---------------------------------------------------------------- webhook receiver

SECRET = new_secret()


@pytest.fixture(scope="module")
def receiver():
    proc, base = start_peer("webhook_receiver.py", "--secret", SECRET)
    yield base
    stop_peer(proc)
    assert SECRET not in proc.stdout.read() + proc.stderr.read()


@pytest.fixture
def rx(receiver):
    """The receiver with fresh stats, in "ok" mode, knowing only SECRET."""
    r = requests.post(receiver + "/_reset", json={"mode": "ok", "secrets": [SECRET]}, timeout=5)
    assert r.status_code == 200
    return receiver


def signed(event_type="app.installed", msg_id=None, secrets_=(SECRET,), body=None):
    """Body and Standard Webhooks headers; several secrets give a rotation-style header."""
    msg_id = msg_id or "msg_" + secrets.token_hex(8)
    body = body or json.dumps({"type": event_type, "timestamp": "2024-01-01T00:00:00Z",
                               "data": {"install_id": "in_1"}})
    now = datetime.now(tz=timezone.utc)
    sigs = " ".join(Webhook(s).sign(msg_id, now, body) for s in secrets_)
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp())),
               "webhook-signature": sigs, "content-type": "application/json"}
    return body, headers


def deliver(base, body, headers, path="/hooks", timeout=5):
    return requests.post(base + path, data=body.encode(), headers=headers, timeout=timeout)


def stats(base):
    return requests.get(base + "/_stats", timeout=5).json()


def control(base, **body):
    r = requests.post(base + "/_control", json=body, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


def test_receiver_verifies_with_both_libraries_and_counts_duplicates(rx):
    body, headers = signed("app.installed", msg_id="msg_dup")
    assert deliver(rx, body, headers).json() == {"ok": True}
    assert deliver(rx, body, headers).status_code == 200  # a retry of the same message
    body2, headers2 = signed("install.upgraded")
    assert deliver(rx, body2, headers2, path="/other").status_code == 200

    s = stats(rx)
    assert s["received"] == 3
    assert s["verified_standardwebhooks"] == 3 and s["verified_svix"] == 3
    assert s["unverified"] == 0
    assert s["unique_ids"] == 2 and s["duplicates"] == 1
    assert s["ids"]["msg_dup"] == 2
    assert s["types"] == {"app.installed": 2, "install.upgraded": 1}
    last = s["deliveries"][-1]
    assert last["path"] == "/other" and last["type"] == "install.upgraded"
    assert last["mode"] == "ok" and last["status"] == 200
    assert last["webhook_timestamp"] == headers2["webhook-timestamp"]
    assert isinstance(last["arrived_monotonic"], float) and last["arrived_wall"] > 1e9
    assert SECRET not in json.dumps(s)


def test_receiver_rejects_tampered_body(rx):
    body, headers = signed()
    r = deliver(rx, body.replace("in_1", "in_2"), headers)
    assert r.status_code == 400
    s = stats(rx)
    assert s["unverified"] == 1 and s["verified_svix"] == 0 and s["verified_standardwebhooks"] == 0
    assert s["duplicates"] == 0


def test_receiver_rejects_unknown_secret_and_missing_headers(rx):
    body, headers = signed(secrets_=(new_secret(),))
    assert deliver(rx, body, headers).status_code == 400
    assert deliver(rx, body, {"content-type": "application/json"}).status_code == 400
    assert stats(rx)["unverified"] == 2


def test_receiver_secret_rotation(rx):
    old, new = SECRET, new_secret()
    body, headers = signed(secrets_=(new, old))  # the sender signs with both during a rotation
    for known in ([new], [old], [new, old]):
        control(rx, secrets=known)
        assert deliver(rx, body, headers).status_code == 200
    s = stats(rx)
    assert s["verified_standardwebhooks"] == 3 and s["verified_svix"] == 3
    per_secret = [(d["standardwebhooks_secrets"], d["svix_secrets"]) for d in s["deliveries"]]
    assert per_secret == [([0], [0]), ([0], [0]), ([0, 1], [0, 1])]
    assert s["settings"]["secrets_configured"] == 2 and "secrets" not in s["settings"]


def test_receiver_fail_modes(rx):
    control(rx, mode="fail", status=502)
    assert deliver(rx, *signed()).status_code == 502
    control(rx, mode="fail")
    assert deliver(rx, *signed()).status_code == 500

    control(rx, mode="429", retry_after=7)
    r = deliver(rx, *signed())
    assert r.status_code == 429 and r.headers["Retry-After"] == "7"
    control(rx, mode="503", retry_after=3)
    r = deliver(rx, *signed())
    assert r.status_code == 503 and r.headers["Retry-After"] == "3"
    control(rx, mode="503")
    assert "Retry-After" not in deliver(rx, *signed()).headers

    control(rx, mode="410")
    assert deliver(rx, *signed()).status_code == 410
    s = stats(rx)
    assert s["answered"] == {"502": 1, "500": 1, "429": 1, "503": 2, "410": 1}
    assert [d["mode"] for d in s["deliveries"]] == ["fail", "fail", "429", "503", "503", "410"]


def test_receiver_times_returns_to_ok(rx):
    control(rx, mode="503", times=2, retry_after=1)
    body, headers = signed(msg_id="msg_retry")
    assert [deliver(rx, body, headers).status_code for _ in range(3)] == [503, 503, 200]
    s = stats(rx)
    assert s["ids"]["msg_retry"] == 3 and s["duplicates"] == 0
    assert s["settings"]["mode"] == "ok" and s["settings"]["times"] is None
    assert deliver(rx, body, headers).status_code == 200
    assert stats(rx)["duplicates"] == 1  # delivered again after a 2xx


def test_receiver_hang_does_not_block_others(rx):
    control(rx, mode="hang", hang_seconds=2, times=1)
    body, headers = signed(msg_id="msg_hang")
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        deliver(rx, body, headers, timeout=0.5)
    # While the first request still hangs, the next one is served at once (times=1 is used up).
    r = deliver(rx, *signed())
    assert r.status_code == 200 and time.monotonic() - started < 1.5
    s = stats(rx)
    assert [d["mode"] for d in s["deliveries"]] == ["hang", "ok"]
    time.sleep(2)  # the hung request ends; its sender had given up, so no 2xx was seen
    assert deliver(rx, body, headers).status_code == 200
    assert stats(rx)["duplicates"] == 0

    # A sender that waits long enough gets the 2xx: its id then counts as delivered.
    control(rx, mode="hang", hang_seconds=0.3, times=1)
    body, headers = signed(msg_id="msg_slow")
    assert deliver(rx, body, headers, timeout=5).status_code == 200
    assert deliver(rx, body, headers).status_code == 200
    assert stats(rx)["duplicates"] == 1


def test_receiver_concurrent_deliveries(rx):
    results = []

    def send():
        results.append(deliver(rx, *signed("app.enabled")).status_code)

    threads = [threading.Thread(target=send) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 20
    s = stats(rx)
    assert s["received"] == 20 and s["unique_ids"] == 20 and s["types"] == {"app.enabled": 20}


def test_receiver_control_validation(rx):
    assert requests.post(rx + "/_control", json={"mode": "nope"}, timeout=5).status_code == 400
    assert requests.post(rx + "/_control", json={"secrets": ["not base64!"]},
                         timeout=5).status_code == 400
    assert requests.post(rx + "/_control", json={"mode": "fail", "times": 0},
                         timeout=5).status_code == 400
    assert stats(rx)["settings"]["mode"] == "ok"


# ---------------------------------------------------------------- OAuth server

CLIENT_ID, CLIENT_SECRET = "client_1", "s3cret-" + secrets.token_hex(8)
REDIRECT = "http://127.0.0.1:9/api/v1/oauth/callback"


@pytest.fixture(scope="module")
def oauth_server():
    proc, base = start_peer("oauth_server.py", "--client-id", CLIENT_ID, "--client-secret",
                            CLIENT_SECRET, "--redirect-uri", REDIRECT)
    yield base
    stop_peer(proc)
    assert CLIENT_SECRET not in proc.stdout.read() + proc.stderr.read()


@pytest.fixture
def oa(oauth_server):
    r = requests.post(oauth_server + "/_reset", json={"deny": False, "fail_refresh_with": None,
                                                      "refresh_delay_seconds": 0,
                                                      "access_token_ttl": 3600}, timeout=5)
    assert r.status_code == 200
    return oauth_server


def pkce_pair():
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def authorize(base, challenge, state="st_1", **extra):
    params = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT,
              "scope": "profile email", "state": state, "code_challenge": challenge,
              "code_challenge_method": "S256", **extra}
    r = requests.get(base + "/authorize", params=params, allow_redirects=False, timeout=5)
    return r


def callback_params(response):
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def token_request(base, basic=True, **form):
    if basic:
        return requests.post(base + "/token", data=form, auth=(CLIENT_ID, CLIENT_SECRET), timeout=10)
    form.update(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    return requests.post(base + "/token", data=form, timeout=10)


def connect(base, basic=True):
    verifier, challenge = pkce_pair()
    code = callback_params(authorize(base, challenge))["code"]
    r = token_request(base, basic, grant_type="authorization_code", code=code,
                      redirect_uri=REDIRECT, code_verifier=verifier)
    assert r.status_code == 200, r.text
    return r.json()


def refresh(base, refresh_token):
    return token_request(base, grant_type="refresh_token", refresh_token=refresh_token)


def userinfo(base, access_token):
    return requests.get(base + "/userinfo", headers={"Authorization": f"Bearer {access_token}"},
                        timeout=5)


def ostats(base):
    return requests.get(base + "/_stats", timeout=5).json()


def ocontrol(base, **body):
    r = requests.post(base + "/_control", json=body, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


def active(base):
    s = ostats(base)
    return s["active_access_tokens"], s["active_refresh_tokens"]


def test_oauth_code_flow_with_pkce(oa):
    before = active(oa)
    verifier, challenge = pkce_pair()
    params = callback_params(authorize(oa, challenge, state="xyz"))
    assert params["state"] == "xyz" and params["code"]
    r = token_request(oa, grant_type="authorization_code", code=params["code"],
                      redirect_uri=REDIRECT, code_verifier=verifier)
    assert r.status_code == 200, r.text
    tok = r.json()
    assert tok["token_type"].lower() == "bearer" and tok["expires_in"] == 3600
    assert tok["scope"] == "profile email" and tok["access_token"] and tok["refresh_token"]
    info = userinfo(oa, tok["access_token"])
    assert info.status_code == 200
    assert info.json() == {"sub": "u_1", "name": "Ada Example", "email": "ada@example.com",
                           "email_verified": True}
    # The code is single use; replaying it is rejected and revokes what it produced.
    r = token_request(oa, grant_type="authorization_code", code=params["code"],
                      redirect_uri=REDIRECT, code_verifier=verifier)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert userinfo(oa, tok["access_token"]).status_code == 401
    s = ostats(oa)
    assert (s["authorize_calls"], s["codes_issued"], s["code_exchanges"], s["code_exchanges_ok"],
            s["code_reuse_rejected"], s["userinfo_calls"], s["userinfo_ok"]) == (1, 1, 2, 1, 1, 2, 1)
    assert active(oa) == before


def test_oauth_client_secret_post(oa):
    tok = connect(oa, basic=False)
    assert userinfo(oa, tok["access_token"]).status_code == 200
    r = requests.post(oa + "/token", data={"grant_type": "refresh_token",
                                           "refresh_token": tok["refresh_token"],
                                           "client_id": CLIENT_ID, "client_secret": "wrong"},
                      timeout=5)
    assert r.json()["error"] == "invalid_client"


@pytest.mark.parametrize("verifier", ["wrong", None])
def test_oauth_pkce_verifier_required(oa, verifier):
    before = active(oa)
    _, challenge = pkce_pair()
    code = callback_params(authorize(oa, challenge))["code"]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    if verifier:
        form["code_verifier"] = pkce_pair()[0]  # well-formed, but for another challenge
    r = token_request(oa, **form)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    s = ostats(oa)
    assert s["pkce_failures"] == 1 and s["code_exchanges_ok"] == 0
    assert active(oa) == before


def test_oauth_authorize_requires_s256_and_exact_redirect(oa):
    verifier, challenge = pkce_pair()
    err = callback_params(authorize(oa, verifier, code_challenge_method="plain"))
    assert err["error"] == "invalid_request"
    r = authorize(oa, challenge, redirect_uri=REDIRECT + "/x")
    assert r.status_code == 400 and "Location" not in r.headers  # never redirected elsewhere
    r = authorize(oa, challenge, client_id="someone-else")
    assert r.status_code == 400 and "Location" not in r.headers


def test_oauth_refresh_rotation(oa):
    before = active(oa)
    first = connect(oa)
    r = refresh(oa, first["refresh_token"])
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["expires_in"] == 3600 and second["scope"] == "profile email"
    r = refresh(oa, first["refresh_token"])  # the spent token again
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    r = refresh(oa, second["refresh_token"])
    assert r.status_code == 200
    assert userinfo(oa, r.json()["access_token"]).status_code == 200
    s = ostats(oa)
    assert (s["refresh_calls"], s["refresh_ok"], s["refresh_reuse_rejected"]) == (3, 2, 1)
    assert active(oa) == (before[0] + 3, before[1] + 1)  # access tokens live until they expire


def test_oauth_concurrent_refresh_only_one_wins(oa):
    tok = connect(oa)
    ocontrol(oa, refresh_delay_seconds=0.5)
    results = []

    def go():
        results.append(refresh(oa, tok["refresh_token"]).status_code)

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200, 400, 400, 400]
    s = ostats(oa)
    assert s["refresh_ok"] == 1 and s["refresh_reuse_rejected"] == 3


def test_oauth_expiry_and_ttl(oa):
    ocontrol(oa, access_token_ttl=1)
    tok = connect(oa)
    assert tok["expires_in"] == 1
    time.sleep(1.2)
    assert userinfo(oa, tok["access_token"]).status_code == 401
    ocontrol(oa, access_token_ttl=3600)
    tok = connect(oa)
    assert userinfo(oa, tok["access_token"]).status_code == 200
    assert requests.post(oa + "/_expire_all", timeout=5).status_code == 200
    assert userinfo(oa, tok["access_token"]).status_code == 401
    new = refresh(oa, tok["refresh_token"]).json()
    assert userinfo(oa, new["access_token"]).status_code == 200


def test_oauth_revocation(oa):
    before = active(oa)
    tok = connect(oa)
    auth = (CLIENT_ID, CLIENT_SECRET)
    r = requests.post(oa + "/revoke", data={"token": tok["access_token"],
                                            "token_type_hint": "access_token"}, auth=auth, timeout=5)
    assert r.status_code == 200
    assert userinfo(oa, tok["access_token"]).status_code == 401
    new = refresh(oa, tok["refresh_token"]).json()  # the refresh token survives
    assert userinfo(oa, new["access_token"]).status_code == 200
    r = requests.post(oa + "/revoke", data={"token": new["refresh_token"], "client_id": CLIENT_ID,
                                            "client_secret": CLIENT_SECRET}, timeout=5)
    assert r.status_code == 200
    assert userinfo(oa, new["access_token"]).status_code == 401  # same grant: revoked too
    r = refresh(oa, new["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    r = requests.post(oa + "/revoke", data={"token": "unknown"}, auth=auth, timeout=5)
    assert r.status_code == 200  # RFC 7009: unknown tokens are not an error
    assert userinfo(oa, "").status_code == 401
    s = ostats(oa)
    assert (s["revocation_calls"], s["revocations"], s["refresh_revoked_rejected"]) == (3, 2, 1)
    assert active(oa) == before


def test_oauth_deny(oa):
    _, challenge = pkce_pair()
    err = callback_params(authorize(oa, challenge, state="s1", deny="1"))
    assert err["error"] == "access_denied" and err["state"] == "s1" and "code" not in err
    ocontrol(oa, deny=True)
    err = callback_params(authorize(oa, challenge, state="s2"))
    assert err["error"] == "access_denied" and err["state"] == "s2" and "code" not in err
    s = ostats(oa)
    assert s["authorize_denied"] == 2 and s["codes_issued"] == 0


def test_oauth_injected_refresh_failures(oa):
    tok = connect(oa)
    ocontrol(oa, fail_refresh_with="server_error", times=2)
    for _ in range(2):
        r = refresh(oa, tok["refresh_token"])
        assert r.status_code == 503 and r.json()["error"] == "server_error"
    r = refresh(oa, tok["refresh_token"])  # the transient failure is over; the token still works
    assert r.status_code == 200
    tok = r.json()

    ocontrol(oa, fail_refresh_with="invalid_grant")
    for _ in range(2):  # without "times" it persists
        r = refresh(oa, tok["refresh_token"])
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert ostats(oa)["controls"]["fail_refresh_with"] == "invalid_grant"
    ocontrol(oa, fail_refresh_with=None)
    assert refresh(oa, tok["refresh_token"]).status_code == 200
    s = ostats(oa)
    assert (s["refresh_calls"], s["refresh_ok"], s["refresh_failures_injected"]) == (6, 2, 4)
    assert s["refresh_reuse_rejected"] == 0


def test_oauth_token_auth_method_restriction():
    proc, base = start_peer("oauth_server.py", "--client-id", CLIENT_ID, "--client-secret",
                            CLIENT_SECRET, "--redirect-uri", REDIRECT,
                            "--token-auth-method", "client_secret_post", "--access-token-ttl", "60")
    try:
        verifier, challenge = pkce_pair()
        code = callback_params(authorize(base, challenge))["code"]
        form = dict(grant_type="authorization_code", code=code, redirect_uri=REDIRECT,
                    code_verifier=verifier)
        assert token_request(base, basic=True, **form).json()["error"] == "invalid_client"
        r = token_request(base, basic=False, **form)
        assert r.status_code == 200 and r.json()["expires_in"] == 60
    finally:
        stop_peer(proc)
