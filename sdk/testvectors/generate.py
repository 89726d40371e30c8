#!/usr/bin/env python3
"""Writes signatures.json: signing and verification vectors for every Mercato SDK.

Every signature here comes from an outside library, never from Mercato's code: `v1` from the
Standard Webhooks reference library (standardwebhooks==1.1.0), `v1a` from PyNaCl. Inputs are
fixed, so a rerun writes the same file (`--check` fails when the file on disk differs).

    python3 generate.py [--check]
"""
import base64
import hashlib
import json
import os
import re
import sys
from datetime import datetime, timezone

import nacl.exceptions
import nacl.signing
from standardwebhooks.webhooks import Webhook, hmac_data

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "signatures.json")
NOW = 1767225600  # 2026-01-01T00:00:00Z, the clock of every verify case
TOLERANCE = 300


def b64(raw):
    return base64.b64encode(raw).decode()


def derived(label, size=32):
    """Fixed bytes named by a label, so the inputs read as what they are for."""
    return hashlib.sha256(b"mercato test vector: " + label.encode()).digest()[:size]


def secret(label, size=32):
    return "whsec_" + b64(derived(label, size))


def seed(label):
    return derived(label)


def public_key(seed_bytes):
    return "whpk_" + b64(bytes(nacl.signing.SigningKey(seed_bytes).verify_key))


def sign_v1(whsec, msg_id, timestamp, body):
    """The reference library's own signer (timestamps as text go through its lower-level HMAC)."""
    if timestamp.isdigit():
        return Webhook(whsec).sign(msg_id, datetime.fromtimestamp(int(timestamp), tz=timezone.utc), body)
    return "v1," + b64(hmac_data(Webhook(whsec)._whsecret, f"{msg_id}.{timestamp}.{body}".encode()))


def sign_v1a(seed_bytes, msg_id, timestamp, body):
    signed = nacl.signing.SigningKey(seed_bytes).sign(f"{msg_id}.{timestamp}.{body}".encode()).signature
    return "v1a," + b64(signed)


# Bodies: exact text, signed as its UTF-8 bytes.
PING = '{"install_id":"ins_01jdvectors0000000000000000","command":"ping","args":{}}'
KV_SET = '{"install_id": "ins_01jdvectors0000000000000000", "command": "kv.set", "args": {"key": "greeting", "value": "Grüße aus Zürich, 東京 🚀"}}'
EVENT = '{"type":"app.installed","timestamp":"2026-01-01T00:00:00Z","data":{"install_id":"ins_01jdvectors0000000000000000","org_id":"org_01jdvectors0000000000000000"}}'
EMPTY_OBJECT = "{}"
SPACED = '{\n  "command": "notifications.create",\n  "args": {"title": "Line one\\nline two", "body": "tab\\there, quote \\" and backslash \\\\"}\n}\n'

SIGN_CASES = [
    ("v1 ping, compact JSON", "v1", "hmac-a", "msg_2b1d0c5f7a6e4d3c9b8a7f6e5d4c3b2a", "1767225600", PING),
    ("v1 kv.set with non-ASCII UTF-8 text", "v1", "hmac-a", "msg_kv-set.0001", "1767225601", KV_SET),
    ("v1 empty object body", "v1", "hmac-b", "msg_empty", "1700000000", EMPTY_OBJECT),
    ("v1 body with newlines, escapes and a trailing newline", "v1", "hmac-b", "cmd-retry_42.x", "1767225999", SPACED),
    ("v1 event delivery body", "v1", "hmac-c", "msg_01jdevent00000000000000000", "1767225600", EVENT),
    ("v1 secret of 24 bytes", "v1", ("hmac-short", 24), "a", "1", PING),
    ("v1a ping", "v1a", "ed-a", "msg_2b1d0c5f7a6e4d3c9b8a7f6e5d4c3b2a", "1767225600", PING),
    ("v1a kv.set with non-ASCII UTF-8 text", "v1a", "ed-a", "msg_kv-set.0001", "1767225601", KV_SET),
    ("v1a empty object body", "v1a", "ed-b", "msg_empty", "1700000000", EMPTY_OBJECT),
    ("v1a body with newlines, escapes and a trailing newline", "v1a", "ed-b", "cmd-retry_42.x", "1767225999", SPACED),
]


def sign_vectors():
    out = []
    for name, scheme, key, msg_id, timestamp, body in SIGN_CASES:
        case = {"name": name, "scheme": scheme}
        if scheme == "v1":
            label, size = key if isinstance(key, tuple) else (key, 32)
            case["secret"] = secret(label, size)
            sig = sign_v1(case["secret"], msg_id, timestamp, body)
        else:
            case["seed"] = b64(seed(key))
            case["public_key"] = public_key(seed(key))
            sig = sign_v1a(seed(key), msg_id, timestamp, body)
        case.update(id=msg_id, timestamp=timestamp, body=body, signature=sig)
        out.append(case)
    return out


OLD, NEW, OTHER = secret("rotation-old"), secret("rotation-new"), secret("someone-else")
HMAC = secret("hmac-a")
ED, ED_OTHER = seed("ed-a"), seed("ed-other")
ID = "msg_01jdverify000000000000000000"
TS = str(NOW)


def verify_case(name, valid, reason, *, secrets=(), public_keys=(), header, body=PING, msg_id=ID, timestamp=TS):
    return {"name": name, "secrets": list(secrets), "public_keys": list(public_keys), "id": msg_id, "timestamp": timestamp,
            "body": body, "header": header, "now": NOW, "tolerance": TOLERANCE, "valid": valid, "reason": reason}


def verify_vectors():
    v1 = sign_v1(HMAC, ID, TS, PING)
    v1a = sign_v1a(ED, ID, TS, PING)
    old, new = sign_v1(OLD, ID, TS, PING), sign_v1(NEW, ID, TS, PING)
    at = lambda ts: sign_v1(HMAC, ID, str(ts), PING)  # noqa: E731
    raw = base64.b64decode(v1[3:])
    return [
        verify_case("v1 valid", True, "one v1 signature under the secret", secrets=[HMAC], header=v1),
        verify_case("v1 valid, non-ASCII body", True, "signed over the UTF-8 bytes", secrets=[HMAC], body=KV_SET,
                    header=sign_v1(HMAC, ID, TS, KV_SET)),
        verify_case("v1 valid, empty object body", True, "signed over {}", secrets=[HMAC], body=EMPTY_OBJECT,
                    header=sign_v1(HMAC, ID, TS, EMPTY_OBJECT)),
        verify_case("rotation: both secrets, both signatures", True, "either signature matches", secrets=[OLD, NEW],
                    header=f"{old} {new}"),
        verify_case("rotation: old secret removed", True, "the new secret matches the second signature", secrets=[NEW],
                    header=f"{old} {new}"),
        verify_case("rotation: only the old secret known", True, "the old secret matches the first signature", secrets=[OLD],
                    header=f"{old} {new}"),
        verify_case("rotation: both secrets, only the new signature", True, "the second secret matches", secrets=[OLD, NEW],
                    header=new),
        verify_case("wrong secret", False, "no signature under this secret", secrets=[OTHER], header=v1),
        verify_case("body changed by one byte", False, "the signature covers the exact body", secrets=[HMAC],
                    body=PING.replace('"ping"', '"pinh"'), header=v1),
        verify_case("webhook-id changed", False, "the signature covers the id", secrets=[HMAC], msg_id=ID + "x", header=v1),
        verify_case("timestamp 301 s old", False, "outside the window (past)", secrets=[HMAC], timestamp=str(NOW - 301),
                    header=at(NOW - 301)),
        verify_case("timestamp 301 s ahead", False, "outside the window (future)", secrets=[HMAC], timestamp=str(NOW + 301),
                    header=at(NOW + 301)),
        verify_case("timestamp exactly 300 s old", True, "the window includes its edge", secrets=[HMAC],
                    timestamp=str(NOW - 300), header=at(NOW - 300)),
        verify_case("timestamp exactly 300 s ahead", True, "the window includes its edge", secrets=[HMAC],
                    timestamp=str(NOW + 300), header=at(NOW + 300)),
        verify_case("timestamp not a number", False, "webhook-timestamp must be unix seconds, even when signed as is",
                    secrets=[HMAC], timestamp="tomorrow", header=sign_v1(HMAC, ID, "tomorrow", PING)),
        verify_case("timestamp with a fraction", False, "webhook-timestamp must be whole seconds", secrets=[HMAC],
                    timestamp=TS + ".0", header=sign_v1(HMAC, ID, TS + ".0", PING)),
        verify_case("v1a valid", True, "Ed25519 signature under the public key", public_keys=[public_key(ED)], header=v1a),
        verify_case("v1a valid, non-ASCII body", True, "signed over the UTF-8 bytes", public_keys=[public_key(ED)],
                    body=KV_SET, header=sign_v1a(ED, ID, TS, KV_SET)),
        verify_case("v1a wrong key", False, "signed by another key", public_keys=[public_key(ED_OTHER)], header=v1a),
        verify_case("v1a under a secret only", False, "a v1a entry is checked with public keys, not secrets", secrets=[HMAC],
                    header=v1a),
        verify_case("v1 value labelled v1a", False, "an HMAC is no Ed25519 signature", secrets=[HMAC],
                    public_keys=[public_key(ED)], header="v1a," + v1[3:]),
        verify_case("v1 and v1a, secrets and keys", True, "any one valid signature suffices", secrets=[OTHER],
                    public_keys=[public_key(ED)], header=f"{sign_v1(OTHER, ID, TS, PING + ' ')} {v1a}"),
        verify_case("unknown version next to a valid v1", True, "unknown versions are skipped", secrets=[HMAC],
                    header=f"v2,xxx {v1}"),
        verify_case("unknown version only", False, "nothing left to check", secrets=[HMAC], header="v2," + v1[3:]),
        verify_case("malformed base64", False, "the only signature is not base64", secrets=[HMAC], header="v1,not*base64!"),
        verify_case("malformed base64 next to a valid v1", True, "a malformed entry is skipped", secrets=[HMAC],
                    header=f"v1,%%%% {v1}"),
        verify_case("base64 without padding", False, "signatures are padded base64", secrets=[HMAC],
                    header=v1.rstrip("=")),
        verify_case("truncated signature", False, "31 bytes, not 32", secrets=[HMAC], header="v1," + b64(raw[:31])),
        verify_case("entry without a comma", False, "not version,signature", secrets=[HMAC], header="v1" + v1[3:]),
        verify_case("empty header", False, "webhook-signature is empty", secrets=[HMAC], header=""),
        verify_case("no secrets and no keys", False, "nothing to verify with", header=v1),
    ]


B64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def outside_verdict(case):
    """The same decision made with the outside libraries only, to catch a wrong `valid` flag."""
    if not re.fullmatch(r"[0-9]+", case["timestamp"]) or abs(case["now"] - int(case["timestamp"])) > case["tolerance"]:
        return False
    content = f"{case['id']}.{case['timestamp']}.{case['body']}".encode()
    for entry in case["header"].split(" "):
        version, _, value = entry.partition(",")
        if not _ or len(value) % 4 or not B64.fullmatch(value):
            continue
        sig = base64.b64decode(value, validate=True)
        if version == "v1":
            if any(sign_v1(s, case["id"], case["timestamp"], case["body"]) == "v1," + b64(sig) for s in case["secrets"]):
                return True
        elif version == "v1a":
            for key in case["public_keys"]:
                try:
                    nacl.signing.VerifyKey(base64.b64decode(key[5:])).verify(content, sig)
                    return True
                except (nacl.exceptions.BadSignatureError, ValueError):
                    pass
    return False


def reference_library_verdict(case):
    """standardwebhooks' own verify (its clock pinned to `now`), for the cases it can read."""
    import standardwebhooks.webhooks as lib

    class Pinned(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.fromtimestamp(case["now"], tz=tz)

    real, lib.datetime = lib.datetime, Pinned
    try:
        results = []
        for s in case["secrets"]:
            try:
                Webhook(s).verify(case["body"], {"webhook-id": case["id"], "webhook-timestamp": case["timestamp"],
                                                 "webhook-signature": case["header"]}, json_parse=False)
                results.append(True)
            except Exception:
                results.append(False)
        return any(results)
    finally:
        lib.datetime = real


def main():
    document = {
        "description": "Signing and verification vectors for Mercato's signed commands and event webhooks "
                       "(Standard Webhooks: v1 = HMAC-SHA256 under a whsec_ secret, v1a = Ed25519 under a whpk_ key, "
                       "both over '{id}.{timestamp}.{body}' as UTF-8). Made by generate.py with standardwebhooks 1.1.0 "
                       "and PyNaCl; a verify case is valid when its timestamp is whole unix seconds within `tolerance` "
                       "of `now` (edges included) and at least one header entry verifies; malformed and unknown "
                       "entries are skipped.",
        "sign": sign_vectors(),
        "verify": verify_vectors(),
    }
    for case in document["verify"]:
        assert outside_verdict(case) == case["valid"], case["name"]
        # Where the reference library reads the whole header and timestamp the same way, it agrees too.
        simple = all(e.startswith(("v1,", "v2,", "v1a,")) for e in case["header"].split(" ") if e) and \
            all(re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", e.partition(",")[2] or "") for e in case["header"].split(" ") if e.startswith("v1,"))
        if case["secrets"] and not case["public_keys"] and simple and case["timestamp"].isdigit():
            assert reference_library_verdict(case) == case["valid"], case["name"]
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if "--check" in sys.argv[1:]:
        with open(OUT, encoding="utf-8") as f:
            if f.read() != text:
                sys.exit("signatures.json differs from what generate.py writes")
        print("signatures.json: up to date")
        return
    with open(OUT, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {OUT}: {len(document['sign'])} sign, {len(document['verify'])} verify")


if __name__ == "__main__":
    main()
