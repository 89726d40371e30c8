public import Foundation
public import Logging

/// A built-in feature behind the hook protocol. The host knows plugins only through this
/// protocol; the executable is the one place that names them.
///
/// Every hook has a no-op default, so a plugin implements only what it needs. "Has been" hooks
/// run after the change committed, off the request path, at least once.
public protocol MercatoPlugin: Sendable {
    /// What the plugin declares: its scopes, commands and emitted event types.
    static var manifest: PluginManifest { get }

    /// Called once at start with what the host offers.
    func activate(_ api: any PluginAPI) async throws
    /// Called at shutdown, bounded by the host.
    func deactivate() async

    /// An app was installed.
    func installCreated(_ install: InstallInfo, _ context: HookContext) async throws
    /// An app was uninstalled: drop everything kept for it.
    func installRemoved(_ install: InstallInfo, _ context: HookContext) async throws
    /// An install's config changed.
    func configChanged(_ install: InstallInfo, _ context: HookContext) async throws
    /// An install's connection to an outside account was made, lost or broken (`event` is
    /// `connection.connected`, `connection.disconnected` or `connection.refresh_failed`).
    func connectionChanged(_ install: InstallInfo, event: String, _ context: HookContext) async throws
    /// An admin or lifecycle action committed in the org (for records such as an audit trail).
    func activityRecorded(_ activity: Activity, _ context: OrgContext) async throws

    /// Answers a verified, authorised command named in the manifest.
    func handle(_ command: CommandRequest, _ context: HookContext) async throws -> JSONValue
    /// Answers a call of one of the manifest's routes, after the host checked the caller's role.
    /// Throw ``CommandError`` for a client error: it becomes Problem Details with its status and code.
    func handleRoute(_ request: RouteRequest, _ context: OrgContext) async throws -> RouteResponse
}

extension MercatoPlugin {
    public func activate(_ api: any PluginAPI) async throws {}
    public func deactivate() async {}
    public func installCreated(_ install: InstallInfo, _ context: HookContext) async throws {}
    public func installRemoved(_ install: InstallInfo, _ context: HookContext) async throws {}
    public func configChanged(_ install: InstallInfo, _ context: HookContext) async throws {}
    public func connectionChanged(_ install: InstallInfo, event: String, _ context: HookContext) async throws {}
    public func activityRecorded(_ activity: Activity, _ context: OrgContext) async throws {}
    public func handleRoute(_ request: RouteRequest, _ context: OrgContext) async throws -> RouteResponse {
        throw CommandError.notFound("No route `\(request.route)`.")
    }
    public func handle(_ command: CommandRequest, _ context: HookContext) async throws -> JSONValue {
        throw CommandError.unknownCommand(command.command)
    }
}

/// What the host tells a plugin about an install.
public struct InstallInfo: Sendable, Equatable {
    public var installID: String
    public var orgID: String
    public var orgName: String
    public var appKey: String
    public var appVersion: String
    public var grantedScopes: [String]
    public var status: String

    public init(installID: String, orgID: String, orgName: String, appKey: String, appVersion: String, grantedScopes: [String], status: String) {
        self.installID = installID
        self.orgID = orgID
        self.orgName = orgName
        self.appKey = appKey
        self.appVersion = appVersion
        self.grantedScopes = grantedScopes
        self.status = status
    }
}

/// Per-call context: who asked, a logger, and what the host offers.
public struct HookContext: Sendable {
    public var requestID: String?
    public var logger: Logger
    /// The host's services for this call (outbox, config, ...).
    public var api: any PluginAPI
    /// This plugin's storage for the install the call is about: namespaced by the host, so a
    /// plugin never sees another plugin's or another install's data.
    public var storage: any PluginStorage

    public init(requestID: String?, logger: Logger, api: any PluginAPI, storage: any PluginStorage) {
        self.requestID = requestID
        self.logger = logger
        self.api = api
        self.storage = storage
    }
}

/// A plugin's key-value storage for one install, with a size quota kept by the host.
public protocol PluginStorage: Sendable {
    /// The value and its version, `nil` when absent.
    func get(_ key: String) async throws -> StoredValue?
    /// Writes `value`; answers the new version (1 for a new key). Throws ``CommandError`` 413
    /// `quota_exceeded` when the install's quota would be passed.
    func set(_ key: String, _ value: JSONValue) async throws -> Int
    /// `true` when the key existed.
    func delete(_ key: String) async throws -> Bool
    /// Keys starting with `prefix`, after `after`, in order, at most `limit`.
    func keys(prefix: String, after: String?, limit: Int) async throws -> [String]
    /// Drops everything of this plugin for this install.
    func deleteAll() async throws
}

/// A stored value and its version (grows by one per write).
public struct StoredValue: Sendable, Equatable {
    public var value: JSONValue
    public var version: Int
    public init(value: JSONValue, version: Int) {
        self.value = value
        self.version = version
    }
}

/// A command after the host verified its signature, idempotency, rate limit and scopes.
public struct CommandRequest: Sendable {
    public var id: String
    public var command: String
    public var args: [String: JSONValue]
    public var install: InstallInfo

    public init(id: String, command: String, args: [String: JSONValue], install: InstallInfo) {
        self.id = id
        self.command = command
        self.args = args
        self.install = install
    }
}

/// A failure a plugin reports to the command sender: an HTTP status, a stable code, a sentence.
public struct CommandError: Error, Sendable, Equatable {
    public var status: Int
    public var code: String
    public var message: String

    public init(status: Int, code: String, message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    public static func unknownCommand(_ name: String) -> CommandError {
        CommandError(status: 404, code: "unknown_command", message: "No plugin answers `\(name)`.")
    }
    public static func invalidArgs(field: String, _ message: String) -> CommandError {
        CommandError(status: 422, code: "invalid_args", message: "`\(field)` \(message)")
    }
    public static func notFound(_ message: String) -> CommandError {
        CommandError(status: 404, code: "not_found", message: message)
    }
}

/// An event a plugin emits into the outbox.
public struct EventDraft: Sendable, Equatable {
    public var type: String
    public var data: JSONValue
    public init(type: String, data: JSONValue) {
        self.type = type
        self.data = data
    }
}

/// What the host offers plugins.
public protocol PluginAPI: Sendable {
    /// Writes an event for `installID` into the outbox.
    func emit(_ event: EventDraft, for installID: String) async throws
    /// The install's config, secret fields in clear.
    func config(of installID: String) async throws -> [String: JSONValue]
    /// A fresh access token of the install's OAuth connection, refreshed first when near
    /// expiry. Throws ``CommandError`` with `not_connected`, `needs_reconnect` (409) or
    /// `provider_unavailable` (503) when there is none to give.
    func accessToken(of installID: String) async throws -> AccessToken
}

/// An install's access token at its outside provider. Hand it only to the install's own app.
public struct AccessToken: Sendable, Equatable {
    public var token: String
    /// `nil` when the provider gave the token no lifetime.
    public var expiresAt: Date?
    public var scopes: [String]

    public init(token: String, expiresAt: Date?, scopes: [String]) {
        self.token = token
        self.expiresAt = expiresAt
        self.scopes = scopes
    }
}

extension CommandError {
    public static func forbidden(code: String = "forbidden", _ message: String) -> CommandError {
        CommandError(status: 403, code: code, message: message)
    }
    public static func invalidRequest(field: String, _ message: String) -> CommandError {
        CommandError(status: 422, code: "invalid_request", message: "`\(field)` \(message)")
    }
}
