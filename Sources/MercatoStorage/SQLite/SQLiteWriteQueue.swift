import Logging
import SQLKit
import Synchronization

/// The transactions waiting for SQLite's one writer, committed together.
///
/// Every write of the process is a transaction on the one writer connection, and each commit
/// costs an fsync (`synchronous=FULL`). Under load, transactions from independent callers (the
/// command log's group commit, a plugin's storage writes, the outbox fan-out, the delivery
/// records) queue for the writer; this queue takes all that wait when the writer is free (up to
/// ``maxJobs``) and runs them in one `BEGIN IMMEDIATE ... COMMIT`, each inside its own
/// savepoint. A transaction that throws is rolled back to its savepoint alone and its caller
/// gets its error; the others commit. Every caller resumes only after the shared `COMMIT`, so
/// nothing is answered before it is durable, and a failed `COMMIT` fails every caller of the
/// batch. Should SQLite roll the whole transaction back on its own (a full disk, an I/O error),
/// the callers that already ran are told so and the ones still waiting run in the next batch.
final class SQLiteWriteQueue: Sendable {
    /// A caller's transaction: `run` applies its body on the writer (inside its savepoint when
    /// the batch holds others) and answers what to tell the caller once the batch's outcome is
    /// known (`nil`: committed); `fail` tells the caller it did not run.
    struct Job: Sendable {
        let run: @Sendable (SQLiteSQLDatabase, _ alone: Bool) async -> Ran
        let fail: @Sendable (any Error) -> Void
    }
    typealias Finish = @Sendable ((any Error)?) -> Void
    /// What running a job left: how to tell its caller, and whether its body threw.
    struct Ran: Sendable {
        let finish: Finish
        let threw: Bool
    }

    /// The most transactions in one commit: enough to share an fsync among every group commit
    /// of the request path, few enough that one batch never holds the writer long.
    static let maxJobs = 32

    private struct State {
        var pending: [Job] = []
        var draining = false
        /// The database is closing: no job is taken any more.
        var closed = false
    }

    private let state = Mutex(State())

    enum Admission {
        /// Queued; no drain was running, so the caller starts one.
        case startDrain
        /// Queued behind a running drain.
        case queued
        /// Refused: the database is closing.
        case closed
    }

    func enqueue(_ job: Job) -> Admission {
        state.withLock { state in
            if state.closed { return .closed }
            state.pending.append(job)
            if state.draining { return .queued }
            state.draining = true
            return .startDrain
        }
    }

    /// Takes no job from now on; answers whether a drain still runs (the jobs it holds commit).
    func close() -> Bool {
        state.withLock { state in
            state.closed = true
            return state.draining
        }
    }

    /// Puts jobs back at the front, in order (their batch was rolled back before they ran).
    func requeue(_ jobs: some Collection<Job>) {
        state.withLock { $0.pending.insert(contentsOf: jobs, at: 0) }
    }

    /// The next batch; empty (and the drain over) when nothing waits.
    func next() -> [Job] {
        state.withLock { state in
            if state.pending.isEmpty {
                state.draining = false
                return []
            }
            let n = min(Self.maxJobs, state.pending.count)
            defer { state.pending.removeFirst(n) }
            return Array(state.pending.prefix(n))
        }
    }

    /// A caller's transaction as a job: `body` inside a savepoint (none when it is alone in its
    /// batch: the batch's own rollback undoes it), its result or error handed to `continuation`
    /// once the batch's commit is known.
    static func job<R: Sendable>(_ body: @escaping @Sendable (SQLiteSQLDatabase) async throws -> R,
                                 committed: (@Sendable (R) -> Void)? = nil,
                                 _ continuation: CheckedContinuation<R, any Error>) -> Job {
        Job(run: { db, alone in
            func failed(_ error: any Error) -> Ran { Ran(finish: { _ in continuation.resume(throwing: error) }, threw: true) }
            func succeeded(_ result: R) -> Ran {
                Ran(finish: { failure in
                    if let failure { continuation.resume(throwing: failure); return }
                    committed?(result)
                    continuation.resume(returning: result)
                }, threw: false)
            }
            if alone {
                do { return succeeded(try await body(db)) } catch { return failed(error) }
            }
            do {
                try await db.bound("SAVEPOINT mercato_tx").run()
            } catch {
                return failed(error)
            }
            do {
                let result = try await body(db)
                try await db.bound("RELEASE mercato_tx").run()
                return succeeded(result)
            } catch {
                // Undo this transaction's statements only (when SQLite already rolled the whole
                // transaction back, there is no savepoint left: the drain sees that).
                try? await db.bound("ROLLBACK TO mercato_tx").run()
                try? await db.bound("RELEASE mercato_tx").run()
                return failed(error)
            }
        }, fail: { continuation.resume(throwing: $0) })
    }
}

/// The writer's transaction lost to SQLite itself (it rolled back on an error such as a full
/// disk): a transaction that had run in it did not commit.
struct SQLiteBatchRolledBack: Error, CustomStringConvertible {
    var description: String { "SQLite rolled the writer's transaction back (an I/O error or a full disk); nothing of it was committed" }
}

extension SQLiteStorage {
    /// Runs `body` as one transaction of the writer, committed with whatever other transactions
    /// wait at the same time (``SQLiteWriteQueue``); answers once that commit is done.
    /// `committed` runs on the writer's thread once the commit is done, before the caller
    /// resumes: who waits on the caller can be told from there, without waiting for the
    /// caller's own task to be scheduled.
    func transaction<R: Sendable>(logger: Logger, committed: (@Sendable (R) -> Void)? = nil,
                                  _ body: @escaping @Sendable (SQLiteSQLDatabase) async throws -> R) async throws -> R {
        try await withCheckedThrowingContinuation { continuation in
            switch writes.enqueue(SQLiteWriteQueue.job(body, committed: committed, continuation)) {
            case .startDrain:
                // The transactions run on the writer's own thread: between two statements they do
                // not queue behind request work on the shared executor, and the fsync blocks no
                // thread of that executor.
                Task(executorPreference: executor) { await self.drain(logger: logger) }
            case .queued:
                break
            case .closed:
                // Its thread is being shut down: a task sent there would never run (and never answer).
                continuation.resume(throwing: SQLiteFailure(code: 21, message: "the database is closed"))
            }
        }
    }

    private func drain(logger: Logger) async {
        while true {
            let jobs = writes.next()
            if jobs.isEmpty { return }
            do {
                try await lock.withLock { await runBatch(jobs, logger: logger) }
            } catch {
                // The lock refuses only a cancelled task, which this one is not; fail the batch all the same.
                for job in jobs { job.fail(error) }
            }
        }
    }

    private func runBatch(_ jobs: [SQLiteWriteQueue.Job], logger: Logger) async {
        let db = SQLiteSQLDatabase(target: .connection(writer), logger: logger, eventLoop: writerLoop)
        do {
            try await db.bound("BEGIN IMMEDIATE").run()
        } catch {
            // Nothing ran: every caller is told.
            for job in jobs { job.fail(error) }
            return
        }
        var finishes: [SQLiteWriteQueue.Finish] = []
        finishes.reserveCapacity(jobs.count)
        if jobs.count == 1 {
            // Alone: no savepoint; if it throws, the batch is rolled back (nothing else is in it).
            let ran = await jobs[0].run(db, true)
            if ran.threw {
                try? await db.bound("ROLLBACK").run()
                ran.finish(nil)
                return
            }
            do {
                try await db.bound("COMMIT").run()
                ran.finish(nil)
            } catch {
                try? await db.bound("ROLLBACK").run()
                ran.finish(error)
            }
            return
        }
        for (index, job) in jobs.enumerated() {
            finishes.append(await job.run(db, false).finish)
            if !writer.inTransaction {
                // SQLite ended the transaction itself: what ran is gone, what waits runs next.
                for finish in finishes { finish(SQLiteBatchRolledBack()) }
                writes.requeue(jobs[(index + 1)...])
                return
            }
        }
        do {
            try await db.bound("COMMIT").run()
        } catch {
            try? await db.bound("ROLLBACK").run()
            for finish in finishes { finish(error) }
            return
        }
        for finish in finishes { finish(nil) }
    }
}
