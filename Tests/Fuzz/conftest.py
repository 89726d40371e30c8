"""A live Mercato server for the fuzz run: the built binary on a fresh SQLite data dir.

MERCATO_BIN names the binary (scripts/test passes the debug build).
"""
import os
import secrets
import sys
import tempfile

import pytest
import requests

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "support"))
from mercato_process import free_port, serve, stop  # noqa: E402


class Server:
    def __init__(self, base, operator_token):
        self.base = base
        self.operator = operator_token

    def call(self, method, path, token=None, json=None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        answer = requests.request(method, self.base + path, json=json, headers=headers, timeout=30)
        assert answer.status_code < 300, f"{method} {path}: {answer.status_code} {answer.text}"
        return answer.json()


@pytest.fixture(scope="session")
def server():
    binary = os.environ["MERCATO_BIN"]
    data = tempfile.mkdtemp(prefix="mercato-fuzz-")
    port = free_port()
    operator = "op-" + secrets.token_urlsafe(32)
    env = dict(os.environ, MERCATO_DATA_DIR=data, MERCATO_PORT=str(port), MERCATO_OPERATOR_TOKEN=operator,
               MERCATO_CATALOG_DIR="none", MERCATO_LOG_LEVEL="warning")
    env.pop("DATABASE_URL", None)
    proc, base = serve(binary, env)
    yield Server(base, operator)
    stop(proc)
