/// A feature behind the hook protocol: the one type a plugin author implements.
///
/// The host knows plugins only through this protocol; the executable is the one place that
/// names them. A plugin declares what it offers in its ``manifest`` (scopes, commands, event
/// types, routes) and implements the hooks it needs: every hook has a no-op default.
///
/// - ``handle(_:_:)`` answers a signed command, after the host checked it (<doc:WritingAPlugin>).
/// - ``handleRoute(_:_:)`` answers a management API route, after the host checked the caller's
///   role (<doc:RoutesAndOrgs>).
/// - The "has been" hooks (``installCreated(_:_:)``, ``installRemoved(_:_:)``,
///   ``configChanged(_:_:)``, ``connectionChanged(_:event:_:)``, ``activityRecorded(_:_:)``) run
///   after the change committed, off the request path, at least once (<doc:Hooks>).
///
/// Each call runs in its own task behind a timeout and an error boundary; throw
/// ``CommandError`` for something the caller should fix. Anything else thrown is a crash, and
/// repeated crashes disable the plugin on that node (<doc:Hooks>).
public protocol MercatoPlugin: Sendable {
    /// What the plugin declares: its scopes, commands, emitted event types and routes. Read
    /// once at start.
    static var manifest: PluginManifest { get }

    /// Called once at start with what the host offers. A failure disables this plugin only.
    func activate(_ api: any PluginAPI) async throws
    /// Called at shutdown, for every plugin at once, bounded by the host (5 seconds in all).
    func deactivate() async

    /// An app was installed.
    func installCreated(_ install: InstallInfo, _ context: HookContext) async throws
    /// An app was uninstalled: drop everything kept for it (the host drops nothing on its own).
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
    /// Answers a call of one of the manifest's public routes: the host found the install the
    /// path names (the context is that install's) and kept the size and rate limits; the plugin
    /// authenticates the call. Throw ``CommandError`` for a client error.
    func handlePublicRoute(_ request: PublicRouteRequest, _ context: HookContext) async throws -> RouteResponse
}

extension MercatoPlugin {
    /// Does nothing.
    public func activate(_ api: any PluginAPI) async throws {}
    /// Does nothing.
    public func deactivate() async {}
    /// Does nothing.
    public func installCreated(_ install: InstallInfo, _ context: HookContext) async throws {}
    /// Does nothing: a plugin that keeps data per install implements this hook to drop it.
    public func installRemoved(_ install: InstallInfo, _ context: HookContext) async throws {}
    /// Does nothing.
    public func configChanged(_ install: InstallInfo, _ context: HookContext) async throws {}
    /// Does nothing.
    public func connectionChanged(_ install: InstallInfo, event: String, _ context: HookContext) async throws {}
    /// Does nothing.
    public func activityRecorded(_ activity: Activity, _ context: OrgContext) async throws {}
    /// Throws ``CommandError/notFound(_:)``: a plugin that declares routes implements this.
    public func handleRoute(_ request: RouteRequest, _ context: OrgContext) async throws -> RouteResponse {
        throw CommandError.notFound("No route `\(request.route)`.")
    }
    /// Throws ``CommandError/notFound(_:)``: a plugin that declares public routes implements this.
    public func handlePublicRoute(_ request: PublicRouteRequest, _ context: HookContext) async throws -> RouteResponse {
        throw CommandError.notFound("No route `\(request.route)`.")
    }
    /// Throws ``CommandError/unknownCommand(_:)``: a plugin that declares commands implements this.
    public func handle(_ command: CommandRequest, _ context: HookContext) async throws -> JSONValue {
        throw CommandError.unknownCommand(command.command)
    }
}
