#!/usr/bin/env python3
"""Adds `x-mercato-scope` (from Sources/MercatoHTTP/Middleware/RouteScopes.swift) as the first key of
every operation of Sources/MercatoHTTP/Resources/openapi.json that has none yet; run from the repo root
after adding a route and its scope. RouteScopesTests checks the result."""
import re, json, sys
table = {}
for m in re.finditer(r'^\s*"([A-Z]+ [^"]+)": (nil|\.(\w+)),', open('Sources/MercatoHTTP/Middleware/RouteScopes.swift').read(), re.M):
    table[m.group(1)] = None if m.group(2) == 'nil' else m.group(3)
names = dict(re.findall(r'case (\w+) = "([^"]+)"', open('Sources/MercatoCore/Tenancy/TokenScope.swift').read()))
def key(method, path):
    segs = [s for s in path.split('/') if s]
    if segs[:2] == ['api', 'v1']: segs = segs[2:]
    segs = ['{}' if s.startswith('{') else s for s in segs]
    return method.upper() + ' ' + '/'.join(segs)
p = 'Sources/MercatoHTTP/Resources/openapi.json'
lines = open(p).read().split('\n')
out = []; path = None; missing = []
for i, line in enumerate(lines):
    out.append(line)
    m = re.match(r'^    "(/[^"]*)": \{$', line)
    if m: path = m.group(1)
    m = re.match(r'^      "(get|post|put|patch|delete)": \{$', line)
    if m and path:
        if 'x-mercato-scope' in lines[i + 1]: continue
        if path.startswith('/api/v1/'):
            k = key(m.group(1), path)
            if k not in table: missing.append(k); continue
            v = table[k]
            value = 'null' if v is None else '"%s"' % names[v]
        else:
            value = 'null'
        out.append('        "x-mercato-scope": %s,' % value)
open(p, 'w').write('\n'.join(out))
json.load(open(p))
print('missing', missing)
