"""The signer's and verifier's inputs, reasons and refusals."""
import time

import pytest

from mercato_sdk import CommandSigner, WebhookVerificationError, new_webhook_id, sign_command, verify_webhook

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_sign_command_headers():
    before = int(time.time())
    headers = sign_command('{"a":1}', secret=SECRET)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-id"].startswith("msg_") and headers["webhook-signature"].startswith("v1,")
    assert before <= int(headers["webhook-timestamp"]) <= int(time.time())
    assert verify_webhook(headers, b'{"a":1}', secrets=SECRET).json() == {"a": 1}


def test_ids_are_fresh():
    assert len({new_webhook_id() for _ in range(100)}) == 100


@pytest.mark.parametrize("bad", ["", "has space", "x" * 129, "ünïcode", "a/b"])
def test_bad_webhook_id_refused(bad):
    with pytest.raises(ValueError):
        sign_command("{}", secret=SECRET, webhook_id=bad)


def test_exactly_one_credential():
    with pytest.raises(ValueError):
        CommandSigner()
    with pytest.raises(ValueError):
        CommandSigner(secret=SECRET, signing_key=b"\0" * 32)


@pytest.mark.parametrize("bad", ["whsec_not*base64", "whsec_", "whsec_Q"])
def test_bad_secret_refused_without_echoing_it(bad):
    with pytest.raises(ValueError) as raised:
        CommandSigner(secret=bad)
    assert bad[6:] not in str(raised.value) or not bad[6:]


def test_bad_seed_refused():
    with pytest.raises(ValueError):
        CommandSigner(signing_key=b"\0" * 31)


def test_parsed_body_refused():
    with pytest.raises(TypeError):
        sign_command({"a": 1}, secret=SECRET)


def test_reasons():
    now = 1_800_000_000
    good = sign_command("{}", secret=SECRET, webhook_id="msg_1", timestamp=now)

    def reason(headers, **kwargs):
        with pytest.raises(WebhookVerificationError) as raised:
            verify_webhook(headers, "{}", now=now, **kwargs)
        return raised.value.reason

    assert reason({k: v for k, v in good.items() if k != "webhook-id"}, secrets=[SECRET]) == "missing_header"
    assert reason(dict(good, **{"webhook-timestamp": "1e9"}), secrets=[SECRET]) == "invalid_timestamp"
    assert reason(sign_command("{}", secret=SECRET, timestamp=now - 400), secrets=[SECRET]) == "timestamp_too_old"
    assert reason(sign_command("{}", secret=SECRET, timestamp=now + 400), secrets=[SECRET]) == "timestamp_too_new"
    assert reason(good) == "no_credentials"
    assert reason(good, secrets=["whsec_" + "A" * 32]) == "invalid_signature"
    assert verify_webhook(good, "{}", secrets=[SECRET], now=now + 1000, tolerance=1000).id == "msg_1"


def test_headers_as_pairs_and_any_case():
    good = sign_command("{}", secret=SECRET)
    pairs = [(k.upper(), v) for k, v in good.items()]
    assert verify_webhook(pairs, "{}", secrets=[SECRET]).id == good["webhook-id"]


def test_repr_hides_the_secret():
    assert SECRET[6:] not in repr(CommandSigner(secret=SECRET))
