#!/usr/bin/env python3
"""OAuth 2 authorization server peer for Mercato's interop tests (CONTRACT.md section 6).

Built with Authlib's Flask integration, in memory, for one confidential client. Tests start it as a
subprocess, read the single stdout line ``LISTENING <port>`` and configure a Mercato OAuth provider
with http://127.0.0.1:<port>/authorize, /token, /revoke and /userinfo:

    python3 oauth_server.py --port 0 --client-id ID --client-secret S \
        --redirect-uri http://127.0.0.1:<mercato>/api/v1/oauth/callback

Behaviour:
  GET  /authorize  no login UI: user u_1 "Ada Example" approves at once (302 to the redirect URI
                   with code and state). `deny=1` in the query, or control "deny", answers
                   error=access_denied instead. The redirect_uri must be sent and match exactly;
                   PKCE with code_challenge_method=S256 is required.
  POST /token      authorization_code (a missing or wrong code_verifier is invalid_grant; a code
                   is single use, and replaying one revokes the tokens it produced) and
                   refresh_token (every refresh rotates: a new refresh token is issued and the
                   presented one is spent at once, atomically, so a reused or concurrently reused
                   refresh token answers invalid_grant). Client auth: client_secret_basic and
                   client_secret_post, or only the one given by --token-auth-method.
  POST /revoke     RFC 7009. Revoking a refresh token also revokes every access token of the
                   same grant; revoking an access token revokes only it.
  GET  /userinfo   Bearer access token -> {"sub": "u_1", "name": "Ada Example", "email": ...};
                   a missing, expired or revoked token answers 401.

Test controls (JSON):
  GET  /_stats       counters (see Store.COUNTERS) plus active_access_tokens, active_refresh_tokens
                     and the current controls
  POST /_control     {"deny": bool, "access_token_ttl": seconds, "fail_refresh_with": error code
                     or null, "fail_refresh_status": int (default 503 for server_error and
                     temporarily_unavailable, 401 for invalid_client, else 400), "times": n (the
                     failure applies to the next n refresh requests only),
                     "refresh_delay_seconds": float (sleep in the refresh handler after the old
                     refresh token is spent and before the answer, to widen race windows)}
  GET  /_issued      every access and refresh token text issued so far (for tests that search
                     logs, answers and events for leaked tokens)
  POST /_expire_all  every access token issued so far becomes expired
  POST /_reset       clears the counters (tokens are kept); an optional body is applied as /_control

Injected refresh failures happen before the refresh token is looked at, so it stays valid.
Tokens and the client secret are never printed or logged.
"""
import argparse
import collections
import hmac
import logging
import os
import sys
import threading
import time
import uuid

# This peer only ever listens on loopback over plain HTTP; Authlib refuses http:// without this.
os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")

from authlib.common.security import generate_token  # noqa: E402
from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector  # noqa: E402
from authlib.oauth2 import OAuth2Error  # noqa: E402
from authlib.oauth2.rfc6749 import (  # noqa: E402
    AuthorizationCodeMixin, ClientMixin, InvalidGrantError, InvalidRequestError, TokenMixin, grants)
from authlib.oauth2.rfc6750 import BearerTokenGenerator, BearerTokenValidator  # noqa: E402
from authlib.oauth2.rfc7009 import RevocationEndpoint  # noqa: E402
from authlib.oauth2.rfc7636 import CodeChallenge  # noqa: E402
from authlib.oauth2.rfc7636.challenge import (  # noqa: E402
    CODE_VERIFIER_PATTERN, compare_s256_code_challenge)
from flask import Flask, jsonify, request  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

CODE_TTL = 600  # seconds an authorization code stays usable
BOTH_METHODS = ["client_secret_basic", "client_secret_post"]


class User:
    id = "u_1"
    profile = {"sub": "u_1", "name": "Ada Example", "email": "ada@example.com",
               "email_verified": True}

    def get_user_id(self):
        return self.id


USER = User()


class Client(ClientMixin):
    def __init__(self, client_id, client_secret, redirect_uri, auth_methods, default_scope):
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.auth_methods = auth_methods
        self.default_scope = default_scope

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return None  # the client must always send redirect_uri

    def get_allowed_scope(self, scope):
        return scope or self.default_scope  # any scope is granted as asked

    def check_redirect_uri(self, redirect_uri):
        return redirect_uri == self.redirect_uri

    def check_client_secret(self, client_secret):
        return hmac.compare_digest(client_secret.encode(), self.client_secret.encode())

    def check_endpoint_auth_method(self, method, endpoint):
        return method in self.auth_methods

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type in ("authorization_code", "refresh_token")


class AuthCode(AuthorizationCodeMixin):
    def __init__(self, code, client_id, redirect_uri, scope, challenge, challenge_method):
        self.code = code
        self.client_id = client_id
        self.redirect_uri = redirect_uri
        self.scope = scope
        self.code_challenge = challenge
        self.code_challenge_method = challenge_method
        self.created = time.time()
        self.used = False
        self.grant_id = uuid.uuid4().hex  # shared by every token descending from this code

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope


class TokenRecord(TokenMixin):
    """One token response: an access token and its refresh token."""

    def __init__(self, token, client_id, grant_id):
        self.access_token = token["access_token"]
        self.refresh_token = token.get("refresh_token")
        self.scope = token.get("scope", "")
        self.expires_in = int(token.get("expires_in", 0))
        self.issued_at = time.time()
        self.client_id = client_id
        self.grant_id = grant_id
        self.access_revoked = False
        self.forced_expired = False
        self.refresh_state = "active"  # active | rotated | revoked

    def check_client(self, client):
        return client.client_id == self.client_id

    def get_scope(self):
        return self.scope

    def get_expires_in(self):
        return self.expires_in

    def is_expired(self):
        return self.forced_expired or time.time() >= self.issued_at + self.expires_in

    def is_revoked(self):
        return self.access_revoked

    def get_user(self):
        return USER

    def get_client(self):
        return STORE.client


class Store:
    """All server state, guarded by one lock."""

    COUNTERS = ("authorize_calls", "authorize_denied", "codes_issued", "code_exchanges",
                "code_exchanges_ok", "code_reuse_rejected", "pkce_failures", "refresh_calls",
                "refresh_ok", "refresh_reuse_rejected", "refresh_revoked_rejected",
                "refresh_unknown_rejected", "refresh_failures_injected", "revocation_calls",
                "revocations", "userinfo_calls", "userinfo_ok")

    def __init__(self):
        self.lock = threading.RLock()
        self.client = None
        self.codes = {}
        self.by_access = {}
        self.by_refresh = {}
        self.counters = collections.Counter()
        self.deny = False
        self.access_token_ttl = 3600
        self.fail_refresh_with = None
        self.fail_refresh_status = None
        self.fail_refresh_times = None
        self.refresh_delay_seconds = 0.0

    def bump(self, name):
        with self.lock:
            self.counters[name] += 1

    def controls(self):
        return {"deny": self.deny, "access_token_ttl": self.access_token_ttl,
                "fail_refresh_with": self.fail_refresh_with,
                "fail_refresh_status": self.fail_refresh_status,
                "times": self.fail_refresh_times,
                "refresh_delay_seconds": self.refresh_delay_seconds}

    def apply_control(self, body):
        """Validate everything first, then apply; raises ValueError on bad input."""
        updates = {}
        if "deny" in body:
            updates["deny"] = bool(body["deny"])
        if "access_token_ttl" in body:
            ttl = int(body["access_token_ttl"])
            if ttl < 1:
                raise ValueError("access_token_ttl must be at least 1")
            updates["access_token_ttl"] = ttl
        if "fail_refresh_with" in body:
            code = body["fail_refresh_with"]
            if code is not None and not (isinstance(code, str) and code):
                raise ValueError("fail_refresh_with must be an error code or null")
            updates["fail_refresh_with"] = code
            updates["fail_refresh_status"] = None
            updates["fail_refresh_times"] = None
        if body.get("fail_refresh_status") is not None:
            updates["fail_refresh_status"] = int(body["fail_refresh_status"])
        if body.get("times") is not None:
            times = body["times"]
            if not isinstance(times, int) or times < 1:
                raise ValueError("times must be a positive integer")
            updates["fail_refresh_times"] = times
        if "refresh_delay_seconds" in body:
            updates["refresh_delay_seconds"] = max(0.0, float(body["refresh_delay_seconds"] or 0))
        with self.lock:
            for name, value in updates.items():
                setattr(self, name, value)

    def take_refresh_failure(self):
        """The injected error for this refresh request, if any (consumes one of `times`)."""
        with self.lock:
            code = self.fail_refresh_with
            if code is None:
                return None
            status = self.fail_refresh_status or {
                "server_error": 503, "temporarily_unavailable": 503, "invalid_client": 401,
            }.get(code, 400)
            if self.fail_refresh_times is not None:
                self.fail_refresh_times -= 1
                if self.fail_refresh_times <= 0:
                    self.fail_refresh_with = self.fail_refresh_status = None
                    self.fail_refresh_times = None
            self.counters["refresh_failures_injected"] += 1
        return OAuth2Error(description="Injected failure.", status_code=status, error=code)

    def revoke_grant(self, grant_id):
        """Revoke every access and refresh token descending from one authorization."""
        with self.lock:
            for rec in self.by_access.values():
                if rec.grant_id == grant_id:
                    rec.access_revoked = True
                    if rec.refresh_state == "active":
                        rec.refresh_state = "revoked"

    def stats(self):
        with self.lock:
            out = {name: self.counters[name] for name in self.COUNTERS}
            out["active_access_tokens"] = sum(
                1 for r in self.by_access.values() if not r.is_revoked() and not r.is_expired())
            out["active_refresh_tokens"] = sum(
                1 for r in self.by_refresh.values() if r.refresh_state == "active")
            out["controls"] = self.controls()
        return out


STORE = Store()


class S256CodeChallenge(CodeChallenge):
    """PKCE, S256 only and mandatory even for confidential clients; every failure is invalid_grant."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        if not data.get("code_challenge") or data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("PKCE with code_challenge_method=S256 is required.")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant, result):
        verifier = grant.request.form.get("code_verifier")
        challenge = grant.request.authorization_code.code_challenge
        if not (verifier and CODE_VERIFIER_PATTERN.match(verifier)
                and compare_s256_code_challenge(verifier, challenge)):
            STORE.bump("pkce_failures")
            raise InvalidGrantError(description="PKCE verification failed.")


class CodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = BOTH_METHODS

    def save_authorization_code(self, code, req):
        data = req.payload.data
        with STORE.lock:
            STORE.codes[code] = AuthCode(code, req.client.client_id, req.payload.redirect_uri,
                                         req.scope, data.get("code_challenge"),
                                         data.get("code_challenge_method"))
            STORE.counters["codes_issued"] += 1

    def query_authorization_code(self, code, client):
        # Claimed atomically: of two concurrent exchanges only one can proceed. A failed
        # exchange (e.g. a wrong code_verifier) also spends the code.
        with STORE.lock:
            auth_code = STORE.codes.get(code)
            if auth_code is None or auth_code.client_id != client.client_id:
                return None
            if auth_code.used:
                STORE.counters["code_reuse_rejected"] += 1
                STORE.revoke_grant(auth_code.grant_id)  # RFC 6749 section 4.1.2
                return None
            if time.time() > auth_code.created + CODE_TTL:
                return None
            auth_code.used = True
            return auth_code

    def delete_authorization_code(self, authorization_code):
        pass  # kept (marked used) so that a replay can be recognised

    def authenticate_user(self, authorization_code):
        return USER

    def validate_token_request(self):
        STORE.bump("code_exchanges")
        super().validate_token_request()

    def create_token_response(self):
        result = super().create_token_response()
        STORE.bump("code_exchanges_ok")
        return result


class RotatingRefreshGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = BOTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def validate_token_request(self):
        STORE.bump("refresh_calls")
        failure = STORE.take_refresh_failure()
        if failure is not None:
            raise failure
        super().validate_token_request()  # spends the presented refresh token
        with STORE.lock:
            delay = STORE.refresh_delay_seconds
        if delay:
            time.sleep(delay)

    def authenticate_refresh_token(self, refresh_token):
        with STORE.lock:
            rec = STORE.by_refresh.get(refresh_token)
            if rec is None or rec.client_id != self.request.client.client_id:
                STORE.counters["refresh_unknown_rejected"] += 1
                return None
            if rec.refresh_state == "rotated":
                STORE.counters["refresh_reuse_rejected"] += 1
                return None
            if rec.refresh_state == "revoked":
                STORE.counters["refresh_revoked_rejected"] += 1
                return None
            rec.refresh_state = "rotated"  # check-and-spend in one step
            return rec

    def authenticate_user(self, refresh_token):
        return USER

    def revoke_old_credential(self, refresh_token):
        pass  # already spent in authenticate_refresh_token

    def create_token_response(self):
        result = super().create_token_response()
        STORE.bump("refresh_ok")
        return result


class Revocation(RevocationEndpoint):
    CLIENT_AUTH_METHODS = BOTH_METHODS

    def query_token(self, token_string, token_type_hint):
        # The hint only orders the look-up (RFC 7009 section 2.1).
        with STORE.lock:
            STORE.counters["revocation_calls"] += 1
            tables = [STORE.by_access, STORE.by_refresh]
            if token_type_hint == "refresh_token":
                tables.reverse()
            for table in tables:
                if token_string in table:
                    return table[token_string]
        return None

    def revoke_token(self, token, req):
        with STORE.lock:
            STORE.counters["revocations"] += 1
            if token.refresh_token is not None and req.form.get("token") == token.refresh_token:
                STORE.revoke_grant(token.grant_id)
            else:
                token.access_revoked = True


class AccessTokenValidator(BearerTokenValidator):
    def authenticate_token(self, token_string):
        with STORE.lock:
            return STORE.by_access.get(token_string)


def query_client(client_id):
    client = STORE.client
    return client if client is not None and client_id == client.client_id else None


def save_token(token, req):
    parent = req.refresh_token or req.authorization_code  # the grant this token continues
    rec = TokenRecord(token, req.client.client_id, parent.grant_id)
    with STORE.lock:
        STORE.by_access[rec.access_token] = rec
        if rec.refresh_token:
            STORE.by_refresh[rec.refresh_token] = rec


def create_app():
    app = Flask(__name__)
    server = AuthorizationServer(app, query_client=query_client, save_token=save_token)
    server.register_token_generator("default", BearerTokenGenerator(
        access_token_generator=lambda **_: generate_token(42),
        refresh_token_generator=lambda **_: generate_token(48),
        expires_generator=lambda client, grant_type: STORE.access_token_ttl))
    server.register_grant(CodeGrant, [S256CodeChallenge(required=True)])
    server.register_grant(RotatingRefreshGrant)
    server.register_endpoint(Revocation)
    protector = ResourceProtector()
    protector.register_token_validator(AccessTokenValidator())

    @app.get("/authorize")
    def authorize():
        STORE.bump("authorize_calls")
        with STORE.lock:
            deny = STORE.deny or request.args.get("deny") == "1"
        user = None if deny else USER
        try:
            grant = server.get_consent_grant(end_user=user)
        except OAuth2Error as error:
            return server.handle_error_response(None, error)
        if deny:
            STORE.bump("authorize_denied")
        return server.create_authorization_response(grant_user=user, grant=grant)

    @app.post("/token")
    def token():
        return server.create_token_response()

    @app.post("/revoke")
    def revoke():
        return server.create_endpoint_response(Revocation.ENDPOINT_NAME)

    @app.route("/userinfo", methods=["GET", "POST"])
    def userinfo():
        STORE.bump("userinfo_calls")
        try:
            protector.acquire_token()
        except OAuth2Error as error:  # missing, unknown, expired or revoked: 401 invalid_token
            protector.raise_error_response(error)
        STORE.bump("userinfo_ok")
        return jsonify(USER.profile)

    @app.get("/_stats")
    def stats():
        return jsonify(STORE.stats())

    def control_body():
        body = request.get_json(force=True, silent=True) if request.data else {}
        if not isinstance(body, dict):
            raise ValueError("body must be a JSON object")
        return body

    @app.post("/_control")
    def control():
        try:
            STORE.apply_control(control_body())
        except (ValueError, TypeError) as e:
            return jsonify(error=str(e)), 400
        with STORE.lock:
            return jsonify(STORE.controls())

    @app.post("/_reset")
    def reset():
        try:
            body = control_body()
            with STORE.lock:
                STORE.counters.clear()
                STORE.apply_control(body)
                return jsonify(STORE.controls())
        except (ValueError, TypeError) as e:
            return jsonify(error=str(e)), 400

    @app.get("/_issued")
    def issued():
        # For leak checks only: every token text this server handed out, so a test can search
        # logs, answers and events for them.
        with STORE.lock:
            return jsonify(access_tokens=sorted(STORE.by_access), refresh_tokens=sorted(STORE.by_refresh))

    @app.post("/_expire_all")
    def expire_all():
        with STORE.lock:
            for rec in STORE.by_access.values():
                rec.forced_expired = True
            return jsonify(expired=len(STORE.by_access))

    return app


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--client-id", default="mercato-test-client")
    parser.add_argument("--client-secret", default="mercato-test-secret")
    parser.add_argument("--redirect-uri", required=True, help="the only accepted redirect URI")
    parser.add_argument("--access-token-ttl", type=int, default=3600)
    parser.add_argument("--token-auth-method", choices=BOTH_METHODS,
                        help="accept only this client auth method (default: both)")
    parser.add_argument("--default-scope", default="profile email",
                        help="granted when the authorization request names no scope")
    args = parser.parse_args(argv)
    if args.access_token_ttl < 1:
        parser.error("--access-token-ttl must be at least 1")

    STORE.client = Client(args.client_id, args.client_secret, args.redirect_uri,
                          [args.token_auth_method] if args.token_auth_method else BOTH_METHODS,
                          args.default_scope)
    STORE.access_token_ttl = args.access_token_ttl
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no request lines on stderr

    server = make_server(args.host, args.port, create_app(), threaded=True)
    print(f"LISTENING {server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    sys.exit(main())
