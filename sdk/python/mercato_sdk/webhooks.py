"""Verifying the events Mercato sends to an app's `webhook_url`."""
import hashlib
import hmac
import json
import re
import time
from typing import NamedTuple

from .signing import _nacl_signing, body_bytes, decode_public_key, decode_secret, signed_content, strict_b64decode

DEFAULT_TOLERANCE = 300
# More entries than a rotation needs are ignored: each v1a entry costs a signature check.
MAX_SIGNATURES = 16


class WebhookVerificationError(Exception):
    """A webhook that must not be trusted. `reason` is one of `missing_header`,
    `invalid_timestamp`, `timestamp_too_old`, `timestamp_too_new`, `no_credentials`,
    `invalid_signature`."""

    def __init__(self, reason, message):
        super().__init__(message)
        self.reason = reason


class VerifiedWebhook(NamedTuple):
    id: str
    timestamp: int
    body: bytes

    def json(self):
        return json.loads(self.body)


def _lower_headers(headers):
    items = headers.items() if hasattr(headers, "items") else headers
    return {str(k).lower(): v for k, v in items}


def _as_list(values):
    if values is None:
        return []
    if isinstance(values, (str, bytes, bytearray)):
        return [values]
    return list(values)


def verify_webhook(headers, body, *, secrets=(), public_keys=(), now=None, tolerance=DEFAULT_TOLERANCE):
    """Checks the `webhook-*` headers of a delivery against its raw `body`.

    Any one signature that verifies under one of `secrets` (`v1`) or `public_keys` (`v1a`)
    suffices, so during a rotation either secret works alone. The timestamp must be whole unix
    seconds within `tolerance` of `now` (default: this machine's clock). Dedupe on the
    returned `id`: deliveries are at least once. Raises `WebhookVerificationError`.
    """
    found = _lower_headers(headers)
    values = {}
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        value = found.get(name)
        if not value:
            raise WebhookVerificationError("missing_header", f"the {name} header is missing or empty")
        values[name] = value
    text = values["webhook-timestamp"]
    if not re.fullmatch(r"[0-9]{1,15}", text):
        raise WebhookVerificationError("invalid_timestamp", "webhook-timestamp is not unix seconds")
    timestamp, now = int(text), int(time.time() if now is None else now)
    if timestamp < now - tolerance:
        raise WebhookVerificationError("timestamp_too_old", f"webhook-timestamp is more than {tolerance} s in the past")
    if timestamp > now + tolerance:
        raise WebhookVerificationError("timestamp_too_new", f"webhook-timestamp is more than {tolerance} s in the future")
    keys = [decode_secret(s) for s in _as_list(secrets)]
    public = [decode_public_key(k) for k in _as_list(public_keys)]
    if not keys and not public:
        raise WebhookVerificationError("no_credentials", "no secret or public key to verify with")

    raw = body_bytes(body)
    content = signed_content(values["webhook-id"], text, raw)
    verified = VerifiedWebhook(values["webhook-id"], timestamp, raw)
    expected = [hmac.new(key, content, hashlib.sha256).digest() for key in keys]
    entries = [e for e in values["webhook-signature"].split(" ") if e][:MAX_SIGNATURES]
    for entry in entries:
        version, comma, encoded = entry.partition(",")
        signature = strict_b64decode(encoded) if comma else None
        if signature is None:
            continue
        if version == "v1":
            # Every secret is compared, so timing does not tell which one matched.
            if sum(hmac.compare_digest(mac, signature) for mac in expected):
                return verified
        elif version == "v1a" and public and _ed25519_verifies(public, content, signature):
            return verified
    raise WebhookVerificationError("invalid_signature", "no signature in webhook-signature matches")


def _ed25519_verifies(public_keys, content, signature):
    if len(signature) != 64:
        return False
    signing = _nacl_signing()
    import nacl.exceptions

    for key in public_keys:
        try:
            signing.VerifyKey(key).verify(content, signature)
            return True
        except (nacl.exceptions.BadSignatureError, ValueError):
            continue
    return False
