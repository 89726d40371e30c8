import NIOCore
import NIOPosix
public import PostgresNIO
public import SQLKit
import Synchronization

/// Group commit: concurrent callers each hand in one operation; the operations waiting when a
/// batch starts are applied together by `apply` in one transaction, and each caller resumes
/// with its own output only once that transaction committed. While one batch commits the next
/// one gathers, so under load many operations share one commit (one fsync) and a few
/// statements, and on SQLite the single writer is taken once per batch.
///
/// When `apply` or the commit throws, the batch is rolled back and each operation is applied
/// again alone in its own transaction, so a failure reaches only the caller it belongs to;
/// when storage is unreachable (``StorageUnavailable``) every caller of the batch is told at once.
/// `apply` may therefore see an operation twice; it must only touch the database.
public final class GroupCommit<Operation: Sendable, Output: Sendable>: Sendable {
    /// Applies a batch in order; answers one output per operation, in the same order.
    public typealias Apply = @Sendable ([Operation], any SQLDatabase) async throws -> [Output]
    /// Applies a batch with one statement on a PostgreSQL connection (a named prepared statement).
    public typealias ApplyOnPostgres = @Sendable ([Operation], PostgresConnection) async throws -> [Output]

    private enum Runner {
        /// `alone`: which batches need no transaction on PostgreSQL.
        case transaction(Apply, alone: (@Sendable ([Operation]) -> Bool)?)
        case postgres(ApplyOnPostgres)
    }

    /// Who is told how an operation ended.
    private enum Reply {
        /// A caller of ``submit(_:)``, waiting.
        case caller(CheckedContinuation<Output, any Error>)
        /// ``post(_:failed:)``: nobody waits; a failure is handed to the closure.
        case posted(@Sendable (any Error) -> Void)

        func resume(with result: Result<Output, any Error>) {
            switch (self, result) {
            case (.caller(let continuation), _): continuation.resume(with: result)
            case (.posted, .success): break
            case (.posted(let failed), .failure(let error)): failed(error)
            }
        }
    }

    /// A class, not a struct: a waiter is copied into the queue, into its batch and into the
    /// answers, and a copy of a generic struct goes through its value witnesses, which look up
    /// the type's metadata every time (about 1.5% of a `kv.set`'s CPU); a copy of a reference
    /// is a retain.
    private final class Waiter: Sendable {
        let operation: Operation
        let reply: Reply
        /// When it was handed in: on PostgreSQL the storage deadline counts from the oldest
        /// waiter's, so one queued behind a stuck batch is not then given a deadline of its own.
        let since: ContinuousClock.Instant
        /// The event loop its caller ran on, where it resumes (``resume(_:)``).
        let loop: (any EventLoop)?

        init(operation: Operation, reply: Reply, since: ContinuousClock.Instant, loop: (any EventLoop)?) {
            self.operation = operation
            self.reply = reply
            self.since = since
            self.loop = loop
        }
    }

    private struct State {
        var pending: [Waiter] = []
        /// Batches being applied (at most ``lanes``).
        var draining = 0
        /// A drainer gathering (``gather``), woken early by ``flush()``.
        var gathering: CheckedContinuation<Void, Never>?
        /// ``flush()`` was called: no more gathering.
        var flushing = false
    }

    private let state = Mutex(State())
    private let database: Database
    private let runner: Runner
    private let committed: (@Sendable (Int) -> Void)?
    public let maxBatch: Int
    /// How many batches may be applied at once (each on its own connection, PostgreSQL only).
    public let lanes: Int
    /// Operations waiting, while a batch is applied, before another lane opens.
    public let spillAt: Int
    /// How long a batch gathers before it is applied: zero for writes someone waits for; for
    /// writes nobody waits for (``post(_:failed:)``), a few tens of milliseconds make one
    /// commit of what would otherwise be a commit per operation when requests come one by one.
    public let gather: Duration

    /// Batches applied in one transaction (``Database/boundedTransaction(since:_:)``).
    /// `committed` is told the size of each batch that committed.
    ///
    /// `alone` names the batches that on PostgreSQL run without a transaction around them (two
    /// round trips fewer): those whose `apply` writes with one statement, which commits or fails
    /// whole by itself, after reads that see what they would see in a transaction at PostgreSQL's
    /// READ COMMITTED, which takes a snapshot per statement anyway. On SQLite every batch is
    /// the writer's transaction.
    ///
    /// `gather` (see the property) holds each batch that long unless ``maxBatch`` operations
    /// wait; whoever stops the process calls ``flush()`` after the last operation was handed in.
    public init(database: Database, maxBatch: Int = 256, gather: Duration = .zero, committed: (@Sendable (Int) -> Void)? = nil,
                alone: (@Sendable ([Operation]) -> Bool)? = nil, apply: @escaping Apply) {
        self.database = database
        self.maxBatch = maxBatch
        self.lanes = 1
        self.spillAt = .max
        self.gather = gather
        self.runner = .transaction(apply, alone: alone)
        self.committed = committed
    }

    /// Batches that `apply` runs on a PostgreSQL connection as it needs, with no transaction
    /// around them: one named prepared statement (planned once per connection; a single
    /// statement commits or fails whole), or a transaction of its own. `database` must be on
    /// PostgreSQL. With `lanes` above one, another batch is applied beside the first (each on
    /// its own connection) once `spillAt` operations wait: for operations that meet a batch at
    /// several steps, where under load one batch at a time would leave them waiting more than
    /// working, while a few operations at a time still share one batch.
    public init(postgres database: Database, maxBatch: Int = 256, lanes: Int = 1, spillAt: Int = 1, committed: (@Sendable (Int) -> Void)? = nil,
                apply: @escaping ApplyOnPostgres) {
        precondition(database.engine == .postgres, "a PostgreSQL group needs a PostgreSQL database")
        precondition(lanes >= 1, "a group applies at least one batch at a time")
        self.database = database
        self.maxBatch = maxBatch
        self.lanes = lanes
        self.spillAt = max(1, spillAt)
        self.gather = .zero
        self.runner = .postgres(apply)
        self.committed = committed
    }

    /// Returns `operation`'s output once its batch committed; throws when it could not be.
    public func submit(_ operation: Operation) async throws -> Output {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Output, any Error>) in
            enqueue(Waiter(operation: operation, reply: .caller(continuation), since: .now, loop: Self.callersLoop()))
        }
    }

    /// Hands `operation` in without waiting for its commit (a write nobody's answer depends
    /// on): no task and no resumption per operation. `failed` is told, on the thread that ran
    /// the batch, when it could not be committed.
    public func post(_ operation: Operation, failed: @escaping @Sendable (any Error) -> Void) {
        enqueue(Waiter(operation: operation, reply: .posted(failed), since: .now, loop: nil))
    }

    private func enqueue(_ waiter: Waiter) {
        let startDrainer = state.withLock { s -> Bool in
            s.pending.append(waiter)
            if s.draining >= lanes || (s.draining > 0 && s.pending.count < spillAt) { return false }
            s.draining += 1
            return true
        }
        if startDrainer { Task { await self.drain() } }
    }

    /// Applies what waits now, without gathering, and returns once nothing waits and no batch
    /// runs; from then on batches no longer gather (the process is stopping).
    public func flush() async {
        let sleeper = state.withLock { s -> CheckedContinuation<Void, Never>? in
            s.flushing = true
            defer { s.gathering = nil }
            return s.gathering
        }
        sleeper?.resume()
        while state.withLock({ !$0.pending.isEmpty || $0.draining > 0 }) {
            try? await Task.sleep(for: .milliseconds(1))
        }
    }

    /// Waits ``gather``, or less when ``flush()`` is called meanwhile.
    private func gatherBatch() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                if s.flushing || s.pending.count >= maxBatch { return true }
                s.gathering = continuation
                return false
            }
            if now { return continuation.resume() }
            MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: TimeAmount(gather)) {
                let sleeper = self.state.withLock { s -> CheckedContinuation<Void, Never>? in
                    defer { s.gathering = nil }
                    return s.gathering
                }
                sleeper?.resume()
            }
        }
    }

    private func drain() async {
        while true {
            if gather > .zero { await gatherBatch() }
            let batch = state.withLock { s -> [Waiter] in
                // A lane beside another closes when fewer than `spillAt` wait: the other takes them.
                if s.pending.isEmpty || (s.draining > 1 && s.pending.count < spillAt) { s.draining -= 1; return [] }
                let n = min(maxBatch, s.pending.count)
                defer { s.pending.removeFirst(n) }
                return Array(s.pending.prefix(n))
            }
            if batch.isEmpty { return }
            do {
                // On SQLite the waiters are answered from the writer's thread right after the
                // commit (`answered`), not once this task is scheduled again on a busy loop.
                let answered = Mutex(false)
                let outputs = try await run(batch.map(\.operation), since: batch[0].since) { outputs in
                    guard outputs.count == batch.count else { return }
                    answered.withLock { $0 = true }
                    self.resume(zip(batch, outputs).map { ($0, .success($1)) })
                }
                committed?(batch.count)
                if !answered.withLock({ $0 }) { resume(zip(batch, outputs).map { ($0, .success($1)) }) }
                continue
            } catch where batch.count == 1 || error is StorageUnavailable {
                // Alone, or storage unreachable (applying each again alone would only wait for
                // a connection once per operation): every caller is told at once.
                resume(batch.map { ($0, .failure(error)) })
                continue
            } catch {}
            // Whose failure it was is not known (PostgreSQL aborts the whole transaction on an
            // error): each operation is applied again alone.
            var unreachable: (any Error)?
            for waiter in batch {
                if let unreachable {
                    waiter.reply.resume(with: .failure(unreachable))
                    continue
                }
                do {
                    let output = try await run([waiter.operation], since: waiter.since)
                    committed?(1)
                    waiter.reply.resume(with: .success(output[0]))
                } catch {
                    if error is StorageUnavailable { unreachable = error }
                    waiter.reply.resume(with: .failure(error))
                }
            }
        }
    }

    /// The loop of the shared group (the server's connections and tasks, alive as long as the
    /// process) this thread runs, if any. A caller on another loop (SQLite's writer thread, a
    /// test's own group) resumes wherever the batch ends: a task handed to a loop shut down
    /// meanwhile would never run.
    private static func callersLoop() -> (any EventLoop)? {
        guard let loop = MultiThreadedEventLoopGroup.currentEventLoop, SharedLoops.all.contains(where: { $0 === loop }) else { return nil }
        return loop
    }

    /// Resumes each caller on the event loop it submitted from: here when that is this
    /// thread's loop (or it had none), else in one hand-off per loop. Resumed on whichever loop
    /// ran the batch, a caller would go on there and then hand its answer back to its own
    /// connection's loop, a cross-thread wake-up per caller (`bench/ab` in docs/benchmarks.md:
    /// signed ping -18% CPU per request).
    private func resume(_ answers: [(Waiter, Result<Output, any Error>)]) {
        var elsewhere: [(loop: any EventLoop, answers: [(Waiter, Result<Output, any Error>)])] = []
        for answer in answers {
            guard let loop = answer.0.loop, !loop.inEventLoop else {
                answer.0.reply.resume(with: answer.1)
                continue
            }
            if let index = elsewhere.firstIndex(where: { $0.loop === loop }) {
                elsewhere[index].answers.append(answer)
            } else {
                elsewhere.append((loop, [answer]))
            }
        }
        for (loop, answers) in elsewhere {
            loop.execute {
                for (waiter, result) in answers { waiter.reply.resume(with: result) }
            }
        }
    }

    /// Applies `operations` in one batch; `early`, when given, may be told the outputs as soon
    /// as they are committed (SQLite: on the writer's thread), before this returns them.
    private func run(_ operations: [Operation], since: ContinuousClock.Instant,
                     early: (@Sendable ([Output]) -> Void)? = nil) async throws -> [Output] {
        let outputs: [Output]
        switch runner {
        case .transaction(let apply, let alone?) where database.engine == .postgres && alone(operations):
            guard let answered = try await database.withPostgres(since: since, writes: true, { try await apply(operations, PostgresConnectionSQL($0)) }) else {
                throw StorageError("a PostgreSQL group ran on another engine")
            }
            outputs = answered
        case .transaction(let apply, _):
            if let early {
                outputs = try await database.boundedTransaction(since: since, committed: early) { try await apply(operations, $0) }
            } else {
                outputs = try await database.boundedTransaction(since: since) { try await apply(operations, $0) }
            }
        case .postgres(let apply):
            guard let answered = try await database.withPostgres(since: since, writes: true, { try await apply(operations, $0) }) else {
                throw StorageError("a PostgreSQL group ran on another engine")
            }
            outputs = answered
        }
        guard outputs.count == operations.count else {
            throw StorageError("a group commit answered \(outputs.count) outputs for \(operations.count) operations")
        }
        return outputs
    }
}

/// The shared group's loops, listed once (a generic class has no stored static).
private enum SharedLoops {
    static let all: [any EventLoop] = Array(MultiThreadedEventLoopGroup.singleton.makeIterator())
}
