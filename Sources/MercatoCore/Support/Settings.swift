public import Foundation
public import MercatoStorage

/// How the server is set up: environment variables with a zero-config default for each.
///
/// | variable | default |
/// |---|---|
/// | `MERCATO_DATA_DIR` | `./.mercato` (SQLite file and master key file) |
/// | `DATABASE_URL` | unset: SQLite in the data dir; `postgres://...` for PostgreSQL |
/// | `MERCATO_HOST`, `MERCATO_PORT` | `127.0.0.1`, `8080` |
/// | `MERCATO_PUBLIC_URL` | `http://{host}:{port}` |
/// | `MERCATO_MASTER_KEY` | unset: a generated key file `{data dir}/master.key` (mode 0600) |
/// | `MERCATO_OPERATOR_TOKEN` | unset: a token is generated and printed once on first start |
/// | `MERCATO_LOG_LEVEL` | `info` |
/// | `MERCATO_IDEMPOTENCY_HOURS` | `48` (at least 24) |
/// | `MERCATO_COMMAND_LOG_DAYS` | `30` |
/// | `MERCATO_CATALOG_DIR` | `./catalog` when it exists; `none` to import nothing at start |
/// | `MERCATO_ALLOW_PRIVATE_WEBHOOKS` | unset: deliveries to private, loopback and link-local addresses are refused; `1` allows them |
/// | `MERCATO_WEBHOOK_RETRIES` | `5,300,1800,7200,18000,36000,36000` (seconds before each retry, ±20% jitter) |
/// | `MERCATO_WEBHOOK_TIMEOUT_SECONDS` | `15` |
/// | `MERCATO_WEBHOOK_CIRCUIT_COOLDOWN_SECONDS` | `60` (an endpoint's open circuit waits this long before one probe) |
/// | `MERCATO_DELIVERY_LOG_DAYS` | `30` (attempts, finished deliveries and handled events) |
/// | `MERCATO_OAUTH_RETURN_URL` | `{public url}/oauth/complete` (where a connect flow ends, with `result` or `error` in the query) |
/// | `MERCATO_OAUTH_REFRESH_MARGIN_SECONDS` | `900` (access tokens are refreshed this long before expiry, or at half their lifetime if shorter) |
/// | `MERCATO_OAUTH_REFRESH_SCAN_SECONDS` | `30` (how often the background refresher looks for tokens due) |
/// | `MERCATO_OAUTH_TIMEOUT_SECONDS` | `15` (each call to a provider) |
/// | `MERCATO_STORAGE_TIMEOUT_SECONDS` | `15` (PostgreSQL: a read or a group commit past this, or no connection within 5 s, is 503 `storage_unavailable`) |
/// | `MERCATO_INBOUND_PER_SECOND`, `MERCATO_INBOUND_BURST` | `50`, `200` (each install's allowance of provider webhooks, CONTRACT §11, across the nodes) |
/// | `MERCATO_OPENAPI_PUBLIC` | `1`: `GET /api/v1/openapi.json` needs no token; `0`: it needs a token with `docs:read` (the `/developer/docs` page works either way) |
/// | `MERCATO_FRAME_ANCESTORS` | unset: pages may be framed by this origin only; space-separated origins of the host SaaS otherwise |
/// | `MERCATO_SSO_SECRET` | unset: embedded sign-in (`/sso/jwt`) is off; `whsec_` + base64 of the HS256 key shared with the host SaaS |
/// | `MERCATO_SSO_PUBLIC_KEY` | unset; base64 of the host SaaS's 32-byte Ed25519 public key: EdDSA tokens are accepted too |
public struct Settings: Sendable {
    public var dataDirectory: URL
    public var database: DatabaseLocation
    public var host: String
    public var port: Int
    public var publicURL: String
    /// Origins allowed to frame the pages (CSP `frame-ancestors`); empty means `'self'` only.
    public var frameAncestors: [String] = []
    /// The HS256 key of embedded sign-in (`/sso/jwt`); `nil` turns it off.
    public var ssoSecret: [UInt8]?
    /// The host's Ed25519 public key (32 bytes) for EdDSA tokens of embedded sign-in; `nil`: HS256 only.
    public var ssoPublicKey: [UInt8]?
    public var masterKey: String?
    public var operatorToken: String?
    public var logLevel: String
    /// How long idempotency records are kept (the contract asks for at least 24 h).
    public var idempotencyHours: Int
    /// How long command log rows are kept.
    public var commandLogDays: Int
    /// The catalog folder imported at start, `nil` for none.
    public var catalogDirectory: URL?
    /// Deliveries may go to private, loopback and link-local addresses.
    public var allowPrivateWebhooks = false
    /// Seconds before each delivery retry; `nil` for the contract's schedule.
    public var webhookRetries: [Int]?
    public var webhookTimeoutSeconds = 15
    /// How long an endpoint's open circuit waits before one probe.
    public var webhookCircuitCooldownSeconds = 60
    /// How long the delivery log is kept.
    public var deliveryLogDays = 30
    /// Each install's allowance of requests to plugins' public routes (inbound provider
    /// webhooks): a sustained rate and a burst.
    public var inboundPerSecond = 50
    public var inboundBurst = 200
    /// Where the browser lands when a connect flow ends.
    public var oauthReturnURL: String
    public var oauthRefreshMarginSeconds = 900
    public var oauthRefreshScanSeconds = 30
    public var oauthTimeoutSeconds = 15
    /// PostgreSQL: how long a request may wait on storage before 503 `storage_unavailable`.
    public var storageTimeoutSeconds = 15
    public var storageDeadlines: StorageDeadlines {
        StorageDeadlines(lease: .seconds(min(5, storageTimeoutSeconds)), statement: .seconds(storageTimeoutSeconds))
    }
    /// Command requests refused before authentication that one address may send at once, and
    /// per second after that, before further refusals are 429.
    public var refusedCommandsBurst = 100
    public var refusedCommandsPerSecond = 10
    /// `GET /api/v1/openapi.json` answers without a token; when `false` it needs a token with
    /// `docs:read` (`MERCATO_OPENAPI_PUBLIC=0`).
    public var openAPIPublic = true

    /// The SQLite file in the data directory.
    public var sqlitePath: String { dataDirectory.appendingPathComponent("mercato.sqlite").path }
    /// The master key file in the data directory.
    public var keyFile: URL { dataDirectory.appendingPathComponent("master.key") }

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        func value(_ name: String) -> String? {
            guard let v = environment[name]?.trimmingCharacters(in: .whitespaces), !v.isEmpty else { return nil }
            return v
        }
        let dir = value("MERCATO_DATA_DIR") ?? "./.mercato"
        dataDirectory = URL(fileURLWithPath: dir, isDirectory: true).standardizedFileURL
        host = value("MERCATO_HOST") ?? "127.0.0.1"
        if let p = value("MERCATO_PORT") {
            guard let port = Int(p), (0 ... 65535).contains(port) else { throw SettingsError("MERCATO_PORT must be a port number, not \(p)") }
            self.port = port
        } else {
            port = 8080
        }
        publicURL = value("MERCATO_PUBLIC_URL").map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 } ?? "http://\(host):\(port)"
        guard let scheme = URL(string: publicURL)?.scheme, ["http", "https"].contains(scheme) else {
            throw SettingsError("MERCATO_PUBLIC_URL must be an http(s) URL")
        }
        if let text = value("MERCATO_FRAME_ANCESTORS") {
            let origins = text.split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init)
            for origin in origins {
                guard let url = URL(string: origin), ["http", "https"].contains(url.scheme ?? ""), url.host != nil,
                      url.path.isEmpty || url.path == "/", url.query == nil,
                      origin.allSatisfy({ $0.isASCII && !$0.isWhitespace && $0 != ";" && $0 != "'" && $0 != "\"" })
                else { throw SettingsError("MERCATO_FRAME_ANCESTORS must be space-separated http(s) origins, not \(origin)") }
            }
            frameAncestors = origins.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        }
        if let text = value("MERCATO_SSO_SECRET") {
            guard text.hasPrefix("whsec_"), let key = Data(base64Encoded: String(text.dropFirst("whsec_".count))), key.count >= 16 else {
                throw SettingsError("MERCATO_SSO_SECRET must be whsec_ followed by the base64 of a key of at least 16 bytes")
            }
            ssoSecret = [UInt8](key)
        }
        if let text = value("MERCATO_SSO_PUBLIC_KEY") {
            var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
            while standard.count % 4 != 0 { standard += "=" }
            guard let key = Data(base64Encoded: standard), key.count == 32 else {
                throw SettingsError("MERCATO_SSO_PUBLIC_KEY must be the base64 of a 32-byte Ed25519 public key")
            }
            ssoPublicKey = [UInt8](key)
        }
        masterKey = value("MERCATO_MASTER_KEY")
        operatorToken = value("MERCATO_OPERATOR_TOKEN")
        if let token = operatorToken, token.count < 32 {
            throw SettingsError("MERCATO_OPERATOR_TOKEN must be at least 32 characters (use `openssl rand -base64 32`)")
        }
        logLevel = value("MERCATO_LOG_LEVEL") ?? "info"
        idempotencyHours = try Self.number(value("MERCATO_IDEMPOTENCY_HOURS"), name: "MERCATO_IDEMPOTENCY_HOURS", default: 48, range: 24 ... 24 * 365)
        commandLogDays = try Self.number(value("MERCATO_COMMAND_LOG_DAYS"), name: "MERCATO_COMMAND_LOG_DAYS", default: 30, range: 1 ... 3650)
        switch value("MERCATO_CATALOG_DIR") {
        case "none":
            catalogDirectory = nil
        case let dir?:
            catalogDirectory = URL(fileURLWithPath: dir, isDirectory: true)
        case nil:
            let local = URL(fileURLWithPath: "catalog", isDirectory: true)
            catalogDirectory = FileManager.default.fileExists(atPath: local.appendingPathComponent("apps").path) ? local : nil
        }
        allowPrivateWebhooks = value("MERCATO_ALLOW_PRIVATE_WEBHOOKS") == "1"
        if let text = value("MERCATO_WEBHOOK_RETRIES") {
            let parts = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !parts.isEmpty, parts.count <= 20, parts.allSatisfy({ ($0 ?? -1) >= 1 && ($0 ?? 0) <= 86400 }) else {
                throw SettingsError("MERCATO_WEBHOOK_RETRIES must be 1 to 20 comma-separated waits in seconds (1 to 86400), not \(text)")
            }
            webhookRetries = parts.compactMap { $0 }
        }
        inboundPerSecond = try Self.number(value("MERCATO_INBOUND_PER_SECOND"), name: "MERCATO_INBOUND_PER_SECOND", default: 50, range: 1 ... 1_000_000)
        inboundBurst = try Self.number(value("MERCATO_INBOUND_BURST"), name: "MERCATO_INBOUND_BURST", default: 200, range: 1 ... 1_000_000)
        webhookTimeoutSeconds = try Self.number(value("MERCATO_WEBHOOK_TIMEOUT_SECONDS"), name: "MERCATO_WEBHOOK_TIMEOUT_SECONDS", default: 15, range: 1 ... 60)
        webhookCircuitCooldownSeconds = try Self.number(value("MERCATO_WEBHOOK_CIRCUIT_COOLDOWN_SECONDS"), name: "MERCATO_WEBHOOK_CIRCUIT_COOLDOWN_SECONDS",
                                                        default: 60, range: 1 ... 3600)
        deliveryLogDays = try Self.number(value("MERCATO_DELIVERY_LOG_DAYS"), name: "MERCATO_DELIVERY_LOG_DAYS", default: 30, range: 1 ... 3650)
        refusedCommandsBurst = try Self.number(value("MERCATO_REFUSED_COMMANDS_BURST"), name: "MERCATO_REFUSED_COMMANDS_BURST", default: 100, range: 1 ... 1_000_000)
        refusedCommandsPerSecond = try Self.number(value("MERCATO_REFUSED_COMMANDS_PER_SECOND"), name: "MERCATO_REFUSED_COMMANDS_PER_SECOND",
                                                   default: 10, range: 1 ... 1_000_000)
        switch value("MERCATO_OPENAPI_PUBLIC") {
        case nil, "1": openAPIPublic = true
        case "0": openAPIPublic = false
        case let other?: throw SettingsError("MERCATO_OPENAPI_PUBLIC must be 1 (the default) or 0, not \(other.prefix(32))")
        }
        oauthReturnURL = value("MERCATO_OAUTH_RETURN_URL") ?? "\(publicURL)/oauth/complete"
        guard let returnURL = URL(string: oauthReturnURL), ["http", "https"].contains(returnURL.scheme ?? ""), returnURL.host != nil else {
            throw SettingsError("MERCATO_OAUTH_RETURN_URL must be an absolute http(s) URL")
        }
        oauthRefreshMarginSeconds = try Self.number(value("MERCATO_OAUTH_REFRESH_MARGIN_SECONDS"), name: "MERCATO_OAUTH_REFRESH_MARGIN_SECONDS",
                                                    default: 900, range: 0 ... 86400)
        oauthRefreshScanSeconds = try Self.number(value("MERCATO_OAUTH_REFRESH_SCAN_SECONDS"), name: "MERCATO_OAUTH_REFRESH_SCAN_SECONDS",
                                                  default: 30, range: 1 ... 86400)
        oauthTimeoutSeconds = try Self.number(value("MERCATO_OAUTH_TIMEOUT_SECONDS"), name: "MERCATO_OAUTH_TIMEOUT_SECONDS", default: 15, range: 1 ... 60)
        storageTimeoutSeconds = try Self.number(value("MERCATO_STORAGE_TIMEOUT_SECONDS"), name: "MERCATO_STORAGE_TIMEOUT_SECONDS", default: 15, range: 2 ... 600)
        if let url = value("DATABASE_URL") {
            guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") else {
                throw SettingsError("DATABASE_URL must be a postgres:// URL (leave it unset for the embedded SQLite)")
            }
            database = .postgres(url: url)
        } else {
            database = .sqlite(path: dataDirectory.appendingPathComponent("mercato.sqlite").path)
        }
    }
}

extension Settings {
    static func number(_ text: String?, name: String, default value: Int, range: ClosedRange<Int>) throws -> Int {
        guard let text else { return value }
        guard let n = Int(text), range.contains(n) else {
            throw SettingsError("\(name) must be a whole number from \(range.lowerBound) to \(range.upperBound), not \(text)")
        }
        return n
    }
}

/// A setting that cannot be used, with the reason.
public struct SettingsError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
