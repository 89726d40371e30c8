"""A live Mercato server for the fuzz run: the built binary on a fresh SQLite data dir.

MERCATO_BIN names the binary (scripts/test passes the debug build).
"""
import os
import secrets
import socket
import subprocess
import tempfile
import time

import pytest
import requests


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    proc = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if requests.get(base + "/healthz", timeout=1).ok:
                break
        except requests.ConnectionError:
            time.sleep(0.05)
    else:
        proc.kill()
        raise RuntimeError("mercato did not start: " + proc.stderr.read().decode()[-2000:])
    yield Server(base, operator)
    proc.terminate()
    assert proc.wait(timeout=30) == 0, "SIGTERM must drain and exit 0"
