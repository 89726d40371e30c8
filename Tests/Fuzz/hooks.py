"""Schemathesis hooks for the Mercato fuzz run (loaded through SCHEMATHESIS_HOOKS).

CONTRACT §1: every error answer is RFC 9457 Problem Details with `code` and `request_id`.
Schemathesis has no built-in check for that, so it is one here.
"""
import schemathesis

PROBLEM_FIELDS = ("type", "title", "status", "detail", "code", "request_id")


@schemathesis.check
def problem_json_errors(ctx, response, case):
    """Every 4xx/5xx is application/problem+json with the contract's fields."""
    if response.status_code < 400:
        return
    media = response.headers.get("content-type", [""])
    media = media[0] if isinstance(media, list) else media
    if not media.split(";")[0].strip() == "application/problem+json":
        raise AssertionError(f"{response.status_code} answered with Content-Type {media!r}, not application/problem+json")
    try:
        body = response.json()
    except Exception as exc:  # noqa: BLE001 - any undecodable body fails the check
        raise AssertionError(f"{response.status_code} body is not JSON: {exc}") from exc
    missing = [f for f in PROBLEM_FIELDS if f not in body]
    if missing:
        raise AssertionError(f"{response.status_code} problem lacks {', '.join(missing)}")
    if body["status"] != response.status_code:
        raise AssertionError(f"problem status {body['status']} differs from the HTTP status {response.status_code}")
