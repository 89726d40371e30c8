import Logging
import MercatoStorage
import Metrics
import Synchronization

/// Group commit for the command path: log rows and idempotency records of many requests go
/// into one transaction, and each caller resumes only after that transaction committed, so an
/// answered command is never lost (a kill -9 after the answer finds its row). While one batch
/// commits, the next one gathers, so the batch grows with the load.
final class CommandBatcher: Sendable {
    struct Entry: Sendable {
        var log: CommandLogRecord
        var idempotency: IdempotencyRecord?
    }

    private struct State {
        var pending: [(Entry, CheckedContinuation<Void, any Error>)] = []
        var draining = false
    }

    private let state = Mutex(State())
    private let database: Database
    private let logger: Logger
    let maxBatch: Int
    private let metrics = MetricHandles()

    init(database: Database, logger: Logger, maxBatch: Int = 512) {
        self.database = database
        self.logger = logger
        self.maxBatch = maxBatch
    }

    /// Returns once `entry` is committed; throws when its batch could not be.
    func commit(_ entry: Entry) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let startDrainer = state.withLock { s -> Bool in
                s.pending.append((entry, continuation))
                if s.draining { return false }
                s.draining = true
                return true
            }
            if startDrainer { Task { await self.drain() } }
        }
    }

    private func drain() async {
        while true {
            let batch = state.withLock { s -> [(Entry, CheckedContinuation<Void, any Error>)] in
                if s.pending.isEmpty { s.draining = false; return [] }
                let n = min(maxBatch, s.pending.count)
                let b = Array(s.pending.prefix(n))
                s.pending.removeFirst(n)
                return b
            }
            if batch.isEmpty { return }
            let entries = batch.map(\.0)
            do {
                try await database.transaction { db in
                    try await CommandStore.insert(entries.map(\.log), on: db)
                    let stored = entries.compactMap(\.idempotency)
                    if !stored.isEmpty { try await CommandStore.insertIdempotency(stored, on: db) }
                }
                metrics.recorder("mercato_command_batch_size").record(entries.count)
                for (_, continuation) in batch { continuation.resume() }
            } catch {
                logger.error("command log batch failed to commit", metadata: ["size": "\(entries.count)", "error_type": "\(type(of: error))"])
                for (_, continuation) in batch { continuation.resume(throwing: error) }
            }
        }
    }
}
