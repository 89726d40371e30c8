import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// SQLite's connections: one writer, taken by one transaction at a time behind a FIFO lock,
/// whose transactions run on a thread of their own (a task executor), and a pool of readers
/// whose statements run on the caller.
///
/// A transaction's statements run synchronously on the writer's thread, so a batch of the
/// group commit costs one hop there and back, and its fsync never blocks a thread of the shared
/// executor where requests run. A read is a single statement in autocommit on an idle reader
/// (WAL: readers never wait for the writer), run where the caller is, with no hop at all.
final class SQLiteStorage: Sendable {
    let writer: CachedSQLiteConnection
    let readers: SQLiteReaderPool
    /// Held by each batch of the writer (and by `close`).
    let lock = AsyncLock()
    /// Transactions waiting for the writer (``SQLiteWriteQueue``).
    let writes = SQLiteWriteQueue()
    private let writerGroup: MultiThreadedEventLoopGroup
    let writerLoop: any EventLoop
    let executor: EventLoopTaskExecutor

    /// WAL: readers never block the writer. synchronous=FULL: a committed (and so answered)
    /// write survives power loss, not only a crashed process. busy_timeout covers other processes
    /// (`mercato keys rotate`, `mercato migrate`) sharing the file.
    static func pragmas(writer: Bool) -> [String] {
        (writer ? ["PRAGMA journal_mode=WAL"] : []) + ["PRAGMA synchronous=FULL", "PRAGMA busy_timeout=10000", "PRAGMA foreign_keys=ON"]
    }

    /// The writer thread's nice value (Linux: lower runs sooner). Every write of the process
    /// waits for this one thread, which mostly sleeps (in an fsync, or for work) and then has a
    /// little to do; at normal priority its wake-ups queue behind request work on busy cores,
    /// and every waiting request waits that long with it (run AV in docs/benchmarks.md: with it,
    /// a batch of the command log spends 50 µs instead of 165 reaching the writer, and its commit
    /// 330 µs instead of 590).
    static let writerNice: Int32 = -10

    init(path: String, logger: Logger) throws {
        let writer = try CachedSQLiteConnection(path: path, pragmas: Self.pragmas(writer: true))
        let readers = SQLiteReaderPool(path: path)
        do {
            try readers.prepare(count: SQLiteReaderPool.warmCount)
        } catch {
            writer.close()
            readers.close()
            throw error
        }
        self.writer = writer
        self.readers = readers
        writerGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        writerLoop = writerGroup.next()
        executor = EventLoopTaskExecutor(writerLoop)
        writerLoop.execute { Self.raiseWriterPriority(logger: logger) }
    }

    /// Runs on the writer's thread: on Linux a nice value is a thread's own, so only the
    /// writer's priority changes. Raising it needs CAP_SYS_NICE (root has it); without, the
    /// writer keeps the process's priority and says so once.
    private static func raiseWriterPriority(logger: Logger) {
        #if os(Linux)
        if setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, writerNice) != 0 {
            let reason = String(cString: strerror(errno))
            logger.notice("the SQLite writer runs at the process's priority: raising it to nice \(writerNice) was refused (\(reason)); grant CAP_SYS_NICE to let writes queue less behind request work (README.md, Operating it)")
        }
        #endif
    }

    func close() async {
        // No transaction is taken from now on; the queued ones commit first, then the writer
        // lock lets a transaction still running finish. Only then does the writer's thread stop
        // (a transaction sent to it after that would never run).
        while writes.close() {
            do { try await Task.sleep(for: .milliseconds(2)) } catch { await Task.yield() }
        }
        try? await lock.withLock { writer.close() }
        readers.close()
        try? await writerGroup.shutdownGracefully()
    }
}

/// Idle reader connections, each handed to one statement at a time. A statement runs
/// synchronously, so the pool holds about as many connections as threads that read at once; it
/// opens one more when all are busy.
final class SQLiteReaderPool: Sendable {
    static let warmCount = 4
    /// Idle connections kept beyond this many are closed when handed back.
    static let idleLimit = 16

    private struct State {
        var idle: [CachedSQLiteConnection] = []
        var closed = false
    }

    private let state = Mutex(State())
    private let path: String

    init(path: String) { self.path = path }

    /// Opens `count` connections ahead of the first reads.
    func prepare(count: Int) throws {
        for _ in 0 ..< count {
            let connection = try open()
            state.withLock { $0.idle.append(connection) }
        }
    }

    private func open() throws -> CachedSQLiteConnection {
        try CachedSQLiteConnection(path: path, pragmas: SQLiteStorage.pragmas(writer: false))
    }

    /// Runs `body` with an idle connection of its own.
    func withConnection<R>(_ body: (CachedSQLiteConnection) throws -> R) throws -> R {
        let taken = try state.withLock { state throws -> CachedSQLiteConnection? in
            if state.closed { throw SQLiteFailure(code: 21, message: "the database is closed") }
            return state.idle.popLast()
        }
        let connection = try taken ?? open()
        defer {
            let keep = state.withLock { state -> Bool in
                guard !state.closed, state.idle.count < Self.idleLimit else { return false }
                state.idle.append(connection)
                return true
            }
            if !keep { connection.close() }
        }
        return try body(connection)
    }

    /// Closes the idle connections; one in use closes when handed back.
    func close() {
        let idle = state.withLock { state -> [CachedSQLiteConnection] in
            state.closed = true
            defer { state.idle.removeAll() }
            return state.idle
        }
        for connection in idle { connection.close() }
    }
}

/// Runs the jobs of tasks that prefer it on one event loop's thread.
final class EventLoopTaskExecutor: TaskExecutor {
    let loop: any EventLoop
    init(_ loop: any EventLoop) { self.loop = loop }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
