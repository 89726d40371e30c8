import Foundation
import MercatoStorage
import MercatoTestSupport
import PostgresNIO
import SQLKit
import Synchronization
import Testing

@Suite("Database and migrations, on both engines")
struct DatabaseTests {
    struct Boom: Error {}

    @Test(arguments: TestEngines.all)
    func migrationsAreIdempotentAndReportCurrent(engine: StorageEngine) async throws {
        try await withTestDatabase(engine, migrate: false) { test async throws in
            let runner = Schema.runner
            #expect(try await runner.migrate(test.database, logger: TestDatabase.logger) == runner.migrations.map(\.id))
            #expect(try await runner.migrate(test.database, logger: TestDatabase.logger) == [])
            #expect(try await runner.isCurrent(test.database))
            // A build that knows one more migration sees the database as behind.
            let ahead = MigrationRunner(migrations: runner.migrations + [Migration(id: 9999, name: "later") { _ in ["CREATE TABLE later_t (id TEXT)"] }])
            #expect(try await !ahead.isCurrent(test.database))
            #expect(try await ahead.migrate(test.database, logger: TestDatabase.logger) == [9999])
        }
    }

    /// Migration 43: a database migrated to 42 has migration 9's covering index on plugin keys;
    /// the next migration removes it, and the namespace reads still answer.
    @Test(arguments: TestEngines.all)
    func theUnreadPluginUsageIndexIsDropped(engine: StorageEngine) async throws {
        try await withTestDatabase(engine, migrate: false) { test async throws in
            let db = test.database
            func hasIndex() async throws -> Bool {
                let sql: SQLQueryString = engine == .sqlite
                    ? "SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'plugin_kv_usage'"
                    : "SELECT indexname AS name FROM pg_indexes WHERE indexname = 'plugin_kv_usage'"
                return try await !db.read { try await $0.raw(sql).all() }.isEmpty
            }
            let upTo42 = MigrationRunner(migrations: Schema.runner.migrations.filter { $0.id <= 42 })
            _ = try await upTo42.migrate(db, logger: TestDatabase.logger)
            #expect(try await hasIndex())
            let upTo43 = MigrationRunner(migrations: Schema.runner.migrations.filter { $0.id <= 43 })
            #expect(try await upTo43.migrate(db, logger: TestDatabase.logger) == [43])
            #expect(try await !hasIndex())
        }
    }

    @Test(arguments: TestEngines.all)
    func concurrentMigratorsApplyEachStepOnce(engine: StorageEngine) async throws {
        try await withTestDatabase(engine, migrate: false) { test async throws in
            let applied = try await withThrowingTaskGroup(of: [Int].self) { group in
                for _ in 0 ..< 4 { group.addTask { try await Schema.runner.migrate(test.database, logger: TestDatabase.logger) } }
                return try await group.reduce(into: [Int]()) { $0 += $1 }
            }
            #expect(applied.sorted() == Schema.runner.migrations.map(\.id))
        }
    }

    @Test(arguments: TestEngines.all)
    func aFailedTransactionLeavesNothing(engine: StorageEngine) async throws {
        try await withTestDatabase(engine) { test async throws in
            let org = OrgRecord(id: RecordID.make("org"), name: "Rolled back", plan: "free", createdAt: Timestamp.nowMillis())
            await #expect(throws: Boom.self) {
                try await test.database.transaction { db in
                    try await OrgStore.insert(org, on: db)
                    #expect(try await OrgStore.find(id: org.id, on: db) != nil)   // visible inside
                    throw Boom()
                }
            }
            #expect(try await test.database.read { try await OrgStore.find(id: org.id, on: $0) } == nil)
        }
    }

    @Test(arguments: TestEngines.all)
    func concurrentWritersAllCommit(engine: StorageEngine) async throws {
        try await withTestDatabase(engine) { test async throws in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in 0 ..< 60 {
                    group.addTask {
                        try await test.database.transaction { db in
                            try await OrgStore.insert(OrgRecord(id: RecordID.make("org"), name: "org \(i)", plan: "free", createdAt: 1), on: db)
                        }
                    }
                }
                try await group.waitForAll()
            }
            let count = try await test.database.read { db in
                try await db.raw("SELECT COUNT(*) AS n FROM orgs").first()!.decode(column: "n", as: Int.self)
            }
            #expect(count == 60)
        }
    }

    /// Transactions that wait for the writer together (on SQLite they share one commit, each in
    /// a savepoint) still succeed or fail alone: one that throws after writing, or whose
    /// statement breaks a constraint, leaves nothing and tells only its caller; a transaction
    /// sees its own writes; every other one commits.
    @Test(arguments: TestEngines.all)
    func concurrentTransactionsFailAlone(engine: StorageEngine) async throws {
        try await withTestDatabase(engine) { test async throws in
            try await test.database.transaction { db in
                try await OrgStore.insert(OrgRecord(id: "org_taken", name: "taken", plan: "free", createdAt: 1), on: db)
            }
            enum Outcome: Equatable { case committed(Int), boom, constraint }
            let outcomes = try await withThrowingTaskGroup(of: (Int, Outcome).self) { group in
                for i in 0 ..< 80 {
                    group.addTask {
                        do {
                            let seen = try await test.database.transaction { db -> Int in
                                try await OrgStore.insert(OrgRecord(id: "org_tx_\(i)_a", name: "a", plan: "free", createdAt: 1), on: db)
                                try await OrgStore.insert(OrgRecord(id: "org_tx_\(i)_b", name: "b", plan: "free", createdAt: 1), on: db)
                                if i % 7 == 3 { throw Boom() }
                                if i % 11 == 5 {
                                    try await OrgStore.insert(OrgRecord(id: "org_taken", name: "again", plan: "free", createdAt: 1), on: db)
                                }
                                return try await db.raw("SELECT COUNT(*) AS n FROM orgs WHERE id IN (\(bind: "org_tx_\(i)_a"), \(bind: "org_tx_\(i)_b"))").first()!.decode(column: "n", as: Int.self)
                            }
                            return (i, .committed(seen))
                        } catch is Boom {
                            return (i, .boom)
                        } catch {
                            return (i, .constraint)
                        }
                    }
                }
                return try await group.reduce(into: [Int: Outcome]()) { $0[$1.0] = $1.1 }
            }
            let failing = Set((0 ..< 80).filter { $0 % 7 == 3 || $0 % 11 == 5 })
            for i in 0 ..< 80 {
                let expected: Outcome = i % 7 == 3 ? .boom : i % 11 == 5 ? .constraint : .committed(2)
                #expect(outcomes[i] == expected, "transaction \(i)")
            }
            let stored = try await test.database.read { db in
                try await db.raw("SELECT id FROM orgs WHERE id LIKE 'org_tx_%'").all().map { try $0.decode(column: "id", as: String.self) }
            }
            let expected = (0 ..< 80).filter { !failing.contains($0) }.flatMap { ["org_tx_\($0)_a", "org_tx_\($0)_b"] }
            #expect(Set(stored) == Set(expected))
            #expect(stored.count == expected.count)
            #expect(try await test.database.read { try await OrgStore.find(id: "org_taken", on: $0)?.name } == "taken")
        }
    }

    @Test(arguments: TestEngines.all)
    func groupCommitsAnswerEachCallerAndFailAlone(engine: StorageEngine) async throws {
        try await withTestDatabase(engine) { test async throws in
            let batches = Mutex<[Int]>([])
            // Every tenth operation makes its batch throw after writing: the batch is rolled
            // back and applied again operation by operation, so only that caller fails and
            // only its row is missing.
            let commit = GroupCommit<Int, String>(database: test.database, maxBatch: 16, committed: { n in batches.withLock { $0.append(n) } }) { ops, db in
                for i in ops {
                    try await OrgStore.insert(OrgRecord(id: "org_grouped_\(i)", name: "org \(i)", plan: "free", createdAt: 1), on: db)
                    if i % 10 == 0 { throw Boom() }
                }
                return ops.map { "org \($0)" }
            }
            let outcomes = try await withThrowingTaskGroup(of: (Int, String?).self) { group in
                for i in 0 ..< 60 {
                    group.addTask {
                        do { return (i, try await commit.submit(i)) } catch is Boom { return (i, nil) }
                    }
                }
                return try await group.reduce(into: [Int: String?]()) { $0[$1.0] = $1.1 }
            }
            #expect(outcomes.count == 60)
            #expect(outcomes.filter { $0.value == nil }.keys.sorted() == [0, 10, 20, 30, 40, 50])
            #expect(outcomes.allSatisfy { $0.value == nil || $0.value == "org \($0.key)" })
            let stored = try await test.database.read { db in
                try await db.raw("SELECT id FROM orgs WHERE id LIKE 'org_grouped_%'").all().map { try $0.decode(column: "id", as: String.self) }
            }
            #expect(Set(stored) == Set((0 ..< 60).filter { $0 % 10 != 0 }.map { "org_grouped_\($0)" }))
            // Every committed operation was counted once, never more than a batch's worth at a time.
            let sizes = batches.withLock { $0 }
            #expect(sizes.reduce(0, +) == 54)
            #expect(sizes.allSatisfy { $0 >= 1 && $0 <= 16 })
        }
    }

    /// A gathering group (the token usage log) makes one commit of operations posted one by
    /// one within its gathering time, where it made one each; `flush` commits what gathers at
    /// once and returns after it is stored, and from then on nothing gathers.
    @Test(arguments: TestEngines.all)
    func aGatheringGroupCommitsOperationsPostedOneByOneTogetherAndFlushes(engine: StorageEngine) async throws {
        try await withTestDatabase(engine) { test async throws in
            let batches = Mutex<[Int]>([])
            let commit = GroupCommit<Int, Void>(database: test.database, maxBatch: 64, gather: .seconds(2),
                                                committed: { n in batches.withLock { $0.append(n) } }) { ops, db in
                for i in ops { try await OrgStore.insert(OrgRecord(id: "org_gathered_\(i)", name: "org \(i)", plan: "free", createdAt: 1), on: db) }
                return ops.map { _ in () }
            }
            func stored() async throws -> Int {
                try await test.database.read { db in
                    try await db.raw("SELECT count(*) AS n FROM orgs WHERE id LIKE 'org_gathered_%'").first()!.decode(column: "n", as: Int.self)
                }
            }
            // Ten operations 5 ms apart (well inside the gathering time, even on a loaded
            // machine): without gathering each would be its own commit.
            for i in 0 ..< 10 {
                commit.post(i) { _ in }
                try await Task.sleep(for: .milliseconds(5))
            }
            // (The batch is counted just after its rows can be read.)
            for _ in 0 ..< 100 where batches.withLock({ $0.reduce(0, +) }) < 10 { try await Task.sleep(for: .milliseconds(100)) }
            #expect(try await stored() == 10)
            #expect(batches.withLock { $0 } == [10])
            // Posted and flushed at once: stored when `flush` returns, not after the gathering time.
            for i in 10 ..< 15 { commit.post(i) { _ in } }
            let start = ContinuousClock.now
            await commit.flush()
            #expect(ContinuousClock.now - start < .milliseconds(1500))
            #expect(try await stored() == 15)
            // After a flush nothing gathers: a submitted operation commits at once.
            let again = ContinuousClock.now
            try await commit.submit(15)
            #expect(ContinuousClock.now - again < .milliseconds(1500))
            #expect(try await stored() == 16)
        }
    }

    /// Operations posted without waiting (the token usage log) are committed in batches like
    /// submitted ones, beside them; the one that cannot be is told through its closure, alone.
    @Test(arguments: TestEngines.all)
    func postedOperationsCommitWithoutAWaiterAndOnlyAFailureIsTold(engine: StorageEngine) async throws {
        try await withTestDatabase(engine) { test async throws in
            let commit = GroupCommit<Int, Void>(database: test.database, maxBatch: 16) { ops, db in
                for i in ops {
                    try await OrgStore.insert(OrgRecord(id: "org_posted_\(i)", name: "org \(i)", plan: "free", createdAt: 1), on: db)
                    if i == 7 { throw Boom() }
                }
                return ops.map { _ in () }
            }
            let failed = Mutex<[Int]>([])
            for i in 0 ..< 40 {
                commit.post(i) { error in
                    if error is Boom { failed.withLock { $0.append(i) } }
                }
                if i == 20 { try await commit.submit(100) }   // a waiting caller among them
            }
            func stored() async throws -> Set<String> {
                Set(try await test.database.read { db in
                    try await db.raw("SELECT id FROM orgs WHERE id LIKE 'org_posted_%'").all().map { try $0.decode(column: "id", as: String.self) }
                })
            }
            let expected = Set(((0 ..< 40).filter { $0 != 7 } + [100]).map { "org_posted_\($0)" })
            for _ in 0 ..< 200 where try await stored() != expected || failed.withLock({ $0.isEmpty }) {
                try await Task.sleep(for: .milliseconds(25))
            }
            #expect(try await stored() == expected)
            #expect(failed.withLock { $0 } == [7])
        }
    }

    /// A batch's callers are answered as soon as it is committed (on SQLite from the writer's
    /// thread), not once the batch's own task runs again: here that task holds still after the
    /// commit (in `committed`) until the caller has its answer, which it must get meanwhile.
    @Test(arguments: TestEngines.all)
    func callersAreAnsweredBeforeTheBatchsTaskGoesOn(engine: StorageEngine) async throws {
        try await withTestDatabase(engine) { test async throws in
            let answered = Mutex(false), seenByTheBatch = Mutex<Bool?>(nil)
            let commit = GroupCommit<Int, Int>(database: test.database, maxBatch: 16, committed: { _ in
                // Bounded: with the answer given only after this returns, it waits 5 s and sees false.
                let until = ContinuousClock.now + .seconds(5)
                while !answered.withLock({ $0 }), ContinuousClock.now < until { usleep(2_000) }
                seenByTheBatch.withLock { $0 = answered.withLock { $0 } }
            }) { ops, db in
                try await db.raw("SELECT 1").run()
                return ops.map { $0 * 2 }
            }
            let output = try await commit.submit(21)
            answered.withLock { $0 = true }
            #expect(output == 42)
            for _ in 0 ..< 400 where seenByTheBatch.withLock({ $0 }) == nil { try await Task.sleep(for: .milliseconds(25)) }
            #expect(seenByTheBatch.withLock { $0 } == true, "the caller was answered while the batch's task waited")
        }
    }

    /// PostgreSQL: a transaction that gets no connection within the lease deadline is told
    /// storage is unavailable then, and its body never runs later; one whose statements outlast
    /// the statement deadline is told so at the deadline; a long job's transaction
    /// (`longTransaction`: migrations, sweeps) runs to its end past it.
    @Test func aTransactionIsBoundedByTheDeadlinesAndALongOneByItsLeaseOnly() async throws {
        try await withTestDatabase(.postgres) { test async throws in
            let database = try await Database.open(test.location, logger: TestDatabase.logger, poolSize: 1,
                                                   deadlines: StorageDeadlines(lease: .seconds(1), statement: .seconds(2)))
            let ran = Mutex(false)
            let holder = Task { try await database.longTransaction { try await $0.raw("SELECT pg_sleep(3)").run() } }
            try await Task.sleep(for: .milliseconds(300))
            var start = ContinuousClock.now
            await #expect(throws: StorageUnavailable.self) {
                try await database.transaction { _ in ran.withLock { $0 = true } }
            }
            var waited = ContinuousClock.now - start
            #expect(waited < .milliseconds(2_000), "answered after \(waited)")
            // The long job ran past the 2 s statement deadline.
            try await holder.value
            try await Task.sleep(for: .milliseconds(200))
            #expect(ran.withLock { $0 } == false, "the abandoned transaction's body ran once a connection came")
            start = ContinuousClock.now
            await #expect(throws: StorageUnavailable.self) {
                try await database.transaction { try await $0.raw("SELECT pg_sleep(3)").run() }
            }
            waited = ContinuousClock.now - start
            #expect(waited > .milliseconds(1_900) && waited < .milliseconds(2_900), "answered after \(waited)")
            await database.close()
        }
    }

    /// PostgreSQL: a transaction given up on at its deadline before its `COMMIT` rolls back (its
    /// caller was told nothing was done), one given up on while its `COMMIT` is out says the
    /// outcome is unknown (and it does commit), and a write of its own (no transaction) given
    /// up on is unknown too, where a read is not.
    @Test func aTransactionGivenUpOnRollsBackUnlessItsCommitWasOut() async throws {
        try await withTestDatabase(.postgres) { test async throws in
            let database = try await Database.open(test.location, logger: TestDatabase.logger, poolSize: 2,
                                                   deadlines: StorageDeadlines(lease: .seconds(1), statement: .milliseconds(1_500)))
            try await database.longTransaction { db in
                try await db.raw("CREATE TABLE gate_rows (id TEXT PRIMARY KEY)").run()
                try await db.raw("CREATE TABLE gate_slow (id TEXT PRIMARY KEY)").run()
                // The COMMIT of a row of gate_slow takes 2.5 s: a deferred trigger runs at COMMIT.
                try await db.raw("CREATE FUNCTION gate_sleep() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(2.5); RETURN NULL; END $$").run()
                try await db.raw("""
                    CREATE CONSTRAINT TRIGGER gate_slow_commit AFTER INSERT ON gate_slow DEFERRABLE INITIALLY DEFERRED
                    FOR EACH ROW EXECUTE FUNCTION gate_sleep()
                    """).run()
            }
            func failure(_ work: @Sendable () async throws -> Void) async -> StorageUnavailable? {
                do { try await work() } catch let error as StorageUnavailable { return error } catch { return nil }
                return nil
            }
            func rows(_ table: String) async throws -> [String] {
                try await database.read { db in try await db.raw("SELECT id FROM \(unsafeRaw: table)").all().map { try $0.decode(column: "id", as: String.self) } }
            }
            // The body outlives the deadline: told at 1.5 s, nothing done, and nothing is done.
            var start = ContinuousClock.now
            let beforeCommit = await failure {
                try await database.transaction { db in
                    try await db.raw("INSERT INTO gate_rows (id) VALUES ('body')").run()
                    try await db.raw("SELECT pg_sleep(2.5)").run()
                }
            }
            var waited = ContinuousClock.now - start
            #expect(beforeCommit?.outcomeUnknown == false, "\(String(describing: beforeCommit))")
            #expect(waited < .milliseconds(2_400), "answered after \(waited)")
            try await Task.sleep(for: .milliseconds(2_000))
            #expect(try await rows("gate_rows") == [], "a transaction given up on before its COMMIT committed after its caller was told")
            // The COMMIT outlives the deadline: told "unknown", and it did commit.
            start = ContinuousClock.now
            let duringCommit = await failure {
                try await database.transaction { db in try await db.raw("INSERT INTO gate_slow (id) VALUES ('commit')").run() }
            }
            waited = ContinuousClock.now - start
            #expect(duringCommit?.outcomeUnknown == true, "\(String(describing: duringCommit))")
            #expect(waited < .milliseconds(2_400), "answered after \(waited)")
            try await Task.sleep(for: .milliseconds(2_000))
            #expect(try await rows("gate_slow") == ["commit"])
            // A statement alone: a write's outcome is unknown, a read's is not asked.
            let write = await failure { _ = try await database.withPostgres(writes: true) { try await $0.query("SELECT pg_sleep(2.5)", logger: TestDatabase.logger).get() } }
            let read = await failure { _ = try await database.withPostgres { try await $0.query("SELECT pg_sleep(2.5)", logger: TestDatabase.logger).get() } }
            #expect(write?.outcomeUnknown == true && read?.outcomeUnknown == false, "\(String(describing: write)), \(String(describing: read))")
            await database.close()
        }
    }

    /// PostgreSQL: an operation queued behind a stuck batch is told storage is unavailable within
    /// one statement deadline of being handed in, not after the stuck batch's deadline and then
    /// one of its own (the restart drill's requests must not hang past the deadline).
    @Test func aGroupCommitCountsTheDeadlineFromWhenTheCallerStartedWaiting() async throws {
        try await withTestDatabase(.postgres) { test async throws in
            let database = try await Database.open(test.location, logger: TestDatabase.logger,
                                                   deadlines: StorageDeadlines(lease: .seconds(1), statement: .milliseconds(3_500)))
            // A connection is open before the clock starts, so the first batch has a second of
            // slack on a loaded machine. Each batch takes 2.5 s: the second operation, queued behind
            // the first, is told after about 3.6 s; counted from its own batch it would be answered
            // (successfully) after about 5 s.
            _ = try await database.read { db in try await db.raw("SELECT 1 AS one").first() }
            let commit = GroupCommit<Int, Int>(database: database, maxBatch: 1) { ops, db in
                try await db.raw("SELECT pg_sleep(2.5)").run()
                return ops
            }
            let start = ContinuousClock.now
            async let first = commit.submit(1)
            try await Task.sleep(for: .milliseconds(100))
            let second: Result<Int, any Error>
            do { second = .success(try await commit.submit(2)) } catch { second = .failure(error) }
            let waited = ContinuousClock.now - start
            #expect(try await first == 1)
            #expect(throws: StorageUnavailable.self) { try second.get() }
            #expect(waited < .milliseconds(4_400), "answered after \(waited)")
            await database.close()
        }
    }

    /// A batch that `alone` accepts runs without a transaction around it on PostgreSQL (its
    /// statements commit each by itself: what one wrote stays when a later one fails); on
    /// SQLite, and for every batch `alone` refuses, the batch is one transaction.
    @Test(arguments: TestEngines.all)
    func aBatchAloneRunsWithoutATransactionOnPostgreSQL(engine: StorageEngine) async throws {
        try await withTestDatabase(engine) { test async throws in
            let commit = GroupCommit<Int, Int>(database: test.database, maxBatch: 1, alone: { $0 == [1] }) { ops, db in
                try await OrgStore.insert(OrgRecord(id: "org_alone_\(ops[0])", name: "org", plan: "free", createdAt: 1), on: db)
                throw Boom()
            }
            for n in [1, 2] {
                await #expect(throws: Boom.self) { try await commit.submit(n) }
            }
            let stored = try await test.database.read { db in
                try await db.raw("SELECT id FROM orgs WHERE id LIKE 'org_alone_%'").all().map { try $0.decode(column: "id", as: String.self) }
            }
            #expect(stored == (engine == .postgres ? ["org_alone_1"] : []))
        }
    }

    /// PostgreSQL: a group with two lanes applies a second batch beside the one in flight only
    /// once `spillAt` operations wait; fewer wait for the first lane and share its next batch.
    @Test func aSecondLaneOpensOnlyWhenEnoughOperationsWait() async throws {
        try await withTestDatabase(.postgres) { test async throws in
            struct Seen { var running = 0, most = 0, sizes: [Int] = [], held = true }
            let seen = Mutex(Seen())
            // The batch holding operation 0 stays in flight until the test lets it go: no timing
            // decides which lane takes what.
            let commit = GroupCommit<Int, Int>(postgres: test.database, maxBatch: 64, lanes: 2, spillAt: 3) { ops, connection in
                seen.withLock { $0.running += 1; $0.most = max($0.most, $0.running); $0.sizes.append(ops.count) }
                while ops.contains(0), seen.withLock({ $0.held }) { try await Task.sleep(for: .milliseconds(5)) }
                try await connection.query("SELECT 1", logger: TestDatabase.logger)
                seen.withLock { $0.running -= 1 }
                return ops
            }
            func until(_ condition: @Sendable (Seen) -> Bool) async throws {
                for _ in 0 ..< 2_000 {
                    if seen.withLock({ condition($0) }) { return }
                    try await Task.sleep(for: .milliseconds(5))
                }
            }
            // Submit `then` operations while the batch of operation 0 is held; release it once
            // `lanes` batches have started (or after a while when only one should).
            func behindOne(_ then: Int, lanes: Int) async throws -> Seen {
                seen.withLock { $0 = Seen() }
                async let first = commit.submit(0)
                try await until { $0.running == 1 }
                let answers = Task {
                    try await withThrowingTaskGroup(of: Int.self) { group in
                        for n in 1...then { group.addTask { try await commit.submit(n) } }
                        return try await group.reduce(into: []) { $0.append($1) }
                    }
                }
                if lanes == 1 { try await Task.sleep(for: .milliseconds(300)) }
                try await until { $0.sizes.count == lanes }
                seen.withLock { $0.held = false }
                #expect(try await first == 0)
                #expect(try await answers.value.sorted() == Array(1...then))
                return seen.withLock { $0 }
            }
            let few = try await behindOne(2, lanes: 1)
            #expect(few.most == 1 && few.sizes == [1, 2])
            let enough = try await behindOne(3, lanes: 2)
            #expect(enough.most == 2 && enough.sizes == [1, 3])
        }
    }

    @Test func recordIDsAreTypedSortableAndUnique() async throws {
        let a = RecordID.make("org", millis: 1_000)
        let b = RecordID.make("org", millis: 2_000)
        #expect(a < b)
        #expect(RecordID.isValid(a, prefix: "org"))
        #expect(!RecordID.isValid(a, prefix: "ins"))
        #expect(Set((0 ..< 1000).map { _ in RecordID.make("x") }).count == 1000)
        // The 80 random bits differ from id to id (their last 16 base32 digits), across refills
        // of the random pool (409 ids a refill).
        let random = (0 ..< 1500).map { _ in RecordID.make("x").suffix(16) }
        #expect(Set(random).count == 1500)
    }

    /// Closing while writes queue (a test's or a server's last moments): the queued ones end,
    /// and one that comes after the writer's thread stopped is refused at once, instead of
    /// waiting forever for a thread that is gone.
    @Test func aClosingSQLiteDatabaseAnswersEveryTransaction() async throws {
        try await withTestDatabase(.sqlite) { test async throws in
            let db = test.database
            let writes = (0 ..< 50).map { i in
                Task {
                    try await db.transaction {
                        try await OrgStore.insert(OrgRecord(id: RecordID.make("org"), name: "org \(i)", plan: "free", createdAt: 1), on: $0)
                    }
                }
            }
            await db.close()
            // Committed, or refused because the database closed first: never left waiting (a
            // write sent to the stopped thread used to wait forever; bounded here so a
            // regression fails instead of hanging the run).
            let answered = await Self.within(seconds: 20) {
                for write in writes { _ = await write.result }
                return await (try? db.transaction { try await $0.raw("SELECT 1").run() }) == nil
            }
            #expect(answered == true, "every transaction answered, the one after the close refused")
        }
    }

    #if os(Linux)
    /// The writer's thread runs at a raised priority when the process may raise it (root or
    /// CAP_SYS_NICE), and at the process's own otherwise; request threads keep theirs.
    @Test func theSQLiteWriterRunsAtARaisedPriorityWhenAllowed() async throws {
        try await withTestDatabase(.sqlite) { test async throws in
            let nice: @Sendable () -> Int32 = { getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0) }
            let own = nice()
            let writers = try await test.database.transaction { _ in nice() }
            #expect(writers == (geteuid() == 0 ? -10 : own), "the writer's nice value")
            #expect(nice() == own, "the caller's thread keeps its own")
        }
    }
    #endif

    /// `body`'s value, or nil when it has not answered within `seconds` (it is left running).
    static func within<T: Sendable>(seconds: Double, _ body: @escaping @Sendable () async -> T) async -> T? {
        await withCheckedContinuation { (continuation: CheckedContinuation<T?, Never>) in
            let once = AnswerOnce(continuation)
            Task { once.finish(await body()) }
            Task {
                try? await Task.sleep(for: .seconds(seconds))
                once.finish(nil)
            }
        }
    }

    final class AnswerOnce<T: Sendable>: Sendable {
        private let continuation: Mutex<CheckedContinuation<T?, Never>?>
        init(_ continuation: CheckedContinuation<T?, Never>) { self.continuation = Mutex(continuation) }
        func finish(_ value: T?) {
            continuation.withLock { waiting in
                waiting?.resume(returning: value)
                waiting = nil
            }
        }
    }

    /// An operator whose URL names a database that does not exist, or a port where nothing
    /// listens, is told why at start (PostgreSQL's own words), not only that no connection came.
    @Test func aPostgreSQLThatCannotBeReachedIsToldWhy() async throws {
        guard let admin = TestEngines.postgresAdminURL, var url = URLComponents(string: admin) else {
            throw StorageError("MERCATO_TEST_POSTGRES_URL is not set: run scripts/test, which starts PostgreSQL for the tests")
        }
        func refusal(_ url: URLComponents) async -> String? {
            do {
                let database = try await Database.open(.postgres(url: url.string!), logger: TestDatabase.logger,
                                                       deadlines: StorageDeadlines(lease: .seconds(1), statement: .seconds(2)))
                await database.close()
                return nil
            } catch {
                return "\(error)"
            }
        }
        url.path = "/mercato_missing_" + UUID().uuidString.prefix(8).lowercased()
        let missing = try #require(await refusal(url))
        #expect(missing.contains("database \"\(url.path.dropFirst())\" does not exist"), "\(missing)")
        #expect(missing.contains("3D000"), "\(missing)")
        url.path = "/postgres"
        url.port = 1
        let closed = try #require(await refusal(url))
        #expect(closed.contains("connection failed"), "\(closed)")
        #expect(closed.lowercased().contains("refused"), "\(closed)")
    }
}
