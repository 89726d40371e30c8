import Foundation
@testable import MercatoStorage
import MercatoTestSupport
import NIOCore
import NIOPosix
import SQLKit
import Testing

@Suite("Group commit: callers on the server's event loops")
struct GroupCommitLoopTests {
    struct Boom: Error {}

    /// Callers running on the shared group's loops (as the server's requests do) and callers
    /// on the cooperative pool share batches; those of a loop other than the one the batch
    /// ends on are answered through a hand-off to their loop. Each gets its own output or its
    /// own error, once: a batch that fails is retried one by one, and an operation that fails
    /// alone is answered with its error. An answer lost on the way would hang the caller: the
    /// time limit makes that a failure.
    @Test(.timeLimit(.minutes(1)), arguments: TestEngines.all)
    func callersOnSeveralLoopsEachGetTheirOwnAnswer(engine: StorageEngine) async throws {
        try await withTestDatabase(engine) { test async throws in
            let loops = Array(MultiThreadedEventLoopGroup.singleton.makeIterator())
            #expect(loops.count >= 2, "the shared group has one loop per core; this machine's has \(loops.count)")
            let commit = GroupCommit<Int, Int>(database: test.database, maxBatch: 8) { ops, db in
                _ = try await db.raw("SELECT 1 AS one").first()
                if ops.contains(7) { throw Boom() }
                return ops.map { $0 * 10 }
            }
            let answers = try await withThrowingTaskGroup(of: (Int, Int?).self) { group in
                for i in 0 ..< 60 {
                    let submit: @Sendable () async throws -> (Int, Int?) = {
                        do { return (i, try await commit.submit(i)) } catch is Boom { return (i, nil) }
                    }
                    if i % 3 == 2 {
                        group.addTask(operation: submit)
                    } else {
                        group.addTask(executorPreference: EventLoopTaskExecutor(loops[i % loops.count]), operation: submit)
                    }
                }
                return try await group.reduce(into: [Int: Int?]()) { answers, answer in
                    #expect(answers[answer.0] == nil, "operation \(answer.0) answered twice")
                    answers[answer.0] = answer.1
                }
            }
            #expect(answers.count == 60)
            for i in 0 ..< 60 {
                #expect(answers[i] == (i == 7 ? .some(nil) : .some(i * 10)), "operation \(i)")
            }
        }
    }
}
