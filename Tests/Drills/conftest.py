"""Three `mercato serve` nodes on one PostgreSQL behind Debian's nginx, all on loopback.

MERCATO_BIN names the binary; MERCATO_DRILL_DATABASE_URL an empty PostgreSQL database for the
nodes. The nodes share one data directory (the master key), as nodes of one deployment share
their key through their secret store. nginx balances round robin and passes a command to the
next node when one fails to answer (`non_idempotent`: the same webhook-id reaches another node,
as a real balancer's retry would).
"""
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import pytest
import requests
from standardwebhooks.webhooks import Webhook
from datetime import datetime, timezone

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "support"))
from mercato_process import free_port, wait_healthy  # noqa: E402

COMMANDS = "/api/v1/apps/commands"


class Node:
    def __init__(self, binary, env, data, index):
        self.binary, self.env, self.index = binary, env, index
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(os.path.join(data, f"node{index}.log"), "ab")
        self.proc = None

    def start(self):
        env = dict(self.env, MERCATO_PORT=str(self.port))
        self.proc = subprocess.Popen([self.binary, "serve"], env=env, stdout=self.log, stderr=subprocess.PIPE)
        wait_healthy(self.base, self.proc)

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Cluster:
    def __init__(self, nodes, balancer, operator):
        self.nodes, self.balancer, self.operator = nodes, balancer, operator
        self.session = requests.Session()
        self.secrets = {}

    def call(self, method, path, token=None, json_body=None, base=None, headers=None, data=None):
        h = dict(headers or {})
        if token:
            h["Authorization"] = f"Bearer {token}"
        return self.session.request(method, (base or self.balancer) + path, json=json_body, data=data, headers=h, timeout=60)

    def org(self, name, plan="enterprise"):
        org = self.call("POST", "/api/v1/orgs", self.operator, {"name": name, "plan": plan}).json()["id"]
        token = self.call("POST", f"/api/v1/orgs/{org}/tokens", self.operator, {"name": "owner", "role": "owner"}).json()["token"]
        return org, token

    def app(self, key, config=None, scopes=("kv:read", "kv:write", "install:read", "config:read"), webhook_url=None, events=()):
        """Registers, publishes and installs an hmac app; answers (install id, command secret, vendor,
        owner). The app's secrets as registered are kept in `self.secrets[key]`."""
        _, vendor = self.org(f"{key} vendor")
        manifest = {"key": key, "name": key.title(), "version": "1.0.0", "description": "Drill app.",
                    "developer": {"name": "Drills"}, "scopes": list(scopes), "command_signing": {"type": "hmac"},
                    "config": [{k: v for k, v in field.items() if k != "drill_value"} for field in config or []]}
        if webhook_url:
            manifest.update(webhook_url=webhook_url, events=list(events))
        registered = self.call("POST", "/api/v1/developer/apps", vendor, manifest)
        assert registered.status_code == 201, registered.text
        self.secrets[key] = registered.json()["secrets"]
        assert self.call("POST", f"/api/v1/developer/apps/{key}/publish", vendor).status_code == 200
        _, owner = self.org(f"{key} customer")
        values = {field["key"]: field.get("drill_value", "v1") for field in (config or [])}
        installed = self.call("POST", "/api/v1/installs", owner, {"app": key, "config": values})
        assert installed.status_code == 201, installed.text
        return installed.json()["id"], registered.json()["secrets"]["command"], vendor, owner


def signed(secret, install, command, args, msg_id=None):
    """Headers and body of a command signed by the Standard Webhooks reference library."""
    msg_id = msg_id or "msg_" + uuid.uuid4().hex
    body = json.dumps({"install_id": install, "command": command, "args": args})
    when = datetime.now(tz=timezone.utc)
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(int(when.timestamp())),
               "webhook-signature": Webhook(secret).sign(msg_id, when, body), "Content-Type": "application/json"}
    return headers, body


NGINX_CONF = """
worker_processes 1;
error_log {dir}/nginx-error.log warn;
pid {dir}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream mercato {{
{servers}
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://mercato;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_connect_timeout 1s;
            proxy_read_timeout 30s;
            proxy_next_upstream error timeout non_idempotent;
            proxy_next_upstream_tries 3;
        }}
    }}
}}
"""


@pytest.fixture(scope="session")
def cluster():
    binary = os.environ["MERCATO_BIN"]
    url = os.environ["MERCATO_DRILL_DATABASE_URL"]
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    data = tempfile.mkdtemp(prefix="mercato-drill-")
    operator = "op-" + secrets.token_urlsafe(32)
    env = dict(os.environ, DATABASE_URL=url, MERCATO_DATA_DIR=data, MERCATO_OPERATOR_TOKEN=operator,
               MERCATO_CATALOG_DIR="none", MERCATO_LOG_LEVEL=os.environ.get("DRILL_LOG_LEVEL", "warning"), MERCATO_REFUSED_COMMANDS_BURST="100000",
               # Deliveries go to a receiver on loopback; a short attempt timeout keeps a
               # claim's lease (timeout × rounds + 30 s) short enough for the delivery drill.
               MERCATO_ALLOW_PRIVATE_WEBHOOKS="1", MERCATO_WEBHOOK_TIMEOUT_SECONDS="5", MERCATO_WEBHOOK_RETRIES="1,1,1,1,1,1,1")
    nodes = [Node(binary, env, data, i) for i in range(3)]
    # The first node migrates and writes the master key; the others start from them.
    nodes[0].start()
    for node in nodes[1:]:
        node.start()
    port = free_port()
    servers = "\n".join(f"        server 127.0.0.1:{n.port} max_fails=1 fail_timeout=2s;" for n in nodes)
    with open(os.path.join(data, "nginx.conf"), "w") as f:
        f.write(NGINX_CONF.format(dir=data, servers=servers, port=port))
    lb = subprocess.Popen([nginx, "-p", data, "-c", os.path.join(data, "nginx.conf"), "-g", "daemon off;"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    balancer = f"http://127.0.0.1:{port}"
    wait_healthy(balancer, lb)
    print(f"\ndrill cluster: nginx {balancer}, nodes {[n.base for n in nodes]}, logs in {data}")
    yield Cluster(nodes, balancer, operator)
    lb.terminate()
    lb.wait(timeout=10)
    for node in nodes:
        node.stop()
