/// Every table, as ordered migrations. Types are spelled per engine only where they differ.
public enum Schema {
    /// All migrations of this build.
    public static let runner = MigrationRunner(migrations: [
        Migration(id: 1, name: "tenancy and the vault") { _ in
            [
                """
                CREATE TABLE orgs (
                    id TEXT PRIMARY KEY,
                    name TEXT NOT NULL,
                    plan TEXT NOT NULL,
                    created_at BIGINT NOT NULL
                )
                """,
                """
                CREATE TABLE principals (
                    id TEXT PRIMARY KEY,
                    kind TEXT NOT NULL,
                    name TEXT NOT NULL,
                    email TEXT,
                    created_at BIGINT NOT NULL
                )
                """,
                """
                CREATE TABLE memberships (
                    org_id TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
                    principal_id TEXT NOT NULL REFERENCES principals(id) ON DELETE CASCADE,
                    role TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    PRIMARY KEY (org_id, principal_id)
                )
                """,
                """
                CREATE TABLE api_tokens (
                    id TEXT PRIMARY KEY,
                    org_id TEXT REFERENCES orgs(id) ON DELETE CASCADE,
                    principal_id TEXT REFERENCES principals(id) ON DELETE CASCADE,
                    role TEXT NOT NULL,
                    name TEXT NOT NULL,
                    token_hash TEXT NOT NULL UNIQUE,
                    created_at BIGINT NOT NULL,
                    revoked_at BIGINT
                )
                """,
                "CREATE INDEX api_tokens_org ON api_tokens (org_id)",
                """
                CREATE TABLE sealed_values (
                    id TEXT PRIMARY KEY,
                    org_id TEXT NOT NULL,
                    owner_id TEXT NOT NULL,
                    purpose TEXT NOT NULL,
                    key_version INTEGER NOT NULL,
                    revision INTEGER NOT NULL,
                    ciphertext TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL,
                    UNIQUE (owner_id, purpose)
                )
                """,
                "CREATE INDEX sealed_values_key_version ON sealed_values (key_version)",
            ]
        },
        Migration(id: 2, name: "app registry and OAuth provider definitions") { _ in
            [
                "CREATE TABLE platform_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
                """
                CREATE TABLE apps (
                    id TEXT PRIMARY KEY,
                    key TEXT NOT NULL UNIQUE,
                    developer_org_id TEXT NOT NULL REFERENCES orgs(id),
                    status TEXT NOT NULL,
                    latest_version TEXT NOT NULL,
                    name TEXT NOT NULL,
                    plan TEXT NOT NULL,
                    search_text TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX apps_developer_org ON apps (developer_org_id)",
                "CREATE INDEX apps_status_key ON apps (status, key)",
                """
                CREATE TABLE app_versions (
                    app_id TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
                    version TEXT NOT NULL,
                    manifest TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    PRIMARY KEY (app_id, version)
                )
                """,
                """
                CREATE TABLE app_categories (
                    app_id TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
                    category TEXT NOT NULL,
                    PRIMARY KEY (app_id, category)
                )
                """,
                "CREATE INDEX app_categories_category ON app_categories (category)",
                """
                CREATE TABLE app_secrets (
                    id TEXT PRIMARY KEY,
                    app_id TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
                    kind TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    valid_until BIGINT
                )
                """,
                "CREATE INDEX app_secrets_app_kind ON app_secrets (app_id, kind)",
                """
                CREATE TABLE oauth_providers (
                    key TEXT PRIMARY KEY,
                    definition TEXT NOT NULL,
                    source TEXT NOT NULL,
                    updated_at BIGINT NOT NULL
                )
                """,
            ]
        },
        Migration(id: 3, name: "installs, the event outbox and the audit log") { _ in
            [
                """
                CREATE TABLE installs (
                    id TEXT PRIMARY KEY,
                    org_id TEXT NOT NULL REFERENCES orgs(id),
                    app_id TEXT NOT NULL REFERENCES apps(id),
                    app_key TEXT NOT NULL,
                    version TEXT NOT NULL,
                    status TEXT NOT NULL,
                    scopes TEXT NOT NULL,
                    config_keys TEXT NOT NULL,
                    created_by TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL,
                    removed_at BIGINT
                )
                """,
                "CREATE INDEX installs_org ON installs (org_id, id)",
                "CREATE INDEX installs_app ON installs (app_id)",
                // One live install of an app per org.
                "CREATE UNIQUE INDEX installs_one_live_per_org ON installs (org_id, app_id) WHERE removed_at IS NULL",
                """
                CREATE TABLE outbox_events (
                    id TEXT PRIMARY KEY,
                    org_id TEXT NOT NULL,
                    install_id TEXT,
                    app_id TEXT,
                    type TEXT NOT NULL,
                    payload TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    dispatched_at BIGINT
                )
                """,
                "CREATE INDEX outbox_events_pending ON outbox_events (dispatched_at, id)",
                """
                CREATE TABLE audit_log (
                    id TEXT PRIMARY KEY,
                    org_id TEXT NOT NULL,
                    actor TEXT NOT NULL,
                    action TEXT NOT NULL,
                    target TEXT NOT NULL,
                    request_id TEXT,
                    details TEXT NOT NULL,
                    created_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX audit_log_org ON audit_log (org_id, id)",
            ]
        },
        Migration(id: 4, name: "command log, idempotency records and rate limit overrides") { _ in
            [
                """
                CREATE TABLE command_log (
                    id TEXT PRIMARY KEY,
                    install_id TEXT NOT NULL,
                    app_id TEXT NOT NULL,
                    org_id TEXT NOT NULL,
                    command TEXT NOT NULL,
                    webhook_id TEXT NOT NULL,
                    body_sha256 TEXT NOT NULL,
                    outcome TEXT NOT NULL,
                    http_status INTEGER NOT NULL,
                    duration_us BIGINT NOT NULL,
                    created_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX command_log_install ON command_log (install_id, id)",
                "CREATE INDEX command_log_app ON command_log (app_id, id)",
                """
                CREATE TABLE command_idempotency (
                    app_id TEXT NOT NULL,
                    webhook_id TEXT NOT NULL,
                    body_sha256 TEXT NOT NULL,
                    http_status INTEGER NOT NULL,
                    response TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    PRIMARY KEY (app_id, webhook_id)
                )
                """,
                "CREATE INDEX command_idempotency_created ON command_idempotency (created_at)",
                """
                CREATE TABLE install_rate_limits (
                    install_id TEXT PRIMARY KEY,
                    per_second DOUBLE PRECISION NOT NULL,
                    burst INTEGER NOT NULL,
                    updated_at BIGINT NOT NULL
                )
                """,
            ]
        },
        Migration(id: 5, name: "plugin storage and hook dispatch state") { _ in
            [
                """
                CREATE TABLE plugin_kv (
                    plugin_id TEXT NOT NULL,
                    install_id TEXT NOT NULL,
                    key TEXT NOT NULL,
                    value TEXT NOT NULL,
                    size INTEGER NOT NULL,
                    version INTEGER NOT NULL,
                    updated_at BIGINT NOT NULL,
                    PRIMARY KEY (plugin_id, install_id, key)
                )
                """,
                "ALTER TABLE outbox_events ADD COLUMN hooks_done_at BIGINT",
                "CREATE INDEX outbox_events_hooks_pending ON outbox_events (hooks_done_at, id)",
            ]
        },
        Migration(id: 6, name: "hook retries and leases, org-wide plugin data, the activity feed") { _ in
            var statements: [String] = []
            // Both hook feeds (events for install hooks, audit rows for activity hooks) carry the
            // same dispatch state: attempts, when to try next, which plugins still owe the hook,
            // and a lease so several nodes never run one row at once.
            for table in ["outbox_events", "audit_log"] {
                statements += [
                    "ALTER TABLE \(table) ADD COLUMN hooks_attempts INTEGER NOT NULL DEFAULT 0",
                    "ALTER TABLE \(table) ADD COLUMN hooks_next_at BIGINT",
                    "ALTER TABLE \(table) ADD COLUMN hooks_pending TEXT",
                    "ALTER TABLE \(table) ADD COLUMN hooks_lease_until BIGINT",
                ]
            }
            statements += [
                "ALTER TABLE audit_log ADD COLUMN hooks_done_at BIGINT",
                "CREATE INDEX audit_log_hooks_pending ON audit_log (hooks_done_at, id)",
                "ALTER TABLE plugin_kv ADD COLUMN org_id TEXT",
                "UPDATE plugin_kv SET org_id = (SELECT org_id FROM installs WHERE installs.id = plugin_kv.install_id)",
                "CREATE INDEX plugin_kv_org ON plugin_kv (plugin_id, org_id, key)",
            ]
            return statements
        },
        Migration(id: 7, name: "outbound webhook deliveries, attempts and endpoint state") { _ in
            [
                """
                CREATE TABLE webhook_deliveries (
                    id TEXT NOT NULL,
                    app_id TEXT NOT NULL,
                    org_id TEXT NOT NULL,
                    install_id TEXT,
                    type TEXT NOT NULL,
                    url TEXT NOT NULL,
                    status TEXT NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    next_attempt_at BIGINT NOT NULL,
                    lease_until BIGINT,
                    last_status_code INTEGER,
                    last_error TEXT,
                    created_at BIGINT NOT NULL,
                    delivered_at BIGINT,
                    PRIMARY KEY (id, app_id)
                )
                """,
                "CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at)",
                "CREATE INDEX webhook_deliveries_app ON webhook_deliveries (app_id, id)",
                """
                CREATE TABLE webhook_attempts (
                    delivery_id TEXT NOT NULL,
                    app_id TEXT NOT NULL,
                    attempt INTEGER NOT NULL,
                    status_code INTEGER,
                    duration_ms BIGINT NOT NULL,
                    response_body TEXT,
                    error TEXT,
                    created_at BIGINT NOT NULL,
                    PRIMARY KEY (delivery_id, app_id, attempt)
                )
                """,
                "CREATE INDEX webhook_attempts_created ON webhook_attempts (created_at)",
                """
                CREATE TABLE webhook_endpoints (
                    app_id TEXT PRIMARY KEY,
                    consecutive_failures INTEGER NOT NULL DEFAULT 0,
                    failing_since BIGINT,
                    circuit TEXT NOT NULL DEFAULT 'closed',
                    open_until BIGINT,
                    disabled_at BIGINT,
                    disabled_reason TEXT
                )
                """,
            ]
        },
        Migration(id: 8, name: "OAuth client credentials, connect states and connections") { _ in
            [
                "ALTER TABLE oauth_providers ADD COLUMN client_id TEXT",
                """
                CREATE TABLE oauth_states (
                    id TEXT PRIMARY KEY,
                    state_hash TEXT NOT NULL UNIQUE,
                    browser_hash TEXT NOT NULL,
                    org_id TEXT NOT NULL,
                    install_id TEXT NOT NULL,
                    provider_key TEXT NOT NULL,
                    started_by TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    expires_at BIGINT NOT NULL,
                    used_at BIGINT
                )
                """,
                "CREATE INDEX oauth_states_expires ON oauth_states (expires_at)",
                """
                CREATE TABLE oauth_connections (
                    id TEXT PRIMARY KEY,
                    install_id TEXT NOT NULL UNIQUE,
                    org_id TEXT NOT NULL,
                    provider_key TEXT NOT NULL,
                    status TEXT NOT NULL,
                    account_id TEXT,
                    account_name TEXT,
                    scopes TEXT NOT NULL,
                    expires_at BIGINT,
                    obtained_at BIGINT NOT NULL,
                    token_version INTEGER NOT NULL,
                    refresh_failures INTEGER NOT NULL DEFAULT 0,
                    next_refresh_at BIGINT,
                    last_error TEXT,
                    lease_owner TEXT,
                    lease_until BIGINT,
                    connected_by TEXT NOT NULL,
                    connected_at BIGINT NOT NULL,
                    refreshed_at BIGINT,
                    updated_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX oauth_connections_due ON oauth_connections (status, expires_at)",
            ]
        },
        Migration(id: 9, name: "plugin storage usage read from a covering index") { _ in
            [
                // The quota check sums `size` over a namespace on every write; with this index it
                // reads small index entries instead of every row's value.
                "CREATE INDEX plugin_kv_usage ON plugin_kv (plugin_id, install_id, key, size)",
            ]
        },
        Migration(id: 20, name: "idempotency keys reserved across nodes while their handler runs") { _ in
            [
                // Set while one node runs the key's handler (PostgreSQL, several nodes); cleared
                // by the answer. A node that died holding it stops blocking the key at this time.
                "ALTER TABLE command_idempotency ADD COLUMN reserved_until BIGINT",
            ]
        },
        Migration(id: 21, name: "command rate state shared by the nodes") { _ in
            [
                // GCRA per install across nodes (PostgreSQL): the theoretical arrival time, in
                // seconds since 1970. A row whose time has passed owes nothing and may go.
                "CREATE TABLE install_rate_state (install_id TEXT PRIMARY KEY, tat DOUBLE PRECISION NOT NULL)",
            ]
        },
        Migration(id: 30, name: "people: passwords, invitations and browser sessions") { _ in
            [
                // One password per person (a `user` principal), found by email.
                """
                CREATE TABLE user_credentials (
                    principal_id TEXT PRIMARY KEY REFERENCES principals(id) ON DELETE CASCADE,
                    email TEXT NOT NULL UNIQUE,
                    password_hash TEXT NOT NULL,
                    updated_at BIGINT NOT NULL
                )
                """,
                // A single-use link; only the digest of its token is kept. `email` is null for
                // the first owner's link printed at a first start (the page asks for it).
                """
                CREATE TABLE invitations (
                    id TEXT PRIMARY KEY,
                    org_id TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
                    email TEXT,
                    role TEXT NOT NULL,
                    token_hash TEXT NOT NULL UNIQUE,
                    created_by TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    expires_at BIGINT NOT NULL,
                    used_at BIGINT
                )
                """,
                "CREATE INDEX invitations_org ON invitations (org_id)",
                // The cookie's digest, never the cookie. `expires_at` slides; `ends_at` does not.
                """
                CREATE TABLE web_sessions (
                    id TEXT PRIMARY KEY,
                    token_hash TEXT NOT NULL UNIQUE,
                    principal_id TEXT NOT NULL REFERENCES principals(id) ON DELETE CASCADE,
                    org_id TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
                    created_at BIGINT NOT NULL,
                    expires_at BIGINT NOT NULL,
                    ends_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX web_sessions_expiry ON web_sessions (expires_at)",
            ]
        },
        Migration(id: 31, name: "embedded sign-in: host subjects and used token ids") { _ in
            [
                // The host SaaS's user id (the JWT's `sub`) → the person it stands for.
                """
                CREATE TABLE sso_subjects (
                    subject TEXT PRIMARY KEY,
                    principal_id TEXT NOT NULL REFERENCES principals(id) ON DELETE CASCADE,
                    created_at BIGINT NOT NULL
                )
                """,
                // Each `jti` is accepted once; kept until the token it came in has expired.
                "CREATE TABLE sso_used_tokens (jti TEXT PRIMARY KEY, expires_at BIGINT NOT NULL)",
                "CREATE INDEX sso_used_tokens_expiry ON sso_used_tokens (expires_at)",
            ]
        },
        Migration(id: 32, name: "API token scopes, expiry, hourly limit and last use") { _ in
            [
                // NULL scopes: every scope the role grants; NULL hourly_limit: the plan's default.
                "ALTER TABLE api_tokens ADD COLUMN scopes TEXT",
                "ALTER TABLE api_tokens ADD COLUMN expires_at BIGINT",
                "ALTER TABLE api_tokens ADD COLUMN hourly_limit INTEGER",
                "ALTER TABLE api_tokens ADD COLUMN last_used_at BIGINT",
            ]
        },
        Migration(id: 33, name: "API token hourly counters shared by the nodes, and the token usage log") { _ in
            [
                // One row per token and clock hour (hours since 1970); swept an hour later.
                """
                CREATE TABLE token_hourly_counts (
                    token_id TEXT NOT NULL,
                    window_hour BIGINT NOT NULL,
                    hits INTEGER NOT NULL,
                    PRIMARY KEY (token_id, window_hour)
                )
                """,
                // Ids sort by time: the list pages by id, newest first. Kept 30 days.
                """
                CREATE TABLE token_usage (
                    id TEXT PRIMARY KEY,
                    token_id TEXT NOT NULL,
                    at BIGINT NOT NULL,
                    method TEXT NOT NULL,
                    path TEXT NOT NULL,
                    status INTEGER NOT NULL,
                    request_id TEXT NOT NULL
                )
                """,
                "CREATE INDEX token_usage_token ON token_usage (token_id, id)",
                "CREATE INDEX token_usage_at ON token_usage (at)",
            ]
        },
        Migration(id: 34, name: "Idempotency-Key of management API requests") { _ in
            [
                // `scope`: the principal (or the operator's token); `answer` sealed with the
                // vault (it can hold a token's text or an app's secrets); NULL status: running.
                """
                CREATE TABLE api_idempotency (
                    scope TEXT NOT NULL,
                    idem_key TEXT NOT NULL,
                    fingerprint TEXT NOT NULL,
                    status INTEGER,
                    answer TEXT,
                    created_at BIGINT NOT NULL,
                    PRIMARY KEY (scope, idem_key)
                )
                """,
                "CREATE INDEX api_idempotency_created ON api_idempotency (created_at)",
            ]
        },
        Migration(id: 35, name: "org webhook endpoints and their secrets") { _ in
            [
                // The org's own receivers (CONTRACT §10). Their deliveries, attempts and breaker
                // state live in `webhook_deliveries`, `webhook_attempts` and `webhook_endpoints`
                // beside the apps', keyed by the endpoint's `whe_` id where an app's key is its
                // `app_` id: one delivery path for both kinds of receiver.
                """
                CREATE TABLE org_webhook_endpoints (
                    id TEXT PRIMARY KEY,
                    org_id TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
                    url TEXT NOT NULL,
                    events TEXT NOT NULL,
                    description TEXT NOT NULL,
                    created_by TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX org_webhook_endpoints_org ON org_webhook_endpoints (org_id, id)",
                // Which secrets verify until when; their texts are sealed in `sealed_values`
                // (owner: the endpoint, purpose `secret.<id>`), as an app's are.
                """
                CREATE TABLE org_webhook_secrets (
                    id TEXT PRIMARY KEY,
                    endpoint_id TEXT NOT NULL REFERENCES org_webhook_endpoints(id) ON DELETE CASCADE,
                    created_at BIGINT NOT NULL,
                    valid_until BIGINT
                )
                """,
                "CREATE INDEX org_webhook_secrets_endpoint ON org_webhook_secrets (endpoint_id)",
            ]
        },
        Migration(id: 40, name: "plugin keys that expire") { _ in
            [
                // When a plugin key stops reading (Unix ms; NULL = kept until deleted); the
                // retention sweep removes expired rows through the partial index.
                "ALTER TABLE plugin_kv ADD COLUMN expires_at BIGINT",
                "CREATE INDEX plugin_kv_expiry ON plugin_kv (expires_at) WHERE expires_at IS NOT NULL",
            ]
        },
        Migration(id: 41, name: "failed sign-ins counted in storage, shared by the nodes") { _ in
            [
                // One row per failed sign-in under each of its keys (digests of the email and of
                // the client address, never the text); counted over a window, swept after it.
                "CREATE TABLE sign_in_failures (key TEXT NOT NULL, at BIGINT NOT NULL)",
                "CREATE INDEX sign_in_failures_key ON sign_in_failures (key, at)",
                "CREATE INDEX sign_in_failures_at ON sign_in_failures (at)",
            ]
        },
        Migration(id: 42, name: "plugin namespaces' bytes kept as a count") { engine in
            // What each (plugin, namespace) stores, kept by triggers on every change of
            // `plugin_kv` (writes, deletes, the expiry sweep, an install's removal): the quota
            // check reads one row instead of summing the namespace's keys, which grew with
            // every key (an inbound install keeps up to ~95,000 event records).
            let table = """
                CREATE TABLE plugin_usage (
                    plugin_id TEXT NOT NULL,
                    install_id TEXT NOT NULL,
                    bytes BIGINT NOT NULL,
                    PRIMARY KEY (plugin_id, install_id)
                )
                """
            let backfill = "INSERT INTO plugin_usage (plugin_id, install_id, bytes) SELECT plugin_id, install_id, SUM(size) FROM plugin_kv GROUP BY plugin_id, install_id"
            switch engine {
            case .sqlite:
                // Row triggers: in-process, one small upsert per changed key.
                return [
                    table,
                    """
                    CREATE TRIGGER plugin_usage_inserted AFTER INSERT ON plugin_kv BEGIN
                        INSERT INTO plugin_usage (plugin_id, install_id, bytes) VALUES (NEW.plugin_id, NEW.install_id, NEW.size)
                        ON CONFLICT (plugin_id, install_id) DO UPDATE SET bytes = plugin_usage.bytes + excluded.bytes;
                    END
                    """,
                    """
                    CREATE TRIGGER plugin_usage_updated AFTER UPDATE OF size ON plugin_kv BEGIN
                        UPDATE plugin_usage SET bytes = bytes + NEW.size - OLD.size WHERE plugin_id = NEW.plugin_id AND install_id = NEW.install_id;
                    END
                    """,
                    """
                    CREATE TRIGGER plugin_usage_deleted AFTER DELETE ON plugin_kv BEGIN
                        UPDATE plugin_usage SET bytes = bytes - OLD.size WHERE plugin_id = OLD.plugin_id AND install_id = OLD.install_id;
                    END
                    """,
                    backfill,
                ]
            case .postgres:
                // Statement triggers over the changed rows: one upsert per namespace per
                // statement (a batch's multi-row upsert), in key order so nodes never deadlock;
                // the sizes are the rows' own, so concurrent writers on several nodes stay exact.
                func function(_ name: String, _ rows: String) -> String {
                    """
                    CREATE FUNCTION \(name)() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN
                        INSERT INTO plugin_usage (plugin_id, install_id, bytes)
                        SELECT plugin_id, install_id, SUM(size) FROM (\(rows)) AS changed
                        GROUP BY plugin_id, install_id ORDER BY plugin_id, install_id
                        ON CONFLICT (plugin_id, install_id) DO UPDATE SET bytes = plugin_usage.bytes + EXCLUDED.bytes;
                        RETURN NULL;
                    END
                    $$
                    """
                }
                return [
                    table,
                    function("plugin_usage_inserted", "SELECT plugin_id, install_id, size FROM added"),
                    function("plugin_usage_updated", "SELECT plugin_id, install_id, size FROM after UNION ALL SELECT plugin_id, install_id, -size FROM before"),
                    function("plugin_usage_deleted", "SELECT plugin_id, install_id, -size AS size FROM removed"),
                    "CREATE TRIGGER plugin_usage_inserted AFTER INSERT ON plugin_kv REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION plugin_usage_inserted()",
                    "CREATE TRIGGER plugin_usage_updated AFTER UPDATE ON plugin_kv REFERENCING OLD TABLE AS before NEW TABLE AS after FOR EACH STATEMENT EXECUTE FUNCTION plugin_usage_updated()",
                    "CREATE TRIGGER plugin_usage_deleted AFTER DELETE ON plugin_kv REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION plugin_usage_deleted()",
                    backfill,
                ]
            }
        },
        Migration(id: 43, name: "the covering index for summing a plugin namespace dropped") { _ in
            // Migration 9's index served the quota check's sum, which migration 42 replaced by
            // a count: since then it was only written, one more page in a random place (keys
            // such as an inbound event's hash) for every key a plugin stores.
            ["DROP INDEX IF EXISTS plugin_kv_usage"]
        },
        Migration(id: 44, name: "plugin keys indexed by org only for the plugins that read across an org") { _ in
            // Only the plugins whose manifest declares `orgWideReads` (the audit trail, the
            // inbox) read by org: the keys of the others (kv, an inbound event's hash) are
            // stored with org_id NULL and stay out of the index, one random page fewer a key.
            // `plugin_org_index` names the plugins whose keys carry their org; every plugin with
            // keys so far wrote it (the start-up reconciles it with the manifests).
            [
                "DROP INDEX IF EXISTS plugin_kv_org",
                "CREATE INDEX plugin_kv_org ON plugin_kv (plugin_id, org_id, key) WHERE org_id IS NOT NULL",
                "CREATE TABLE plugin_org_index (plugin_id TEXT PRIMARY KEY, indexed_at BIGINT NOT NULL)",
                "INSERT INTO plugin_org_index (plugin_id, indexed_at) SELECT DISTINCT plugin_id, 0 FROM plugin_kv",
            ]
        },
        Migration(id: 45, name: "the outbox's pending indexes hold only the pending events") { _ in
            // The fan-out and the hook dispatcher look for events not yet dispatched or hooked,
            // oldest first. Indexed on (dispatched_at, id) and (hooks_done_at, id), every event
            // was in both indexes for its whole life; most events are now written dispatched
            // (a plugin's, routed in their write) and with their hooks done (a type no hook
            // takes), and would not enter these indexes at all: two index entries fewer an event.
            [
                "DROP INDEX IF EXISTS outbox_events_pending",
                "CREATE INDEX outbox_events_pending ON outbox_events (id) WHERE dispatched_at IS NULL",
                "DROP INDEX IF EXISTS outbox_events_hooks_pending",
                "CREATE INDEX outbox_events_hooks_pending ON outbox_events (id) WHERE hooks_done_at IS NULL",
            ]
        },
        Migration(id: 46, name: "a management request's hold on its Idempotency-Key is a lease") { _ in
            // The node running the first request renews `reserved_until` while it runs; a key
            // still unanswered past it was left by a node that stopped, and a retry is told the
            // first request's outcome is unknown rather than that it is still running. A row with
            // 0 (from before this migration, or reserved by a node not yet upgraded) is held one
            // lease from its `created_at`.
            ["ALTER TABLE api_idempotency ADD COLUMN reserved_until BIGINT NOT NULL DEFAULT 0"]
        },
    ])
}
