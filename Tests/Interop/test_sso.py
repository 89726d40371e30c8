"""Embedded sign-in (CONTRACT §8, GET /sso/jwt) with tokens minted by PyJWT, as a host SaaS would."""
import time
import uuid
import warnings

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def mint(key, org, algorithm="HS256", **changes):
    now = int(time.time())
    claims = {"sub": "host-42", "email": "kim@host.example", "name": "Kim Host", "org": org, "role": "admin",
              "iat": now, "exp": now + 120, "jti": str(uuid.uuid4())}
    claims.update(changes)
    return jwt.encode(claims, key, algorithm=algorithm)


def sso(server, token, return_to="/installs", cookies=None):
    return requests.get(server.base + "/sso/jwt", params={"token": token, "return_to": return_to},
                        allow_redirects=False, cookies=cookies, timeout=30)


def test_a_pyjwt_token_signs_the_person_in_once(server):
    org, _ = server.org("SSO interop")
    token = mint(server.sso_key, org)
    answer = sso(server, token)
    assert answer.status_code == 303, answer.text
    assert answer.headers["Location"] == "/installs"
    session = answer.cookies.get("mercato_session")
    assert session
    page = requests.get(server.base + "/installs", cookies={"mercato_session": session}, allow_redirects=False, timeout=30)
    assert page.status_code == 200
    assert "Kim Host" in page.text

    # Single use: the same token again is a 401 page that sets no session.
    replay = sso(server, token)
    assert replay.status_code == 401
    assert replay.headers["Content-Type"].startswith("text/html")
    assert "mercato_session" not in replay.cookies


def test_pyjwt_tokens_the_server_refuses(server):
    org, _ = server.org("SSO refusals")
    now = int(time.time())
    with warnings.catch_warnings():
        # PyJWT finds a 32-byte key short for HS512; the point here is the algorithm, not the key.
        warnings.simplefilter("ignore")
        hs512 = jwt.encode({"sub": "x", "email": "x@host.example", "name": "X", "org": org, "role": "member",
                            "iat": now, "exp": now + 60, "jti": str(uuid.uuid4())}, server.sso_key, algorithm="HS512")
    bad = {
        "another key": mint(b"k" * 32, org),
        "expired": mint(server.sso_key, org, iat=now - 400, exp=now - 100),
        "lives over 5 minutes": mint(server.sso_key, org, exp=now + 600),
        "unknown org": mint(server.sso_key, "org_nope"),
        "role outside the four": mint(server.sso_key, org, role="operator"),
        "HS512 with the right key": hs512,
    }
    for name, token in bad.items():
        answer = sso(server, token)
        assert answer.status_code == 401, name
        assert "mercato_session" not in answer.cookies, name


def test_return_to_off_this_origin_goes_to_the_marketplace(server):
    org, _ = server.org("SSO redirect")
    answer = sso(server, mint(server.sso_key, org), return_to="https://evil.example/")
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/marketplace"


def test_a_pyjwt_eddsa_token_verifies_with_the_registered_public_key(server):
    org, _ = server.org("SSO EdDSA")
    answer = sso(server, mint(server.sso_ed_key, org, algorithm="EdDSA", sub="host-ed"))
    assert answer.status_code == 303, answer.text
    assert answer.cookies.get("mercato_session")
    forged = sso(server, mint(Ed25519PrivateKey.generate(), org, algorithm="EdDSA", sub="host-ed"))
    assert forged.status_code == 401
    assert "mercato_session" not in forged.cookies
