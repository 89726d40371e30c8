"""Standard Webhooks signatures as Mercato uses them: `v1` is HMAC-SHA256 under a `whsec_`
secret, `v1a` is Ed25519; both sign `{webhook-id}.{webhook-timestamp}.{body}` as UTF-8 bytes."""
import base64
import binascii
import hashlib
import hmac
import re
import time
import uuid

WEBHOOK_ID = re.compile(r"[A-Za-z0-9_.-]{1,128}")
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


def new_webhook_id():
    """A fresh id for one command; reuse it on every retry of that command."""
    return "msg_" + uuid.uuid4().hex


def strict_b64decode(text):
    """Padded standard base64 only, or `None` (lenient decoders skip stray characters)."""
    if not isinstance(text, str) or not _BASE64.fullmatch(text):
        return None
    return base64.b64decode(text, validate=True)


def decode_secret(secret):
    """The key bytes of a `whsec_<base64>` secret (raw bytes are taken as they are)."""
    if isinstance(secret, (bytes, bytearray)):
        key = bytes(secret)
    elif isinstance(secret, str):
        text = secret[len("whsec_"):] if secret.startswith("whsec_") else secret
        # Unpadded secrets are common in the wild; padding is added rather than refused.
        key = strict_b64decode(text + "=" * (-len(text) % 4))
        if key is None:
            raise ValueError("the secret is not 'whsec_' followed by base64")
    else:
        raise TypeError("the secret must be a 'whsec_...' string or bytes")
    if not key:
        raise ValueError("the secret is empty")
    return key


def decode_public_key(key):
    """The 32 bytes of a `whpk_<base64>` public key (raw bytes and PyNaCl keys also work)."""
    if isinstance(key, (bytes, bytearray)):
        raw = bytes(key)
    elif isinstance(key, str):
        raw = strict_b64decode(key[len("whpk_"):] if key.startswith("whpk_") else key)
    else:
        raw = bytes(key)  # a nacl.signing.VerifyKey
    if raw is None or len(raw) != 32:
        raise ValueError("the public key is not 'whpk_' followed by the base64 of 32 bytes")
    return raw


def _nacl_signing():
    try:
        import nacl.signing
    except ImportError:
        raise ImportError("Ed25519 (v1a) signatures need PyNaCl: pip install pynacl") from None
    return nacl.signing


def _signing_key(key):
    signing = _nacl_signing()
    if isinstance(key, signing.SigningKey):
        return key
    seed = key if isinstance(key, (bytes, bytearray)) else strict_b64decode(key) if isinstance(key, str) else None
    if seed is None or len(seed) != 32:
        raise ValueError("the signing key must be a 32-byte Ed25519 seed (bytes or base64)")
    return signing.SigningKey(bytes(seed))


def body_bytes(body):
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")
    raise TypeError("the body must be the exact bytes (or text) sent, not a parsed object")


def signed_content(webhook_id, timestamp, body):
    return f"{webhook_id}.{timestamp}.".encode("utf-8") + body_bytes(body)


class CommandSigner:
    """Signs commands for one app: with its command secret (`v1`) or its Ed25519 key (`v1a`)."""

    def __init__(self, *, secret=None, signing_key=None):
        if (secret is None) == (signing_key is None):
            raise ValueError("give exactly one of secret (whsec_...) or signing_key (Ed25519 seed)")
        self._hmac_key = decode_secret(secret) if secret is not None else None
        self._ed25519 = _signing_key(signing_key) if signing_key is not None else None

    @property
    def scheme(self):
        return "v1" if self._hmac_key is not None else "v1a"

    @property
    def public_key(self):
        """`whpk_...` to register in the manifest's `command_signing` (v1a only)."""
        if self._ed25519 is None:
            return None
        return "whpk_" + base64.b64encode(bytes(self._ed25519.verify_key)).decode()

    def signature(self, webhook_id, timestamp, body):
        """The `webhook-signature` value (`v1,...` or `v1a,...`) for these exact inputs."""
        content = signed_content(webhook_id, timestamp, body)
        if self._hmac_key is not None:
            raw = hmac.new(self._hmac_key, content, hashlib.sha256).digest()
        else:
            raw = self._ed25519.sign(content).signature
        return f"{self.scheme},{base64.b64encode(raw).decode()}"

    def headers(self, body, *, webhook_id=None, timestamp=None):
        """The three `webhook-*` headers for `body`; a new id unless one is given."""
        webhook_id = new_webhook_id() if webhook_id is None else webhook_id
        if not WEBHOOK_ID.fullmatch(webhook_id):
            raise ValueError("webhook-id must be 1-128 characters of A-Z a-z 0-9 _ . -")
        timestamp = str(int(time.time()) if timestamp is None else int(timestamp))
        return {"webhook-id": webhook_id, "webhook-timestamp": timestamp,
                "webhook-signature": self.signature(webhook_id, timestamp, body)}

    def __repr__(self):
        return f"CommandSigner(scheme={self.scheme!r})"


def sign_command(body, *, secret=None, signing_key=None, webhook_id=None, timestamp=None):
    """The `webhook-*` headers for one command body (bytes or text, sent exactly as signed)."""
    return CommandSigner(secret=secret, signing_key=signing_key).headers(body, webhook_id=webhook_id, timestamp=timestamp)
