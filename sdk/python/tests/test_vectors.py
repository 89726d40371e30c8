"""Every case of sdk/testvectors/signatures.json, signed and verified by the SDK."""
import base64

import pytest
from conftest import load_vectors

from mercato_sdk import CommandSigner, WebhookVerificationError, verify_webhook

VECTORS = load_vectors()


@pytest.mark.parametrize("case", VECTORS["sign"], ids=lambda c: c["name"])
def test_sign_vector(case):
    if case["scheme"] == "v1":
        signer = CommandSigner(secret=case["secret"])
    else:
        signer = CommandSigner(signing_key=base64.b64decode(case["seed"]))
        assert signer.public_key == case["public_key"]
    assert signer.signature(case["id"], case["timestamp"], case["body"]) == case["signature"]
    assert signer.signature(case["id"], case["timestamp"], case["body"].encode("utf-8")) == case["signature"]


@pytest.mark.parametrize("case", VECTORS["sign"], ids=lambda c: c["name"])
def test_sign_vector_verifies(case):
    headers = {"webhook-id": case["id"], "webhook-timestamp": case["timestamp"], "webhook-signature": case["signature"]}
    credentials = {"secrets": [case["secret"]]} if case["scheme"] == "v1" else {"public_keys": [case["public_key"]]}
    verified = verify_webhook(headers, case["body"], now=int(case["timestamp"]), **credentials)
    assert verified.id == case["id"] and verified.body == case["body"].encode("utf-8")


@pytest.mark.parametrize("case", VECTORS["verify"], ids=lambda c: c["name"])
def test_verify_vector(case):
    headers = {"Webhook-Id": case["id"], "Webhook-Timestamp": case["timestamp"], "Webhook-Signature": case["header"]}
    run = lambda: verify_webhook(headers, case["body"].encode("utf-8"), secrets=case["secrets"],  # noqa: E731
                                 public_keys=case["public_keys"], now=case["now"], tolerance=case["tolerance"])
    if case["valid"]:
        assert run().timestamp == int(case["timestamp"])
    else:
        with pytest.raises(WebhookVerificationError) as raised:
            run()
        assert raised.value.reason
        for secret in case["secrets"]:
            assert secret not in str(raised.value) and secret[6:] not in str(raised.value)


def test_vectors_cover_what_the_sdks_promise():
    names = {c["name"] for c in VECTORS["verify"]}
    for needed in ("v1 valid", "rotation: old secret removed", "wrong secret", "body changed by one byte",
                   "timestamp 301 s old", "timestamp 301 s ahead", "timestamp not a number", "v1a valid", "v1a wrong key",
                   "unknown version next to a valid v1", "malformed base64"):
        assert needed in names
    bodies = {c["body"] for c in VECTORS["sign"]}
    assert "{}" in bodies and any(not b.isascii() for b in bodies)
