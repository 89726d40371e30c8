import Foundation
public import Logging
public import MercatoStorage
public import ServiceLifecycle
import Synchronization

/// A token's standing against its hourly limit after one request.
public struct TokenAllowance: Sendable, Equatable {
    public let allowed: Bool
    public let limit: Int
    /// Requests left in this window (0 once refused).
    public let remaining: Int
    /// Seconds until the window ends and the count starts again.
    public let resetSeconds: Int

    /// `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (CONTRACT §9).
    public var headers: [String: String] {
        ["RateLimit-Limit": String(limit), "RateLimit-Remaining": String(remaining), "RateLimit-Reset": String(resetSeconds)]
    }
}

/// Each API token's requests an hour (CONTRACT §9), counted in fixed windows of one clock hour.
/// SQLite (one node): in this process. PostgreSQL (several nodes): a counter row per token and
/// window that every node adds to through a group commit, so N nodes give a token its limit,
/// not N times it, at one statement per token per batch rather than a transaction per request.
public final class TokenLimits: Sendable {
    private let clock: WallClock
    private let local = Mutex<[String: (window: Int64, count: Int)]>([:])
    private let shared: GroupCommit<TokenUsageStore.Hit, Int>?

    public init(database: Database, clock: WallClock) {
        self.clock = clock
        shared = database.engine == .postgres
            ? GroupCommit(database: database, maxBatch: 512, alone: TokenUsageStore.oneCounter) { hits, db in try await TokenUsageStore.count(hits, on: db) }
            : nil
    }

    /// Counts one request of `token` and answers whether it is within `limit` this hour.
    public func take(token: String, limit: Int) async throws -> TokenAllowance {
        let now = clock.millis
        let window = now / 3_600_000
        let place: Int
        if let shared {
            do {
                place = try await shared.submit(TokenUsageStore.Hit(tokenID: token, window: window))
            } catch let error as StorageUnavailable {
                // Counted or not, the request has not been served.
                throw error.aheadOfTheChange
            }
        } else {
            place = local.withLock { counts in
                // A new hour starts every token again; tokens idle since an earlier hour go.
                if let any = counts.first, any.value.window < window, counts.count > 10_000 { counts = counts.filter { $0.value.window == window } }
                let count = counts[token].map { $0.window == window ? $0.count + 1 : 1 } ?? 1
                counts[token] = (window, count)
                return count
            }
        }
        let reset = Int(((window + 1) * 3_600_000 - now + 999) / 1000)
        return TokenAllowance(allowed: place <= limit, limit: limit, remaining: max(0, limit - place), resetSeconds: max(1, reset))
    }
}

/// Each API token's usage log and `last_used_at`, written in batches by a group commit off the
/// answer's path: a request hands its row over and does not wait for the write. The batches
/// gather for ``gather``: requests one at a time made a commit (and an fsync) each, whose
/// writer thread took a third of a core at one connection and crowded the requests themselves
/// out of the 2 cores (docs/benchmarks.md run BE). As a service it writes what is still
/// gathering when the server stops, after the HTTP server stopped taking requests.
public final class TokenUsageLog: Service {
    /// At most one usage commit this often (plus one when a quiet server gets a request).
    public static let gather: Duration = .milliseconds(25)

    private let database: Database
    private let commit: GroupCommit<TokenUsageRecord, Void>
    private let logger: Logger

    public init(database: Database, logger: Logger) {
        self.database = database
        self.logger = logger
        commit = GroupCommit(database: database, maxBatch: 512, gather: Self.gather) { rows, db in
            try await TokenUsageStore.record(rows, on: db)
            return rows.map { _ in () }
        }
    }

    /// Queues one request's row (no task per request: ``GroupCommit/post(_:failed:)``); a
    /// failed write is logged, never the request's concern.
    public func record(_ row: TokenUsageRecord) {
        let logger = logger
        commit.post(row) { error in
            logger.warning("token usage not recorded", metadata: ["error_type": "\(String(reflecting: type(of: error)))"])
        }
    }

    /// Writes `row` and waits for it (tests and tools).
    public func recordNow(_ row: TokenUsageRecord) async throws {
        try await commit.submit(row)
    }

    /// Writes what is gathering, at once, and from then on every row without gathering.
    public func flush() async {
        await commit.flush()
    }

    /// Waits for the server's graceful shutdown, then ``flush()``: placed in the service group
    /// after storage and before the HTTP server, it stops after the server and before storage.
    public func run() async throws {
        try? await gracefulShutdown()
        await flush()
    }
}
