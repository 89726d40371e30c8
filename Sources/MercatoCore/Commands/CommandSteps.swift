import Logging
import MercatoStorage
import Metrics

/// What an answered command leaves: its log row and, when it is kept for idempotency, its answer.
struct CommandLogEntry: Sendable {
    var log: CommandLogRecord
    var idempotency: IdempotencyRecord?
}

/// Where the gateway's stages meet storage: the check of each command's stored state with the
/// claim of its key across nodes (``CommandGateway/confirm(_:claiming:)``) and its record
/// (``CommandGateway/record(_:of:rate:since:)``), each answered once it is committed.
///
/// On SQLite a reader answers each check at once; records go through a group commit (the log
/// rows and idempotency answers of many requests in one transaction); no key is claimed in
/// storage (one process serves, and the gateway's in-process guard is exact). On PostgreSQL
/// every step of every waiting command goes through one group commit, whose batch is one
/// statement (``CommandStore/run(_:on:logger:)``): a command's two steps cost a share of two
/// round trips, not two of their own.
struct CommandSteps: Sendable {
    private enum Backend: Sendable {
        case sqlite(records: GroupCommit<CommandLogEntry, Void>)
        case postgres(rounds: GroupCommit<Step, Outcome>)
    }

    /// One step of one command in a PostgreSQL round: its check, with its key's reservation
    /// when it claims one, or its record.
    enum Step: Sendable {
        case check(CommandStore.CheckKey, reserving: CommandStore.Reservation?)
        case record(CommandLogEntry)
    }

    /// A step's answer, in its kind (a check's claim is nil when it asked for none).
    enum Outcome: Sendable {
        case checked(CommandCheck?, CommandStore.Claim?)
        case recorded
    }

    /// Steps waiting on PostgreSQL before a second round goes beside the one in flight: a
    /// command waits for a round at each of its steps, so under load one round at a time
    /// leaves it waiting behind others' steps; with few commands in flight (a node among
    /// several) a second round would only split the steps that share one.
    static let spillAt = 16

    private let backend: Backend
    private let database: Database

    init(database: Database) {
        self.database = database
        let batchSize = Recorder(label: "mercato_command_batch_size")
        guard database.engine == .postgres else {
            backend = .sqlite(records: GroupCommit(database: database, maxBatch: 512, committed: { batchSize.record($0) }) { entries, db in
                try await CommandStore.insertAnswered(entries.map(\.log), entries.compactMap(\.idempotency), on: db)
                return entries.map { _ in () }
            })
            return
        }
        let logger = database.logger
        backend = .postgres(rounds: GroupCommit(postgres: database, maxBatch: 512, lanes: 2, spillAt: Self.spillAt) { steps, connection in
            var round = CommandStore.Round()
            for step in steps {
                switch step {
                case .check(let key, let reservation):
                    round.checks.append(key)
                    if let reservation { round.reservations.append(reservation) }
                case .record(let entry):
                    round.logs.append(entry.log)
                    if let kept = entry.idempotency { round.answers.append(kept) }
                }
            }
            let (checked, taken) = try await CommandStore.run(round, on: connection, logger: logger)
            if !round.logs.isEmpty { batchSize.record(round.logs.count) }
            var nextCheck = checked.makeIterator(), nextTaken = taken.makeIterator()
            return steps.map { step -> Outcome in
                switch step {
                case .check(_, let reservation): .checked(nextCheck.next() ?? nil, reservation == nil ? nil : nextTaken.next() ?? .refused)
                case .record: .recorded
                }
            }
        })
    }

    /// Whether keys are claimed in storage before a handler runs (several nodes may serve).
    var claimsKeys: Bool {
        if case .postgres = backend { return true }
        return false
    }

    /// The install's stamp and rate override and the key's stored record (nil when the install
    /// does not exist), as committed before `reservation`, which is taken in the same statement
    /// (PostgreSQL only: the claim is nil when none was asked for, and always on SQLite).
    func check(_ key: CommandStore.CheckKey, reserving reservation: CommandStore.Reservation?) async throws -> (found: CommandCheck?, claim: CommandStore.Claim?) {
        switch backend {
        case .sqlite:
            return (try await CommandStore.check(install: key.install, webhookID: key.webhookID, in: database), nil)
        case .postgres(let rounds):
            guard case .checked(let found, let claim) = try await rounds.submit(.check(key, reserving: reservation)) else {
                throw StorageError("a command round answered a check as another step")
            }
            return (found, claim)
        }
    }

    /// Gives back a key taken by ``check(_:reserving:)`` that will not be answered
    /// (``CommandStore/release(_:newRow:in:)``). Outside the rounds: only refusals that keep
    /// nothing of their key come here.
    func release(_ reservation: CommandStore.Reservation, newRow: Bool) async throws {
        try await CommandStore.release(reservation, newRow: newRow, in: database)
    }

    /// Commits the command's log row and kept answer.
    func record(_ entry: CommandLogEntry) async throws {
        switch backend {
        case .sqlite(let records):
            try await records.submit(entry)
        case .postgres(let rounds):
            guard case .recorded = try await rounds.submit(.record(entry)) else { throw StorageError("a command round answered a record as another step") }
        }
    }
}
