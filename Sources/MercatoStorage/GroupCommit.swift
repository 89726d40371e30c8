import SQLKit
import Synchronization

/// Group commit for small independent writes from concurrent callers (plugins' key-value
/// writes): the bodies waiting when a batch starts run one after another in one transaction,
/// and each caller resumes only once that transaction committed. While one batch commits the
/// next one gathers, so under load many writes share one commit (one fsync) instead of each
/// paying its own, and on SQLite the single writer is taken once per batch.
///
/// When a body or the commit throws, the batch is rolled back and every body of it runs again
/// in its own transaction, so a failure reaches only the caller it belongs to. A body may
/// therefore run twice; it must only touch the database it is given.
final class GroupCommit: Sendable {
    typealias Work = @Sendable (any SQLDatabase) async throws -> any Sendable

    private struct Waiter {
        let work: Work
        let continuation: CheckedContinuation<any Sendable, any Error>
    }

    private struct State {
        var pending: [Waiter] = []
        var draining = false
    }

    private let state = Mutex(State())
    let maxBatch: Int

    init(maxBatch: Int = 256) {
        self.maxBatch = maxBatch
    }

    func run<R: Sendable>(on database: Database, _ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        let value = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<any Sendable, any Error>) in
            let startDrainer = state.withLock { s -> Bool in
                s.pending.append(Waiter(work: { try await body($0) }, continuation: continuation))
                if s.draining { return false }
                s.draining = true
                return true
            }
            if startDrainer { Task { await self.drain(database) } }
        }
        guard let typed = value as? R else { throw StorageError("a grouped write answered a value of the wrong type") }
        return typed
    }

    private func drain(_ database: Database) async {
        while true {
            let batch = state.withLock { s -> [Waiter] in
                if s.pending.isEmpty { s.draining = false; return [] }
                let n = min(maxBatch, s.pending.count)
                defer { s.pending.removeFirst(n) }
                return Array(s.pending.prefix(n))
            }
            if batch.isEmpty { return }
            let works = batch.map(\.work)
            do {
                let results = try await database.transaction { db -> [any Sendable] in
                    var results: [any Sendable] = []
                    results.reserveCapacity(works.count)
                    for work in works { results.append(try await work(db)) }
                    return results
                }
                for (waiter, result) in zip(batch, results) { waiter.continuation.resume(returning: result) }
            } catch {
                if batch.count == 1 {
                    batch[0].continuation.resume(throwing: error)
                    continue
                }
                // Whose failure it was is not known (PostgreSQL aborts the whole transaction
                // on an error): each body runs again alone.
                for waiter in batch {
                    do {
                        let work = waiter.work
                        waiter.continuation.resume(returning: try await database.transaction { try await work($0) })
                    } catch {
                        waiter.continuation.resume(throwing: error)
                    }
                }
            }
        }
    }
}
