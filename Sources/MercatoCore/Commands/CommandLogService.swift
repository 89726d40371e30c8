import Foundation
import MercatoHooks
import SQLKit
public import MercatoStorage

/// Reading the command log (install admins, app developers) and the operator's per-install
/// rate limit override.
public struct CommandLogService: Sendable {
    public let database: Database
    public let clock: WallClock

    public init(database: Database, clock: WallClock) {
        self.database = database
        self.clock = clock
    }

    /// One install's log, newest first (admin+ of the install's org).
    public func forInstall(_ id: String, by caller: Principal, filter: CommandLogFilter, cursor: String?, limit: Int) async throws -> ([CommandLogRecord], String?) {
        let org = try caller.org(atLeast: .admin, to: "Reading an install's command log")
        return try await database.read { db in
            guard let install = try await InstallStore.find(id: id, on: db), install.orgId == org else { throw APIError.notFound("Install \(id)") }
            return try await page(column: "install_id", value: install.id, filter: filter, cursor: cursor, limit: limit, on: db)
        }
    }

    /// An app's log across installs (developer+ of the app's org).
    public func forApp(_ key: String, by caller: Principal, filter: CommandLogFilter, cursor: String?, limit: Int) async throws -> ([CommandLogRecord], String?) {
        let org = try caller.org(atLeast: .developer, to: "Reading an app's command log")
        return try await database.read { db in
            guard let app = try await AppStore.find(key: key, on: db), app.developerOrgId == org else { throw APIError.notFound("App \(key)") }
            return try await page(column: "app_id", value: app.id, filter: filter, cursor: cursor, limit: limit, on: db)
        }
    }

    private func page(column: String, value: String, filter: CommandLogFilter, cursor: String?, limit: Int, on db: any SQLDatabase) async throws -> ([CommandLogRecord], String?) {
        if let cursor, !RecordID.isValid(cursor, prefix: "cmd") {
            throw APIError.invalidRequest("`cursor` is not a cursor this list handed out.", errors: [.init(field: "cursor", message: "is not valid")])
        }
        let rows = try await CommandStore.log(where: column, equals: value, filter: filter, beforeID: cursor, limit: limit + 1, on: db)
        let page = Array(rows.prefix(limit))
        return (page, rows.count > limit ? page.last?.id : nil)
    }

    /// Overrides the plan's command rate for one install (operator only).
    public func setRateLimit(install id: String, perSecond: Double, burst: Int, by caller: Principal) async throws {
        guard caller.isOperator else { throw APIError.forbidden("Only the operator can override rate limits.") }
        var problems: [APIError.FieldProblem] = []
        if !(perSecond > 0 && perSecond <= 1_000_000) { problems.append(.init(field: "per_second", message: "must be above 0 and at most 1000000")) }
        if !(1 ... 10_000_000).contains(burst) { problems.append(.init(field: "burst", message: "must be 1 to 10000000")) }
        guard problems.isEmpty else {
            throw APIError.fieldProblems(problems)
        }
        try await database.transaction { db in
            guard try await InstallStore.live(id: id, on: db) != nil else { throw APIError.notFound("Install \(id)") }
            try await CommandStore.setRateLimit(install: id, perSecond: perSecond, burst: burst, at: clock.millis, on: db)
        }
    }
}

extension CommandLogFilter {
    /// Reads `command`, `outcome`, `since`, `until` (RFC 3339) from query values.
    public init(query: [String: String]) throws {
        func time(_ name: String) throws -> Int64? {
            try RFC3339Field.parse(query[name], field: name).map(Timestamp.millis)
        }
        self.init(command: query["command"].flatMap { $0.isEmpty ? nil : $0 }, outcome: query["outcome"].flatMap { $0.isEmpty ? nil : $0 },
                  since: try time("since"), until: try time("until"))
    }
}
