#!/usr/bin/env python3
"""Prints Mercato's command outcome counters (mercato_commands_total by outcome, and the
unauthenticated ones by code, and webhook attempts by outcome as "webhook:<outcome>") from /metrics as one JSON object. Usage: metrics.py BASE_URL"""
import json
import re
import sys
import urllib.request

text = urllib.request.urlopen(sys.argv[1] + "/metrics", timeout=30).read().decode()
out = {}
for line in text.splitlines():
    m = re.match(r'^(mercato_commands_total|mercato_commands_unauthenticated_total|mercato_webhook_attempts_total)\{([^}]*)\}\s+([0-9.eE+]+)$', line)
    if not m:
        continue
    labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
    if m.group(1) == "mercato_webhook_attempts_total":
        key = "webhook:" + labels.get("outcome", "?")
    else:
        key = labels.get("outcome") or ("unauthenticated:" + labels.get("code", "?"))
    out[key] = out.get(key, 0) + int(float(m.group(3)))
print(json.dumps(out))
