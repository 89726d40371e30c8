"""The SDK against the outside libraries on random inputs: the Standard Webhooks reference
library for v1, PyNaCl for v1a."""
import base64
import random
import secrets
import string
import time
from datetime import datetime, timezone

import nacl.signing
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError as ReferenceError

from mercato_sdk import CommandSigner, WebhookVerificationError, sign_command, verify_webhook

RUNS = 200
ALPHABET = string.ascii_letters + string.digits + "_.-"
TEXT = string.printable + "äöüßéèñçåø東京大阪한국어🚀🎉\u2028\u00a0"


def random_case(rng):
    whsec = "whsec_" + base64.b64encode(rng.randbytes(rng.randint(16, 64))).decode()
    msg_id = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 128)))
    timestamp = int(time.time()) + rng.randint(-250, 250)
    body = "".join(rng.choice(TEXT) for _ in range(rng.randint(0, 400)))
    return whsec, msg_id, timestamp, body


def headers(msg_id, timestamp, signature):
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}


def test_v1_matches_the_reference_library_both_ways():
    rng = random.Random(20260101)
    for _ in range(RUNS):
        whsec, msg_id, timestamp, body = random_case(rng)
        reference = Webhook(whsec).sign(msg_id, datetime.fromtimestamp(timestamp, tz=timezone.utc), body)
        ours = sign_command(body, secret=whsec, webhook_id=msg_id, timestamp=timestamp)
        assert ours["webhook-signature"] == reference
        # Each side accepts what the other signed, and both refuse a changed body.
        Webhook(whsec).verify(body, ours, json_parse=False)
        verify_webhook(headers(msg_id, timestamp, reference), body, secrets=[whsec])
        changed = body + " "
        with pytest.raises(ReferenceError):
            Webhook(whsec).verify(changed, ours, json_parse=False)
        with pytest.raises(WebhookVerificationError):
            verify_webhook(headers(msg_id, timestamp, reference), changed, secrets=[whsec])


def test_v1_other_secret_refused_by_both():
    rng = random.Random(7)
    for _ in range(50):
        whsec, msg_id, timestamp, body = random_case(rng)
        other = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        signed = sign_command(body, secret=whsec, webhook_id=msg_id, timestamp=timestamp)
        with pytest.raises(ReferenceError):
            Webhook(other).verify(body, signed, json_parse=False)
        with pytest.raises(WebhookVerificationError) as raised:
            verify_webhook(signed, body, secrets=[other])
        assert raised.value.reason == "invalid_signature"


def test_v1a_matches_pynacl_both_ways():
    rng = random.Random(42)
    for _ in range(RUNS):
        _, msg_id, timestamp, body = random_case(rng)
        key = nacl.signing.SigningKey(rng.randbytes(32))
        content = f"{msg_id}.{timestamp}.{body}".encode()
        reference = "v1a," + base64.b64encode(key.sign(content).signature).decode()
        signer = CommandSigner(signing_key=bytes(key))
        ours = signer.signature(msg_id, timestamp, body)
        assert ours == reference
        key.verify_key.verify(content, base64.b64decode(ours[4:]))
        public = "whpk_" + base64.b64encode(bytes(key.verify_key)).decode()
        assert signer.public_key == public
        verify_webhook(headers(msg_id, timestamp, reference), body, public_keys=[public])


def test_signing_key_forms_agree():
    seed = secrets.token_bytes(32)
    forms = [seed, base64.b64encode(seed).decode(), nacl.signing.SigningKey(seed)]
    assert len({CommandSigner(signing_key=f).signature("a", 1, "{}") for f in forms}) == 1


def test_unpadded_secret_matches_the_reference_library():
    key = secrets.token_bytes(31)
    padded = "whsec_" + base64.b64encode(key).decode()
    unpadded = padded.rstrip("=")
    assert CommandSigner(secret=unpadded).signature("a", 1, "{}") == CommandSigner(secret=padded).signature("a", 1, "{}")
    assert CommandSigner(secret=unpadded).signature("a", 1, "{}") == \
        Webhook(unpadded).sign("a", datetime.fromtimestamp(1, tz=timezone.utc), "{}")
