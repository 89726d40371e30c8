import Logging
import MercatoStorage
import Metrics

/// What an answered command leaves: its log row and, when it is kept for idempotency, its answer.
struct CommandLogEntry: Sendable {
    var log: CommandLogRecord
    var idempotency: IdempotencyRecord?
}

/// Group commit for the command path: the log rows and idempotency answers of many requests go
/// into one transaction as multi-row INSERTs, and each request answers only after that
/// transaction committed, so an answered command is never lost (a kill -9 after the answer
/// finds its row).
typealias CommandBatcher = GroupCommit<CommandLogEntry, Void>

extension GroupCommit where Operation == CommandLogEntry, Output == Void {
    convenience init(commandLogOn database: Database) {
        let metrics = MetricHandles()
        let committed: @Sendable (Int) -> Void = { metrics.recorder("mercato_command_batch_size").record($0) }
        guard database.engine == .postgres else {
            self.init(database: database, maxBatch: 512, committed: committed) { entries, db in
                try await CommandStore.insertAnswered(entries.map(\.log), entries.compactMap(\.idempotency), on: db)
                return entries.map { _ in () }
            }
            return
        }
        // One prepared statement a batch, committed alone (``CommandStore/insertAnswered(_:_:on:logger:)``).
        self.init(postgres: database, maxBatch: 512, committed: committed) { entries, connection in
            try await CommandStore.insertAnswered(entries.map(\.log), entries.compactMap(\.idempotency), on: connection, logger: database.logger)
            return entries.map { _ in () }
        }
    }
}

/// Group commit of idempotency reservations (several nodes on PostgreSQL): the handlers about
/// to run on this node claim their keys together, one statement per batch, so a duplicate that
/// reached another node finds the key taken (CONTRACT §12: a handler runs at most once per key).
typealias ReservationBatcher = GroupCommit<CommandStore.Reservation, Bool>

extension GroupCommit where Operation == CommandStore.Reservation, Output == Bool {
    convenience init(reservationsOn database: Database) {
        self.init(postgres: database, maxBatch: 512) { reservations, connection in
            try await CommandStore.reserve(reservations, on: connection, logger: database.logger)
        }
    }
}

/// The gateway's read of each command's stored state on PostgreSQL, batched: the commands
/// waiting at once are checked together (``CommandStore/checks(_:on:logger:)``: one execution of
/// a prepared statement per 8 keys). Each check still starts after its request arrived, so a
/// change committed on any node before then is seen (CONTRACT §12), with one round trip a batch
/// instead of a command.
typealias CheckBatcher = GroupCommit<CommandStore.CheckKey, CommandCheck?>

extension GroupCommit where Operation == CommandStore.CheckKey, Output == CommandCheck? {
    convenience init(checksOn database: Database, logger: Logger) {
        self.init(postgres: database, maxBatch: 256) { keys, connection in
            try await CommandStore.checks(keys, on: connection, logger: logger)
        }
    }
}
