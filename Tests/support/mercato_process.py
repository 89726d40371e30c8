"""Starting the `mercato` binary for the Python suites (Interop, Browser, Fuzz, Drills): one
free-port helper and one wait for `/healthz`, so every suite starts and stops servers alike.
Each suite puts this folder on `sys.path` in its conftest."""
import socket
import subprocess
import time

import requests


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(base, proc=None, seconds=30):
    """Waits until `base` answers `/healthz`; raises with the end of the server's stderr when
    the process exits first, or when it is not up in time (then the process is killed)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"mercato exited with {proc.returncode}: " + (proc.stderr.read().decode()[-2000:] if proc.stderr else ""))
        try:
            if requests.get(base + "/healthz", timeout=1).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    if proc is not None:
        proc.kill()
        raise RuntimeError(f"mercato did not start within {seconds} s: " + (proc.stderr.read().decode()[-2000:] if proc.stderr else ""))
    raise RuntimeError(f"{base} did not become healthy within {seconds} s")


def serve(binary, env, stdout=subprocess.DEVNULL, seconds=30):
    """`mercato serve` with `env` (which names its `MERCATO_PORT`), once healthy: (process, base URL)."""
    proc = subprocess.Popen([binary, "serve"], env=env, stdout=stdout, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{env['MERCATO_PORT']}"
    wait_healthy(base, proc, seconds)
    return proc, base


def stop(proc):
    """SIGTERM: the server drains and must exit 0."""
    proc.terminate()
    assert proc.wait(timeout=30) == 0, "SIGTERM must drain and exit 0"
