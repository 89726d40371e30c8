#!/usr/bin/env python3
"""Validate the Mercato seed catalog: app manifests and OAuth provider definitions.

Usage:
    python3 scripts/validate_catalog.py                    # every file in catalog/apps and catalog/providers
    python3 scripts/validate_catalog.py FILE...            # only these files (cross-checked against the catalog)
    python3 scripts/validate_catalog.py --catalog DIR      # another catalog directory (apps/, providers/)

Each file is checked against catalog/schema/manifest.schema.json or provider.schema.json and then
against the rules a schema cannot express (file name equals key, unique keys, provider references,
enum options and defaults, regular expressions, Ed25519 keys, https URLs, ...).

Every problem is printed as "FILE: FIELD: MESSAGE". The last line is always
"catalog: N passed, M failed". The exit status is 0 when nothing failed, 1 otherwise, 2 on usage
errors. Needs only the standard library, PyYAML and jsonschema.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import ipaddress
import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import urlsplit

try:
    import yaml
    from jsonschema import Draft202012Validator, FormatChecker
    from jsonschema.exceptions import ValidationError, best_match
except ImportError as exc:  # pragma: no cover - environment problem
    sys.stderr.write(f"validate_catalog: missing dependency ({exc}); install PyYAML and jsonschema\n")
    sys.exit(2)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CATALOG = REPO_ROOT / "catalog"

# Scopes the built-in plugins define (CONTRACT section 4).
KNOWN_SCOPES = frozenset({
    "install:read",
    "config:read",
    "kv:read",
    "kv:write",
    "notifications:write",
    "tasks:read",
    "tasks:write",
    "connections:token",
})

# Event types the host and the built-in plugins emit (CONTRACT section 5 plus the tasks plugin).
KNOWN_EVENTS = frozenset({
    "app.installed",
    "app.uninstalled",
    "app.enabled",
    "app.disabled",
    "install.config_updated",
    "install.upgraded",
    "connection.connected",
    "connection.disconnected",
    "connection.refresh_failed",
    "inbound.received",
    "task.created",
    "task.updated",
    "task.completed",
})

FIELD_TYPES = frozenset({"string", "text", "number", "boolean", "enum", "url", "secret"})
PATTERN_TYPES = frozenset({"string", "text", "url", "secret"})
KEY_RE = re.compile(r"^[a-z][a-z0-9-]{2,39}$")
CONFIG_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
ED25519_PREFIX = "whpk_"
RESERVED_AUTHORIZE_PARAMS = frozenset({
    "client_id", "redirect_uri", "response_type", "scope", "state",
    "code_challenge", "code_challenge_method",
})
# Regex syntax that is not shared by ECMAScript (JSON Schema), ICU (the Swift server) and Python.
NON_PORTABLE_REGEX = (
    (re.compile(r"\(\?P[<=>]"), "Python-only named group syntax (?P...)"),
    (re.compile(r"\(\?<[=!]"), "lookbehind, which not every engine supports"),
    (re.compile(r"\(\?[aiLmsux-]+[):]"), "inline flags such as (?i)"),
    (re.compile(r"\\[AZz]"), "\\A / \\Z anchors; use ^ and $"),
)

KINDS = ("apps", "providers")
SCHEMA_FILES = {"apps": "manifest.schema.json", "providers": "provider.schema.json"}


# --------------------------------------------------------------------------------------------
# YAML loading


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys instead of keeping the last one."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark, "found an unhashable key", key_node.start_mark)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark,
                f"found duplicate key {key!r} (first defined on line {seen[key].start_mark.line + 1})",
                key_node.start_mark)
        seen[key] = key_node
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


# --------------------------------------------------------------------------------------------
# Problem collection


def fmt_path(parts: Iterable[Any]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(file)"


@dataclass
class CatalogFile:
    path: Path
    kind: str  # "apps" or "providers"
    doc: Any = None
    loaded: bool = False
    problems: list[tuple[str, str]] = field(default_factory=list)
    _seen: set[tuple[str, str]] = field(default_factory=set)
    _schema_paths: set[str] = field(default_factory=set)

    def add(self, where: str, message: str, *, from_schema: bool = False) -> None:
        # A rule that repeats what the schema already reported at the same field is dropped.
        if not from_schema and where in self._schema_paths:
            return
        if (where, message) in self._seen:
            return
        self._seen.add((where, message))
        if from_schema:
            self._schema_paths.add(where)
        self.problems.append((where, message))

    @property
    def key(self) -> str | None:
        if isinstance(self.doc, dict) and isinstance(self.doc.get("key"), str):
            return self.doc["key"]
        return None


def display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def load_file(cf: CatalogFile) -> None:
    if cf.path.suffix != ".yaml":
        cf.add("(file)", f"catalog files must be named <key>.yaml; {cf.path.name!r} would not be loaded")
        return
    try:
        text = cf.path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        cf.add("(file)", f"cannot read file: {exc}")
        return
    try:
        doc = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        cf.add("(file)", "invalid YAML: " + " ".join(str(exc).split()))
        return
    if doc is None:
        cf.add("(file)", "file is empty")
        return
    if not isinstance(doc, dict):
        cf.add("(file)", f"top level must be a mapping, found {type(doc).__name__}")
        return
    cf.doc = doc
    cf.loaded = True


# --------------------------------------------------------------------------------------------
# Schema validation


def _type_hint(error: ValidationError) -> str:
    expected = error.validator_value
    wants_string = expected == "string" or (isinstance(expected, list) and "string" in expected)
    if wants_string and isinstance(error.instance, bool):
        return " (YAML reads unquoted yes/no/on/off/true/false as booleans; quote the value)"
    if wants_string and isinstance(error.instance, (int, float)):
        return " (quote the value in YAML so it stays a string)"
    if wants_string and error.instance is not None and type(error.instance).__name__ in ("date", "datetime"):
        return " (YAML reads it as a date; quote the value)"
    return ""


def _not_message(error: ValidationError) -> str:
    sub = error.validator_value
    inst = error.instance
    if isinstance(sub, dict) and list(sub) == ["required"] and isinstance(inst, dict):
        name = sub["required"][0]
        kind = inst.get("type")
        if name == "options":
            return f"'options' is only allowed on enum fields, not on type {kind!r}"
        if name == "default" and kind == "secret":
            return "secret fields cannot have a default (manifests are public)"
        if name == "pattern":
            return f"'pattern' is not allowed on {kind!r} fields"
        if name == "public_key":
            return "'public_key' is only used with type ed25519"
        return f"{name!r} is not allowed here"
    if isinstance(sub, dict) and "enum" in sub and isinstance(inst, str):
        return f"{inst!r} is set by the server itself and cannot be overridden"
    return error.message


# Readable wording for the long patterns of the schemas, keyed by the pattern itself.
PATTERN_WORDING = {
    r"^[a-z][a-z0-9-]{2,39}$": "must be 3-40 lowercase letters, digits or hyphens, starting with a letter",
    r"^https://[^\s/?#@]+(?:[/?#]\S*)?$": "must be an https URL with a host",
    r"^[^@\s]+@[^@\s]+\.[^@\s]+$": "must be an email address",
    r"^whpk_[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$":
        "must be whpk_ followed by the standard base64 (44 characters) of a raw 32-byte Ed25519 public key",
    r"^[a-z][a-z0-9_]{0,63}$": "must be lowercase snake_case: a letter, then letters, digits or _ (at most 64)",
    r"^[^\s,]+$": "must be one scope without spaces or commas",
    r"^[A-Za-z0-9_$@-]+(?:\.[A-Za-z0-9_$@-]+)*$": "must be a dotted path such as data.viewer.id",
}


def _pattern_message(error: ValidationError) -> str:
    if error.validator_value.startswith(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"):
        return f"{error.instance!r} must be a semantic version such as 1.4.0 (quote it in YAML)"
    wording = PATTERN_WORDING.get(error.validator_value)
    return f"{error.instance!r} {wording}" if wording else error.message


def schema_problems(validator: Draft202012Validator, doc: Any) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    errors = sorted(validator.iter_errors(doc), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    pattern_paths = {fmt_path(e.absolute_path) for e in errors if e.validator == "pattern"}
    for error in errors:
        if error.validator in ("anyOf", "oneOf") and error.context:
            error = best_match(error.context)
        parts = list(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = set(error.schema.get("properties", {}))
            for extra in sorted(k for k in error.instance if k not in allowed):
                out.append((fmt_path(parts + [extra]), f"unknown field {extra!r}"))
            continue
        if error.validator == "format" and fmt_path(parts) in pattern_paths:
            continue  # the pattern message already covers it
        if error.validator == "not":
            message = _not_message(error)
        elif error.validator == "type":
            message = error.message + _type_hint(error)
        elif error.validator == "pattern":
            message = _pattern_message(error)
        elif error.validator == "format" and error.validator_value == "regex":
            message = f"pattern {error.instance!r} is not a valid regular expression"
        else:
            message = error.message
        out.append((fmt_path(parts), message))
    return out


# --------------------------------------------------------------------------------------------
# Rules the schema cannot express


def https_problem(value: Any, *, public_host: bool = False) -> str | None:
    if not isinstance(value, str):
        return "must be an https URL"
    if any(c.isspace() for c in value):
        return "URL must not contain whitespace"
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if parts.scheme != "https":
        return f"must use https, not {parts.scheme or 'no scheme'!r}"
    if not host:
        return "URL has no host"
    if parts.username is not None or parts.password is not None:
        return "URL must not contain credentials"
    if public_host:
        if host == "localhost" or host.endswith(".localhost") or host.endswith(".local") or "." not in host:
            return f"host {host!r} is not publicly reachable"
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = None
        if ip is not None and (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved
                               or ip.is_multicast or ip.is_unspecified):
            return f"address {host} is not publicly reachable; events are never delivered there"
    return None


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_pattern(cf: CatalogFile, where: str, pattern: Any) -> re.Pattern | None:
    if not isinstance(pattern, str):
        return None
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        cf.add(where, f"pattern does not compile: {exc}")
        return None
    if not (pattern.startswith("^") and pattern.endswith("$") and not pattern.endswith("\\$")):
        cf.add(where, "pattern must be anchored with ^ at the start and $ at the end")
    for probe, what in NON_PORTABLE_REGEX:
        if probe.search(pattern):
            cf.add(where, f"pattern uses {what}")
    return compiled


def check_config(cf: CatalogFile, config: Any) -> None:
    if not isinstance(config, list):
        return
    first_seen: dict[str, int] = {}
    for i, fld in enumerate(config):
        base = f"config[{i}]"
        if not isinstance(fld, dict):
            continue
        key = fld.get("key")
        if isinstance(key, str):
            if not CONFIG_KEY_RE.match(key):
                cf.add(f"{base}.key", f"{key!r} must be lowercase snake_case (^[a-z][a-z0-9_]{{0,63}}$)")
            if key in first_seen:
                cf.add(f"{base}.key", f"duplicate config key {key!r} (also config[{first_seen[key]}])")
            else:
                first_seen[key] = i
        ftype = fld.get("type")
        if ftype not in FIELD_TYPES:
            cf.add(f"{base}.type", f"unknown field type {ftype!r}; one of {sorted(FIELD_TYPES)}")
            continue
        has_default = "default" in fld
        default = fld.get("default")
        options = fld.get("options")

        # enum: options present, non-empty, unique strings; default among them
        if ftype == "enum":
            if not isinstance(options, list) or not options:
                cf.add(base, "enum fields need a non-empty 'options' list")
            else:
                seen_opts: set[Any] = set()
                for j, opt in enumerate(options):
                    if not isinstance(opt, str) or not opt:
                        cf.add(f"{base}.options[{j}]", f"option must be a non-empty string, found {opt!r}")
                    elif opt in seen_opts:
                        cf.add(f"{base}.options[{j}]", f"duplicate option {opt!r}")
                    seen_opts.add(opt)
                if has_default and default not in options:
                    cf.add(f"{base}.default", f"default {default!r} is not one of the options {options}")
        elif "options" in fld:
            cf.add(base, f"'options' is only allowed on enum fields, not on type {ftype!r}")

        # pattern: compiles, anchored, portable; only on textual types
        compiled = None
        if "pattern" in fld:
            if ftype not in PATTERN_TYPES:
                cf.add(base, f"'pattern' is not allowed on {ftype!r} fields")
            else:
                compiled = check_pattern(cf, f"{base}.pattern", fld["pattern"])

        # default: matches the field type (and the pattern)
        if has_default:
            where = f"{base}.default"
            if ftype == "secret":
                cf.add(base, "secret fields cannot have a default (manifests are public)")
            elif ftype == "number":
                if not is_number(default):
                    cf.add(where, f"default of a number field must be a number, found {default!r}")
            elif ftype == "boolean":
                if not isinstance(default, bool):
                    cf.add(where, f"default of a boolean field must be true or false, found {default!r}")
            elif not isinstance(default, str):
                cf.add(where, f"default of a {ftype} field must be a string, found {default!r}")
            else:
                if ftype == "url":
                    parts = urlsplit(default)
                    if parts.scheme not in ("http", "https") or not parts.netloc:
                        cf.add(where, f"default {default!r} is not an http(s) URL")
                if compiled is not None and not compiled.search(default):
                    cf.add(where, f"default {default!r} does not match the field's pattern")


def check_app(cf: CatalogFile, provider_keys: set[str]) -> None:
    doc = cf.doc
    scopes = doc.get("scopes")
    scope_list = scopes if isinstance(scopes, list) else []
    for i, scope in enumerate(scope_list):
        if scope not in KNOWN_SCOPES:
            cf.add(f"scopes[{i}]", f"unknown scope {scope!r}; allowed: {', '.join(sorted(KNOWN_SCOPES))}")
    events = doc.get("events")
    event_list = events if isinstance(events, list) else []
    for i, event in enumerate(event_list):
        if event not in KNOWN_EVENTS:
            cf.add(f"events[{i}]", f"unknown event type {event!r}; allowed: {', '.join(sorted(KNOWN_EVENTS))}")

    for name in ("webhook_url", "icon_url"):
        if name in doc:
            problem = https_problem(doc[name], public_host=True)
            if problem:
                cf.add(name, problem)
    developer = doc.get("developer")
    if isinstance(developer, dict) and "url" in developer:
        problem = https_problem(developer["url"], public_host=True)
        if problem:
            cf.add("developer.url", problem)

    signing = doc.get("command_signing")
    if isinstance(signing, dict) and signing.get("type") == "ed25519":
        key = signing.get("public_key")
        where = "command_signing.public_key"
        if not isinstance(key, str) or not key.startswith(ED25519_PREFIX):
            cf.add(where, "ed25519 signing needs public_key 'whpk_<base64 of the 32-byte key>'")
        else:
            encoded = key[len(ED25519_PREFIX):]
            try:
                raw = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError) as exc:
                cf.add(where, f"public key is not valid standard base64 ({exc})")
            else:
                if len(raw) != 32:
                    cf.add(where, f"public key decodes to {len(raw)} bytes; an Ed25519 public key is exactly 32")
                elif base64.b64encode(raw).decode() != encoded:
                    cf.add(where, "public key is not canonical base64 (padding or trailing bits)")

    oauth = doc.get("oauth")
    if isinstance(oauth, dict):
        provider = oauth.get("provider")
        if isinstance(provider, str) and provider not in provider_keys:
            known = ", ".join(sorted(provider_keys)) or "none"
            cf.add("oauth.provider", f"no provider {provider!r} in catalog/providers (known: {known})")
        if "connections:token" not in scope_list:
            cf.add("scopes", "apps with oauth must ask for 'connections:token' to read their access token")
    elif oauth is None:
        if "connections:token" in scope_list:
            cf.add("scopes", "'connections:token' is only useful with an oauth section")
        connection_events = [e for e in event_list if isinstance(e, str) and e.startswith("connection.")]
        if connection_events:
            cf.add("events", f"subscribes to {', '.join(connection_events)} but declares no oauth connection")

    check_config(cf, doc.get("config"))

    inbound = doc.get("inbound")
    if isinstance(inbound, list):
        config = doc.get("config") if isinstance(doc.get("config"), list) else []
        types = {f.get("key"): f.get("type") for f in config if isinstance(f, dict)}
        seen = set()
        for i, item in enumerate(inbound):
            if not isinstance(item, dict):
                continue
            provider = item.get("provider")
            if provider in seen:
                cf.add(f"inbound[{i}].provider", f"{provider!r} is declared twice")
            seen.add(provider)
            secret_field = item.get("secret_field")
            if types.get(secret_field) != "secret":
                cf.add(f"inbound[{i}].secret_field", f"{secret_field!r} is not a config field of type secret")


def check_provider(cf: CatalogFile) -> None:
    doc = cf.doc
    for name in ("authorize_url", "token_url", "userinfo_url"):
        if name in doc:
            problem = https_problem(doc[name], public_host=True)
            if problem:
                cf.add(name, problem)
    if doc.get("revoke_url") is not None:
        problem = https_problem(doc["revoke_url"], public_host=True)
        if problem:
            cf.add("revoke_url", problem + " (or null when the provider has no revocation endpoint)")
    if doc.get("token_auth_method") == "none" and doc.get("pkce") is not True:
        cf.add("pkce", "a public client (token_auth_method none) must use PKCE")
    separator = doc.get("scope_separator")
    scopes = doc.get("scopes")
    if isinstance(scopes, list) and isinstance(separator, str):
        for i, scope in enumerate(scopes):
            if isinstance(scope, str) and (separator in scope or any(c.isspace() for c in scope)):
                cf.add(f"scopes[{i}]", f"scope {scope!r} contains the separator or whitespace")
    params = doc.get("authorize_params")
    if isinstance(params, dict):
        for name in params:
            if name in RESERVED_AUTHORIZE_PARAMS:
                cf.add("authorize_params", f"{name!r} is set by the server itself and cannot be overridden")


# --------------------------------------------------------------------------------------------
# Driver


def load_schema(schema_dir: Path, kind: str) -> Draft202012Validator:
    path = schema_dir / SCHEMA_FILES[kind]
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SystemExit(f"validate_catalog: cannot load schema {display(path)}: {exc}")
    if schema.get("$schema") != "https://json-schema.org/draft/2020-12/schema":
        raise SystemExit(f"validate_catalog: {display(path)} must declare draft 2020-12 in $schema")
    try:
        Draft202012Validator.check_schema(schema)
    except Exception as exc:  # jsonschema.SchemaError
        raise SystemExit(f"validate_catalog: {display(path)} is not a valid JSON Schema: {exc}")
    return Draft202012Validator(schema, format_checker=FormatChecker())


def kind_of(path: Path, catalog: Path) -> str:
    parent = path.resolve().parent
    for kind in KINDS:
        if parent == (catalog / kind).resolve() or parent.name == kind:
            return kind
    # Outside the catalog layout: decide by content.
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except Exception:
        doc = None
    if isinstance(doc, dict) and "authorize_url" in doc:
        return "providers"
    return "apps"


def catalog_files(catalog: Path) -> tuple[list[CatalogFile], list[CatalogFile]]:
    """Files in catalog/apps and catalog/providers, plus stray files that would be ignored."""
    found: list[CatalogFile] = []
    strays: list[CatalogFile] = []
    for kind in KINDS:
        folder = catalog / kind
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.name.startswith(".") or path.is_dir():
                continue
            cf = CatalogFile(path=path, kind=kind)
            (found if path.suffix == ".yaml" else strays).append(cf)
    return found, strays


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Validate Mercato app manifests and OAuth provider definitions.")
    parser.add_argument("files", nargs="*", type=Path, metavar="FILE",
                        help="files to check (default: every file in the catalog)")
    parser.add_argument("--catalog", type=Path, default=DEFAULT_CATALOG, metavar="DIR",
                        help="catalog directory holding apps/ and providers/ (default: %(default)s)")
    parser.add_argument("--schemas", type=Path, default=None, metavar="DIR",
                        help="directory with the JSON Schemas (default: DIR/schema if present, "
                             "else the repository's catalog/schema)")
    parser.add_argument("-v", "--verbose", action="store_true", help="also list files that pass")
    args = parser.parse_args(argv)

    catalog: Path = args.catalog
    if not args.files and not catalog.is_dir():
        parser.error(f"catalog directory {catalog} does not exist")
    schema_dir = args.schemas
    if schema_dir is None:
        schema_dir = catalog / "schema" if (catalog / "schema" / SCHEMA_FILES["apps"]).is_file() \
            else DEFAULT_CATALOG / "schema"
    validators = {kind: load_schema(schema_dir, kind) for kind in KINDS}

    # Everything in the catalog directory is the reference set for keys and provider lookups.
    reference, strays = catalog_files(catalog) if catalog.is_dir() else ([], [])
    for cf in reference:
        load_file(cf)

    if args.files:
        targets: list[CatalogFile] = []
        for path in args.files:
            if not path.is_file():
                cf = CatalogFile(path=path, kind="apps")
                cf.add("(file)", "no such file")
                targets.append(cf)
                continue
            cf = CatalogFile(path=path, kind=kind_of(path, catalog))
            load_file(cf)
            targets.append(cf)
        target_paths = {cf.path.resolve() for cf in targets}
        others = [cf for cf in reference if cf.path.resolve() not in target_paths]
    else:
        for cf in strays:
            load_file(cf)  # reports that the file would not be loaded
        targets = reference + strays
        others = []

    # Provider keys an app may reference: the catalog's plus any provider files given.
    pool = [cf for cf in targets + others if cf.loaded]
    provider_keys = {cf.key for cf in pool if cf.kind == "providers" and cf.key}

    # Key uniqueness per kind. A key belongs to the file named after it, else to the first file
    # (catalog files before the files given) that uses it; every other user of the key is reported.
    owners: dict[tuple[str, str], CatalogFile] = {}
    candidates = [cf for cf in sorted(others, key=lambda c: str(c.path)) + targets if cf.loaded and cf.key]
    for cf in sorted(candidates, key=lambda c: c.path.stem != c.key):  # stable: named files first
        owners.setdefault((cf.kind, cf.key), cf)

    for cf in targets:
        if not cf.loaded:
            continue
        for where, message in schema_problems(validators[cf.kind], cf.doc):
            cf.add(where, message, from_schema=True)
        key = cf.doc.get("key")
        if isinstance(key, str):
            if key != cf.path.stem:
                cf.add("key", f"key {key!r} does not match the file name {cf.path.name!r} (expected {key}.yaml)")
            if not KEY_RE.match(key):
                cf.add("key", f"{key!r} does not match ^[a-z][a-z0-9-]{{2,39}}$")
            first = owners.get((cf.kind, key))
            if first is not None and first is not cf:
                cf.add("key", f"duplicate key {key!r}, already used by {display(first.path)}")
        if cf.kind == "apps":
            check_app(cf, provider_keys)
        else:
            check_provider(cf)

    passed = failed = 0
    for cf in targets:
        if cf.problems:
            failed += 1
            for where, message in cf.problems:
                print(f"{display(cf.path)}: {where}: {message}")
        else:
            passed += 1
            if args.verbose:
                print(f"{display(cf.path)}: ok")
    print(f"catalog: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
