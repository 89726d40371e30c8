import Foundation
public import Logging
import NIOCore
import NIOPosix
import PostgresKit
public import PostgresNIO
import Synchronization
public import SQLKit

/// The two storage engines Mercato runs on.
public enum StorageEngine: String, Sendable, CaseIterable, CustomStringConvertible {
    /// Embedded, one file in WAL mode: the zero-config default.
    case sqlite
    /// A PostgreSQL server: for several stateless nodes.
    case postgres

    public var description: String { rawValue }
}

/// Where the data lives.
public enum DatabaseLocation: Sendable {
    /// An SQLite file (created when missing).
    case sqlite(path: String)
    /// A `postgres://user:pass@host:port/db?sslmode=...` URL.
    case postgres(url: String)
}

/// Why storage could not be reached or used. Carries no SQL and no bound values.
public struct StorageError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Storage did not answer in time (no PostgreSQL connection could be had within
/// its ``StorageDeadlines``, or the server went away mid-statement): the request may be sent
/// again. HTTP answers it with 503 `storage_unavailable` and `Retry-After`.
///
/// `outcomeUnknown`: a transaction's `COMMIT` was sent and its answer never came (the deadline
/// passed, or the connection broke): it may have been applied. Before the `COMMIT` a change
/// given up on is rolled back, so every other case applied nothing.
public struct StorageUnavailable: Error, CustomStringConvertible {
    public let message: String
    public let outcomeUnknown: Bool
    public init(_ message: String, outcomeUnknown: Bool = false) {
        self.message = message
        self.outcomeUnknown = outcomeUnknown
    }
    public var description: String { message }

    /// This failure as the request's when it hit a write of bookkeeping ahead of the request's
    /// own change (an hourly count, a rate claim): whatever became of that write, the request
    /// was not served and nothing of it was applied.
    public var aheadOfTheChange: StorageUnavailable { StorageUnavailable(message) }
}

/// How long PostgreSQL may keep a request waiting before it is told storage is unavailable
/// (503 `storage_unavailable`, retry): `lease` for a pooled connection (the pool itself would
/// wait a minute for a server that went away), `statement` for a read or a group commit's
/// transaction in all (a statement caught on a connection as the server stops can otherwise
/// wait without end). Generous on purpose: a loaded machine must not turn into refusals.
public struct StorageDeadlines: Sendable {
    public var lease: Duration
    public var statement: Duration
    public init(lease: Duration = .seconds(5), statement: Duration = .seconds(15)) {
        self.lease = lease
        self.statement = statement
    }
}

/// One storage API over both engines.
///
/// Reads run on any connection. Writes run in ``transaction(_:)``: on PostgreSQL a pooled
/// connection in `BEGIN ... COMMIT`; on SQLite the single writer connection, where the
/// transactions waiting together share one `BEGIN IMMEDIATE ... COMMIT`, each in a savepoint of
/// its own (``SQLiteWriteQueue``), so writers never meet `SQLITE_BUSY` and share an fsync.
/// SQLite's statements are prepared once per connection and run on the calling thread
/// (``SQLiteStorage``).
public final class Database: Sendable {
    public let engine: StorageEngine
    public let logger: Logger
    let backend: Backend
    /// Open once statements can run: at once on SQLite and for a standalone PostgreSQL
    /// client; when ``run()`` starts the client for a service group.
    let running = Latch()

    enum Backend: Sendable {
        case sqlite(SQLiteStorage)
        /// `run` is the task of a standalone client (``open(_:logger:poolSize:asService:)``
        /// without `asService`); a service's client runs in ``run()``.
        case postgres(client: PostgresClient, run: Task<Void, Never>?)
    }

    /// Where the data lives, for messages (a PostgreSQL URL without its password).
    let location: String
    let deadlines: StorageDeadlines
    /// PostgreSQL: one connection of the pool's own settings, opened outside the pool to tell
    /// why the pool gets none (the pool only retries, and logs each failure).
    private let probe: PostgresConnection.Configuration?

    private init(engine: StorageEngine, logger: Logger, backend: Backend, location: String, deadlines: StorageDeadlines = StorageDeadlines(),
                 probe: PostgresConnection.Configuration? = nil) {
        self.engine = engine
        self.logger = logger
        self.backend = backend
        self.location = location
        self.deadlines = deadlines
        self.probe = probe
    }

    /// Opens storage at `location`. Standalone (the CLI, tests), it runs on its own until
    /// ``close()``. With `asService`, it is a ServiceLifecycle service: a PostgreSQL client
    /// starts when the group calls ``run()`` (wait with ``waitUntilRunning()``), and the group
    /// closes storage when it shuts down.
    public static func open(_ location: DatabaseLocation, logger: Logger, poolSize: Int = 10, asService: Bool = false,
                            deadlines: StorageDeadlines = StorageDeadlines()) async throws -> Database {
        switch location {
        case .sqlite(let path):
            let database = try await openSQLite(path: path, logger: logger)
            database.running.open()
            return database
        case .postgres(let url):
            return try await openPostgres(url: url, logger: logger, poolSize: poolSize, asService: asService, deadlines: deadlines)
        }
    }

    private static func openSQLite(path: String, logger: Logger) async throws -> Database {
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        do {
            return Database(engine: .sqlite, logger: logger, backend: .sqlite(try SQLiteStorage(path: path, logger: logger)), location: path)
        } catch {
            throw StorageError("cannot open the SQLite database at \(path): \(error)")
        }
    }

    private static func openPostgres(url: String, logger: Logger, poolSize: Int, asService: Bool, deadlines: StorageDeadlines) async throws -> Database {
        let configuration = try PostgresURL.parse(url)
        var clientConfiguration = configuration
        clientConfiguration.options.maximumConnections = poolSize
        let client = PostgresClient(configuration: clientConfiguration, eventLoopGroup: SpreadLoops(), backgroundLogger: logger)
        let location = PostgresURL.redacted(url)
        let probe = try PostgresURL.connection(url)
        if asService {
            return Database(engine: .postgres, logger: logger, backend: .postgres(client: client, run: nil), location: location, deadlines: deadlines,
                            probe: probe)
        }
        let started = Latch()
        let run = Task {
            started.open()
            await client.run()
        }
        await started.wait()
        let database = Database(engine: .postgres, logger: logger, backend: .postgres(client: client, run: run), location: location, deadlines: deadlines,
                                probe: probe)
        database.running.open()
        do {
            try await database.checkReachable()
        } catch {
            await database.close()
            throw error
        }
        return database
    }

    /// One trivial statement; a storage error that says where, when it fails, and why when one
    /// connection of its own can tell (the server's own words: a database that does not exist, a
    /// password refused; or the socket's: connection refused).
    func checkReachable() async throws {
        do {
            try await read { try await $0.raw("SELECT 1").run() }
        } catch {
            let why = await connectionFailure() ?? String(String(reflecting: error).prefix(300))
            throw StorageError("cannot reach PostgreSQL at \(location): \(why)")
        }
    }

    /// Why one connection with the pool's settings fails; `nil` when it opens (or on SQLite).
    func connectionFailure() async -> String? {
        guard let probe else { return nil }
        do {
            let connection = try await PostgresConnection.connect(configuration: probe, id: 0, logger: logger)
            try? await connection.close()
            return nil
        } catch let error as PSQLError {
            if let message = error.serverInfo?[.message] {
                return "the server refused the connection: \(message) (SQLSTATE \(error.serverInfo?[.sqlState] ?? "unknown"))"
            }
            return "the connection failed: " + (error.underlying.map { String(describing: $0) } ?? "\(error.code)")
        } catch {
            return "the connection failed: \(error)"
        }
    }

    /// Closes every connection.
    public func close() async {
        switch backend {
        case .sqlite(let storage):
            await storage.close()
        case .postgres(_, let run):
            // A service's client stopped with its group (``run()``).
            run?.cancel()
            await run?.value
        }
    }

    /// Runs `body` on a connection for reading (autocommit).
    ///
    /// On PostgreSQL a read answers within the statement deadline or throws ``StorageUnavailable``: a
    /// statement caught on a connection as the server stops or starts can otherwise wait
    /// without end (seen in the restart drill), and a read abandoned changes nothing.
    public func read<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        switch backend {
        case .sqlite(let storage):
            return try await body(SQLiteSQLDatabase(target: .readers(storage.readers), logger: logger, eventLoop: storage.writerLoop))
        case .postgres(let client, _):
            return try await bounded(client) { try await body(PostgresConnectionSQL($0)) }
        }
    }

    /// `body` on a leased connection, answered within the statement deadline (`whole`, the
    /// default): past it the caller is told storage is unavailable and the work goes on alone
    /// until it ends (its answer unused). Without `whole` only the lease is bounded: the body,
    /// once it has its connection, runs to its end (migrations, sweeps).
    ///
    /// `since`: when the caller started waiting, if earlier than now (a group commit's oldest
    /// operation): both deadlines count from then, so waiting behind a stuck batch and then for
    /// one's own never adds up to more than one deadline.
    ///
    /// `commit`: a transaction's gate (``inTransaction(_:begin:commit:_:)``). Given up on before
    /// it sent its `COMMIT`, the transaction rolls back when it gets there; given up on after,
    /// the caller is told the outcome is unknown.
    /// `writes`: the body is one statement that writes by itself (no transaction): given up on
    /// once it may have been sent, its outcome is unknown.
    private func bounded<R: Sendable>(_ client: PostgresClient, since: ContinuousClock.Instant? = nil, whole: Bool = true, commit: FirstOf? = nil,
                                      writes: Bool = false, _ body: @escaping @Sendable (PostgresConnection) async throws -> R) async throws -> R {
        // One timer for both deadlines (the lease, then the whole statement) and one task for
        // the work: the caller resumes with whichever ends first.
        let once = ResumeOnce<R>()
        let lease = FirstOf()
        let waited = since.map { max(.zero, ContinuousClock.now - $0) } ?? .zero
        let (statementDeadline, location) = (deadlines.statement, self.location)
        let leaseDeadline = whole ? min(deadlines.lease, statementDeadline - waited) : deadlines.lease
        guard leaseDeadline > .zero else {
            throw StorageUnavailable("no answer from PostgreSQL within \(statementDeadline) (\(location))")
        }
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        return try await withCheckedThrowingContinuation { continuation in
            once.set(continuation)
            // Started in place (up to the first wait: for a connection, or PostgreSQL's answer).
            let work = Task.immediate {
                let result: Result<R, any Error>
                do {
                    result = .success(try await client.withConnection { connection in
                        // Given up on before a connection came: the body never runs.
                        guard lease.take() else { throw CancellationError() }
                        return try await body(connection)
                    })
                } catch {
                    result = .failure(Self.unavailable(error, location: location, outcomeUnknown: writes && lease.taken))
                }
                once.resume(with: result)
            }
            // The deadlines are event-loop timers, cancelled when the work answers first: no
            // task and no wake-up per statement for a deadline that did not come.
            once.arm {
                loop.scheduleTask(in: TimeAmount(leaseDeadline)) {
                    if lease.abandon() {
                        work.cancel()   // takes the waiting request out of the pool's queue
                        once.resume(with: .failure(StorageUnavailable("no PostgreSQL connection within \(leaseDeadline) (\(location) unreachable?)")))
                        return
                    }
                    guard whole else { return }
                    once.arm {
                        loop.scheduleTask(in: TimeAmount(statementDeadline - waited - leaseDeadline)) {
                            if writes || commit.map({ !$0.abandon() }) == true {
                                once.resume(with: .failure(StorageUnavailable("no answer to a write from PostgreSQL within \(statementDeadline) (\(location))",
                                                                              outcomeUnknown: true)))
                            } else {
                                once.resume(with: .failure(StorageUnavailable("no answer from PostgreSQL within \(statementDeadline) (\(location))")))
                            }
                        }
                    }
                }
            }
        }
    }

    /// A connection failure as ``StorageUnavailable`` (`outcomeUnknown` for a write that may
    /// have been sent); any other error as it is.
    private static func unavailable(_ error: any Error, location: String, outcomeUnknown: Bool) -> any Error {
        if let error = error as? PSQLError, isConnectionFailure(error) {
            return StorageUnavailable("the PostgreSQL connection failed: \(error.code)", outcomeUnknown: outcomeUnknown)
        }
        if String(reflecting: type(of: error)).hasSuffix(".ConnectionPoolError") {
            // The pool's own refusal (its circuit breaker open after a minute of failed connects);
            // its type lives in a module PostgresNIO does not export.
            return StorageUnavailable("the PostgreSQL pool could not lease a connection (\(location))")
        }
        return error
    }

    /// Runs `body` on a pooled PostgreSQL connection (for named prepared statements on hot
    /// paths); `nil` on SQLite, where the caller takes its generic path.
    /// `writes`: `body` is a write of its own (one statement, no transaction), whose outcome is
    /// unknown when it is given up on after it may have been sent.
    public func withPostgres<R: Sendable>(since: ContinuousClock.Instant? = nil, writes: Bool = false,
                                          _ body: @escaping @Sendable (PostgresConnection) async throws -> R) async throws -> R? {
        guard case .postgres(let client, _) = backend else { return nil }
        return try await bounded(client, since: since, writes: writes, body)
    }

    private static func isConnectionFailure(_ error: PSQLError) -> Bool {
        switch error.code {
        case .connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .poolClosed, .failedToAddSSLHandler:
            return true
        case .server:
            // SQLSTATE class 08 (connection exception) and 57 (operator intervention: the
            // server shutting down or starting up, `57P01`-`57P03`).
            let state = error.serverInfo?[.sqlState] ?? ""
            return state.hasPrefix("08") || state.hasPrefix("57P")
        default:
            return false
        }
    }

    /// Runs `body` in one transaction: committed when it returns, rolled back when it throws.
    ///
    /// On PostgreSQL it answers within the statement deadline, as every storage call on a
    /// request's path must (CONTRACT §12: never a hang past the timeout): a transaction caught on
    /// a connection as the server stops can otherwise wait without end. Past the deadline the
    /// caller is told storage is unavailable (503): the abandoned transaction rolls back when it
    /// reaches its `COMMIT`, or, when its `COMMIT` was already out, the error says its outcome is
    /// unknown (``StorageUnavailable/outcomeUnknown``). Long jobs use ``longTransaction(_:)``.
    public func transaction<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try await boundedTransaction(body)
    }

    /// ``transaction(_:)`` for long jobs (migrations, sweeps, key rotation, the catalog import):
    /// only the wait for a connection is bounded; once it has one, the body runs to its end.
    public func longTransaction<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        switch backend {
        case .sqlite(let storage):
            // Committed with the other transactions waiting for the writer (SQLiteWriteQueue).
            return try await storage.transaction(logger: logger) { try await body($0) }
        case .postgres(let client, _):
            return try await bounded(client, whole: false) { connection in
                try await Self.inTransaction(PostgresConnectionSQL(connection), begin: "BEGIN", body)
            }
        }
    }

    /// ``transaction(_:)`` with the deadline counted from `since`, when its callers started
    /// waiting, if earlier (a group commit's oldest operation: waiting behind a stuck batch and
    /// then for its own never adds up to more than one deadline).
    public func boundedTransaction<R: Sendable>(since: ContinuousClock.Instant? = nil,
                                                _ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        // SQLite's writer answers every transaction in turn: nothing there waits on a network.
        guard case .postgres(let client, _) = backend else { return try await longTransaction(body) }
        let commit = FirstOf()
        return try await bounded(client, since: since, commit: commit) { connection in
            try await Self.inTransaction(PostgresConnectionSQL(connection), begin: "BEGIN", commit: commit, body)
        }
    }

    /// ``boundedTransaction(since:_:)``, with `committed` told the result as soon as it is
    /// committed: on SQLite on the writer's thread, before this caller resumes (a group
    /// commit answers its waiters from there); on PostgreSQL when the transaction returns.
    func boundedTransaction<R: Sendable>(since: ContinuousClock.Instant?, committed: @escaping @Sendable (R) -> Void,
                                         _ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        guard case .sqlite(let storage) = backend else {
            let result = try await boundedTransaction(since: since, body)
            committed(result)
            return result
        }
        return try await storage.transaction(logger: logger, committed: committed) { try await body($0) }
    }

    /// `body` between `begin` and `COMMIT`, rolled back when it throws. With `commit`, the
    /// `COMMIT` is sent only if the caller has not given up meanwhile (``bounded``'s deadline):
    /// a transaction whose caller was told "storage unavailable, nothing done" rolls back
    /// rather than committing after the answer. A `COMMIT` whose connection broke before its
    /// answer may have been applied: ``StorageUnavailable/outcomeUnknown``.
    private static func inTransaction<R>(_ db: any SQLDatabase, begin: String, commit: FirstOf? = nil,
                                         _ body: (any SQLDatabase) async throws -> R) async throws -> R {
        try await db.raw(SQLQueryString(begin)).run()
        let result: R
        do {
            result = try await body(db)
            if let commit, !commit.take() { throw StorageUnavailable("given up on at the deadline before its COMMIT: rolled back") }
        } catch {
            try? await db.raw("ROLLBACK").run()
            throw error
        }
        do {
            try await db.raw("COMMIT").run()
        } catch {
            if let error = error as? PSQLError, isConnectionFailure(error) {
                throw StorageUnavailable("the PostgreSQL connection failed during a COMMIT: \(error.code)", outcomeUnknown: true)
            }
            try? await db.raw("ROLLBACK").run()
            throw error
        }
        return result
    }
}

/// Which came first, a step of the work or its deadline (see `Database.bounded`): a statement
/// getting its connection, a transaction sending its `COMMIT`. Exactly one of `take` and
/// `abandon` answers `true`.
final class FirstOf: Sendable {
    private enum State { case waiting, taken, abandoned }
    private let state = Mutex(State.waiting)

    func take() -> Bool {
        state.withLock { s in
            guard s == .waiting else { return s == .taken }
            s = .taken
            return true
        }
    }

    func abandon() -> Bool {
        state.withLock { s in
            guard s == .waiting else { return false }
            s = .abandoned
            return true
        }
    }

    /// Whether the work took its step (without taking it).
    var taken: Bool { state.withLock { $0 == .taken } }
}

/// A continuation resumed by whichever ends first, the work or its deadline's timer (see
/// `Database.bounded`); resuming cancels the timer still pending.
private final class ResumeOnce<R: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<R, any Error>?
        var timer: Scheduled<Void>?
    }
    private let state = Mutex(State())

    func set(_ continuation: CheckedContinuation<R, any Error>) {
        state.withLock { $0.continuation = continuation }
    }

    /// Makes `schedule`'s timer the pending one, unless the caller was already resumed.
    func arm(_ schedule: () -> Scheduled<Void>) {
        state.withLock { s in
            guard s.continuation != nil else { return }
            s.timer = schedule()
        }
    }

    func resume(with result: Result<R, any Error>) {
        let (waiting, timer) = state.withLock { s in
            defer { s.continuation = nil; s.timer = nil }
            return (s.continuation, s.timer)
        }
        timer?.cancel()
        waiting?.resume(with: result)
    }
}
