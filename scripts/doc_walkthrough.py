#!/usr/bin/env python3
"""Runs a page's walkthrough exactly as written, so the page cannot go stale.

    scripts/doc_walkthrough.py docs/quickstart.md [README.md ...]

Every fenced ```sh block of the page runs, in order, in one bash session (`set -euo pipefail`)
started at the repository root; a ```python block runs as `python3 -` inside that session. Marks
(HTML comments on the line before a block, invisible on the rendered page):
  <!-- walkthrough: server -->  the block starts the server: it runs in the background, and the
                                 walkthrough goes on once /healthz answers
  <!-- walkthrough: skip -->    the block is shown, not run (reference commands, another machine)
Two things a reader copies by hand are filled in: the operator token the server prints (the
placeholder `mct_...`) and the port (`127.0.0.1:8080` and `localhost:8080` get a free port). The server gets a
throwaway data folder (MERCATO_DATA_DIR) and, with DATABASE_URL set, runs on PostgreSQL.
Exit 0 when every block succeeded; otherwise the failing block's output is shown.
"""
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FENCE = re.compile(r"^(?:<!-- walkthrough: (?P<mark>server|skip) -->\n)?```(?P<lang>sh|python)\n(?P<body>.*?)^```$", re.M | re.S)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def blocks(text):
    for match in FENCE.finditer(text):
        yield match.group("mark"), match.group("lang"), match.group("body")


def fill(text, port, token):
    for host in ("127.0.0.1", "localhost"):
        text = text.replace(f"{host}:8080", f"{host}:{port}")
    return text.replace("mct_...", token)


def wait_healthy(base, server, log, seconds=600):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server block exited ({server.returncode}):\n" + open(log).read()[-3000:])
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the server did not answer /healthz:\n" + open(log).read()[-3000:])


def run(page):
    text = open(os.path.join(ROOT, page)).read()
    port, token = free_port(), "mct_walkthrough_" + secrets.token_urlsafe(24)
    scratch = tempfile.mkdtemp(prefix="mercato-walkthrough-")
    env = dict(os.environ, MERCATO_DATA_DIR=os.path.join(scratch, "data"), MERCATO_PORT=str(port), MERCATO_OPERATOR_TOKEN=token,
               MERCATO_LOG_LEVEL="warning", HOME=scratch)
    script, server = ["set -euo pipefail"], None
    shown = 0
    try:
        for mark, lang, body in blocks(text):
            body = fill(body, port, token)
            if mark == "skip":
                continue
            if mark == "server":
                if server is not None:
                    raise SystemExit(f"{page}: more than one server block")
                log = os.path.join(scratch, "server.log")
                server = subprocess.Popen(["bash", "-c", body], cwd=ROOT, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                                          start_new_session=True)
                wait_healthy(f"http://127.0.0.1:{port}", server, log)
                continue
            shown += 1
            script.append(f"echo '--- {page}: block {shown}' >&2")
            script.append(body if lang == "sh" else f"python3 - <<'WALKTHROUGH_PY'\n{body}WALKTHROUGH_PY")
        if shown == 0:
            raise SystemExit(f"{page}: no block to run")
        # Output goes to a file, not a pipe: a process the page left in the background keeps
        # its copy open, and the walkthrough is judged by bash's own exit.
        output = os.path.join(scratch, "walkthrough.log")
        walk = subprocess.Popen(["bash", "-c", "\n".join(script)], cwd=ROOT, env=env, stdout=open(output, "w"), stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            walk.wait(timeout=600)
        finally:
            try:
                os.killpg(walk.pid, signal.SIGKILL)  # what the page left running in the background
            except ProcessLookupError:
                pass
        if walk.returncode != 0:
            sys.stderr.write(open(output).read()[-6000:] + "\n")
            raise SystemExit(f"{page}: the walkthrough failed (exit {walk.returncode}); the last block shown above failed")
        print(f"{page}: {shown} blocks ran")
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    pages = sys.argv[1:] or ["docs/quickstart.md", "README.md"]
    for page in pages:
        run(page)
    print(f"{len(pages)} passed, 0 failed")
