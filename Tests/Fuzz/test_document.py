"""The OpenAPI document's own promises, checked without a server: every operation names its
documented minimum role (`x-mercato-role`, just before `responses`), and every example, of a
request body, a success answer, the Problem answer or an event, is valid against its schema.
"""
import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

DOC_PATH = Path(__file__).resolve().parents[2] / "Sources/MercatoHTTP/Resources/openapi.json"
DOC = json.loads(DOC_PATH.read_text())
ROLES = {"operator", "owner", "admin", "developer", "member", "public"}
METHODS = ("get", "post", "put", "patch", "delete")


def operations():
    for path, item in DOC["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield f"{method.upper()} {path}", path, op


def validate(example, schema, where):
    root = dict(schema, components=DOC["components"])
    errors = sorted(Draft202012Validator(root).iter_errors(example), key=lambda e: list(e.path))
    assert not errors, f"{where}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


@pytest.mark.parametrize("name,path,op", list(operations()), ids=lambda v: v if isinstance(v, str) and " " in v else "")
def test_operation_role_and_examples(name, path, op):
    keys = list(op)
    assert op.get("x-mercato-role") in ROLES, f"{name}: x-mercato-role {op.get('x-mercato-role')!r}"
    assert keys.index("x-mercato-role") == keys.index("responses") - 1, f"{name}: x-mercato-role must come right before responses"
    for media_type, media in op.get("requestBody", {}).get("content", {}).items():
        if media_type.endswith("json"):
            assert "example" in media, f"{name}: request body {media_type} has no example"
            validate(media["example"], media["schema"], f"{name} request {media_type}")
    for status, answer in op["responses"].items():
        media = answer.get("content", {}).get("application/json")
        if status.startswith("2") and media is not None:
            assert "example" in media, f"{name}: {status} has no example"
            validate(media["example"], media["schema"], f"{name} {status}")


def test_problem_example():
    media = DOC["components"]["responses"]["Problem"]["content"]["application/problem+json"]
    validate(media["example"], media["schema"], "Problem")


@pytest.mark.parametrize("event", sorted(DOC["webhooks"]))
def test_event_examples(event):
    media = DOC["webhooks"][event]["post"]["requestBody"]["content"]["application/json"]
    validate(media["example"], media["schema"], event)
