"""Sending signed commands to `POST /api/v1/apps/commands`."""
import email.utils
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Optional

import requests

from .signing import WEBHOOK_ID, CommandSigner, new_webhook_id

COMMANDS_PATH = "/api/v1/apps/commands"
USER_AGENT = "mercato-sdk-python/0.1.0"
# The handler ran and its outcome is kept for this webhook-id: a retry would only replay it.
FINAL_CODES = frozenset({"handler_failed", "handler_timeout"})


class RateLimit(NamedTuple):
    """The install's command budget after this request (`None` when a header was absent)."""
    limit: Optional[int]
    remaining: Optional[int]
    reset: Optional[int]


@dataclass(frozen=True)
class CommandResult:
    status: int
    json: Any
    replayed: bool
    rate_limit: RateLimit
    request_id: Optional[str]
    webhook_id: str
    attempts: int

    @property
    def result(self):
        """The command's own answer, e.g. `{"pong": true}`."""
        return self.json.get("result") if isinstance(self.json, dict) else None


@dataclass(eq=False)
class MercatoError(Exception):
    """A refused command: the Problem+JSON answer's fields (`code` is the stable part)."""
    status: Optional[int]
    code: str
    detail: str = ""
    title: str = ""
    request_id: Optional[str] = None
    webhook_id: Optional[str] = None
    replayed: bool = False
    retry_after: Optional[float] = None
    rate_limit: Optional[RateLimit] = None
    problem: dict = field(default_factory=dict)

    def __post_init__(self):
        super().__init__(str(self))

    def __str__(self):
        where = f" (request {self.request_id})" if self.request_id else ""
        return f"{self.status or '-'} {self.code}: {self.detail or self.title}{where}"


class MercatoConnectionError(MercatoError):
    """No answer after every attempt; retrying later with the same `webhook_id` is safe."""


def _int_header(headers, name):
    try:
        return int(headers[name])
    except (KeyError, TypeError, ValueError):
        return None


def _retry_after(headers, now):
    value = headers.get("Retry-After")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None


class MercatoClient:
    """Sends one install's commands, signed with the app's command secret or Ed25519 key.

    A command is retried (at most `max_retries` times, with exponential backoff or the server's
    `Retry-After`) on network errors, 5xx, 429 and `idempotency_in_progress`. Every attempt
    carries the same `webhook-id` and the same body bytes, so the server runs it at most once.
    """

    def __init__(self, base_url, install_id, *, secret=None, signing_key=None, timeout=30.0, max_retries=3,
                 backoff=0.5, max_backoff=30.0, max_retry_after=60.0, session=None, sleep=time.sleep, clock=time.time):
        self.base_url = base_url.rstrip("/")
        self.install_id = install_id
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self._signer = CommandSigner(secret=secret, signing_key=signing_key)
        self._session = session or requests.Session()
        self._sleep = sleep
        self._clock = clock

    def __repr__(self):
        return f"MercatoClient({self.base_url!r}, {self.install_id!r}, scheme={self._signer.scheme!r})"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._session.close()

    def body(self, name, args=None):
        """The exact bytes `command` sends for `name` and `args`."""
        document = {"install_id": self.install_id, "command": name, "args": {} if args is None else args}
        return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    def command(self, name, args=None, webhook_id=None):
        """Runs `name` with `args`; returns a `CommandResult` or raises `MercatoError`.

        Pass your own `webhook_id` to make a command idempotent across process restarts: the
        same id and the same body get the stored answer (`replayed`) instead of a second run.
        """
        webhook_id = new_webhook_id() if webhook_id is None else webhook_id
        if not WEBHOOK_ID.fullmatch(webhook_id):
            raise ValueError("webhook_id must be 1-128 characters of A-Z a-z 0-9 _ . -")
        body = self.body(name, args)
        url = self.base_url + COMMANDS_PATH
        attempt = 0
        while True:
            attempt += 1
            # A fresh timestamp per attempt keeps a late retry inside the server's window;
            # the id and body, which the idempotency key covers, never change.
            headers = self._signer.headers(body, webhook_id=webhook_id, timestamp=int(self._clock()))
            headers.update({"Content-Type": "application/json", "Accept": "application/json", "User-Agent": USER_AGENT})
            try:
                response = self._session.post(url, data=body, headers=headers, timeout=self.timeout, allow_redirects=False)
            except (requests.ConnectionError, requests.Timeout) as error:
                if attempt > self.max_retries:
                    raise MercatoConnectionError(None, "connection_failed", f"no answer from the server: {type(error).__name__}",
                                                 webhook_id=webhook_id) from None
                self._sleep(self._backoff(attempt))
                continue
            if 200 <= response.status_code < 300:
                return self._result(response, webhook_id, attempt)
            error = self._error(response, webhook_id)
            wait = self._retry_wait(error, attempt)
            if wait is None:
                raise error
            self._sleep(wait)

    def _retry_wait(self, error, attempt):
        """Seconds before the next attempt, or `None` when `error` is final."""
        # A replayed answer is the stored outcome of the first run: asking again changes nothing.
        retryable = not error.replayed and error.code not in FINAL_CODES and (
            (error.status or 0) >= 500 or error.status == 429 or error.code == "idempotency_in_progress")
        if not retryable or attempt > self.max_retries:
            return None
        if error.retry_after is not None:
            return error.retry_after if error.retry_after <= self.max_retry_after else None
        return self._backoff(attempt)

    def _backoff(self, attempt):
        ceiling = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    @staticmethod
    def _rate_limit(headers):
        return RateLimit(_int_header(headers, "RateLimit-Limit"), _int_header(headers, "RateLimit-Remaining"),
                         _int_header(headers, "RateLimit-Reset"))

    def _result(self, response, webhook_id, attempts):
        try:
            document = response.json()
        except ValueError:
            document = None
        return CommandResult(status=response.status_code, json=document,
                             replayed=response.headers.get("Idempotent-Replayed", "").lower() == "true",
                             rate_limit=self._rate_limit(response.headers), request_id=response.headers.get("X-Request-Id"),
                             webhook_id=webhook_id, attempts=attempts)

    def _error(self, response, webhook_id):
        try:
            problem = response.json()
        except ValueError:
            problem = None
        if not isinstance(problem, dict):
            problem = {}
        return MercatoError(
            status=response.status_code, code=str(problem.get("code") or f"http_{response.status_code}"),
            detail=str(problem.get("detail") or ""), title=str(problem.get("title") or response.reason or ""),
            request_id=problem.get("request_id") or response.headers.get("X-Request-Id"), webhook_id=webhook_id,
            replayed=response.headers.get("Idempotent-Replayed", "").lower() == "true",
            retry_after=_retry_after(response.headers, self._clock()), rate_limit=self._rate_limit(response.headers),
            problem=problem)
