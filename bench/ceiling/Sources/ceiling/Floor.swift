// The durable floor: what the contract adds to the bare ceiling for a signed command, done the
// cheapest way this machine allows, so `mercato / floor` says how much of Mercato's cost the
// durable answer itself takes and how much is Mercato's own.
//
// CONTRACT §3 and §12 ask that an answered command is durable before its answer and that a
// key's handler runs at most once. The least that takes on SQLite, and what this does per
// signed request after the ceiling's own verification:
//   - SHA-256 of the raw body (what binds the idempotency key to its body);
//   - the key held in process while its command runs (a duplicate in flight is refused);
//   - one point read of the key's stored answer (a prepared statement on a reader connection
//     of the request's own thread: no hop);
//   - the log row and the idempotency row written by a group commit on one writer thread
//     (prepared statements, one transaction and one fsync a batch; WAL, `synchronous=FULL`,
//     the writer at nice -10 when allowed), the request answered when its batch committed.
// The tables are Mercato's `command_log` and `command_idempotency`, with their indexes.
// No JSON parsing, no plugin, no logging, no metrics: those are Mercato's own work.
import CSodium
import CSQLite
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

final class DurableFloor: @unchecked Sendable {
    /// One answered command: its log row and its idempotency row.
    struct Answered: Sendable {
        var id: String
        var webhookID: String
        var bodyHash: String
        var response: String
        var durationUs: Int64
        var createdAt: Int64
    }

    /// A reader connection and its prepared lookup.
    private final class Reader: @unchecked Sendable {
        let db: OpaquePointer
        let lookup: OpaquePointer
        init(path: String) {
            db = DurableFloor.open(path)
            lookup = DurableFloor.prepare(db, "SELECT http_status, response FROM command_idempotency WHERE app_id = ?1 AND webhook_id = ?2")
        }
    }

    private static let schema = """
        CREATE TABLE IF NOT EXISTS command_log (id TEXT PRIMARY KEY, install_id TEXT NOT NULL, app_id TEXT NOT NULL,
            org_id TEXT NOT NULL, command TEXT NOT NULL, webhook_id TEXT NOT NULL, body_sha256 TEXT NOT NULL,
            outcome TEXT NOT NULL, http_status INTEGER NOT NULL, duration_us BIGINT NOT NULL, created_at BIGINT NOT NULL);
        CREATE INDEX IF NOT EXISTS command_log_install ON command_log (install_id, id);
        CREATE INDEX IF NOT EXISTS command_log_app ON command_log (app_id, id);
        CREATE TABLE IF NOT EXISTS command_idempotency (app_id TEXT NOT NULL, webhook_id TEXT NOT NULL,
            body_sha256 TEXT NOT NULL, http_status INTEGER NOT NULL, response TEXT NOT NULL, created_at BIGINT NOT NULL,
            reserved_until BIGINT, PRIMARY KEY (app_id, webhook_id));
        CREATE INDEX IF NOT EXISTS command_idempotency_created ON command_idempotency (created_at);
        """
    private static let transient = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)

    private let path: String
    private let writer: OpaquePointer
    private let readers = Mutex<[Reader]>([])
    private let condition = NSCondition()
    /// Guarded by `condition`.
    private var pending: [(Answered, CheckedContinuation<Void, Never>)] = []
    private let nextID = Atomic<Int>(0)
    private let inFlight = Mutex<Set<String>>([])
    let install = "ins_floor", app = "app_floor", org = "org_floor"

    init(path: String) {
        self.path = path
        writer = Self.open(path)
        Self.exec(writer, "PRAGMA journal_mode=WAL")
        Self.exec(writer, Self.schema)
        let thread = Thread { [self] in self.write(on: self.writer) }
        thread.name = "floor-writer"
        thread.start()
    }

    /// A fresh record id, in insertion order like Mercato's.
    func makeID() -> String {
        let n = nextID.wrappingAdd(1, ordering: .relaxed).newValue
        return "cmd_" + String(n, radix: 16).leftPadded(to: 26)
    }

    /// SHA-256 of `body`, lowercase hex.
    static func sha256Hex(_ body: UnsafeRawBufferPointer) -> String {
        var digest = [UInt8](repeating: 0, count: Int(crypto_hash_sha256_BYTES))
        crypto_hash_sha256(&digest, body.bindMemory(to: UInt8.self).baseAddress, UInt64(body.count))
        let digits = Array("0123456789abcdef".utf8)
        var hex = [UInt8]()
        hex.reserveCapacity(digest.count * 2)
        for byte in digest { hex.append(digits[Int(byte >> 4)]); hex.append(digits[Int(byte & 15)]) }
        return String(decoding: hex, as: UTF8.self)
    }

    /// Holds `webhookID` while its command runs; `false` when another request holds it.
    func hold(_ webhookID: String) -> Bool {
        inFlight.withLock { $0.insert(webhookID).inserted }
    }

    func release(_ webhookID: String) {
        _ = inFlight.withLock { $0.remove(webhookID) }
    }

    /// The key's stored answer, read on the caller's thread.
    func stored(webhookID: String) -> String? {
        let reader = readers.withLock { $0.popLast() } ?? Reader(path: path)
        defer { readers.withLock { $0.append(reader) } }
        let statement = reader.lookup
        defer { sqlite3_reset(statement) }
        sqlite3_bind_text(statement, 1, app, -1, Self.transient)
        sqlite3_bind_text(statement, 2, webhookID, -1, Self.transient)
        guard sqlite3_step(statement) == SQLITE_ROW, let text = sqlite3_column_text(statement, 1) else { return nil }
        return String(decoding: UnsafeBufferPointer(start: text, count: Int(sqlite3_column_bytes(statement, 1))), as: UTF8.self)
    }

    /// Returns when `answered`'s rows are committed (and fsynced).
    func record(_ answered: Answered) async {
        await withCheckedContinuation { continuation in
            condition.lock()
            pending.append((answered, continuation))
            condition.signal()
            condition.unlock()
        }
    }

    private func write(on db: OpaquePointer) {
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, -10)
        let log = Self.prepare(db, """
            INSERT INTO command_log (id, install_id, app_id, org_id, command, webhook_id, body_sha256, outcome, http_status, duration_us, created_at)
            VALUES (?1, ?2, ?3, ?4, 'ping', ?5, ?6, 'succeeded', 200, ?7, ?8)
            """)
        let answer = Self.prepare(db, """
            INSERT INTO command_idempotency (app_id, webhook_id, body_sha256, http_status, response, created_at)
            VALUES (?1, ?2, ?3, 200, ?4, ?5)
            """)
        let begin = Self.prepare(db, "BEGIN IMMEDIATE"), commit = Self.prepare(db, "COMMIT")
        var batch: [(Answered, CheckedContinuation<Void, Never>)] = []
        while true {
            condition.lock()
            while pending.isEmpty { condition.wait() }
            swap(&batch, &pending)
            condition.unlock()
            Self.step(begin)
            for (row, _) in batch {
                sqlite3_bind_text(log, 1, row.id, -1, Self.transient)
                sqlite3_bind_text(log, 2, install, -1, Self.transient)
                sqlite3_bind_text(log, 3, app, -1, Self.transient)
                sqlite3_bind_text(log, 4, org, -1, Self.transient)
                sqlite3_bind_text(log, 5, row.webhookID, -1, Self.transient)
                sqlite3_bind_text(log, 6, row.bodyHash, -1, Self.transient)
                sqlite3_bind_int64(log, 7, row.durationUs)
                sqlite3_bind_int64(log, 8, row.createdAt)
                Self.step(log)
                sqlite3_bind_text(answer, 1, app, -1, Self.transient)
                sqlite3_bind_text(answer, 2, row.webhookID, -1, Self.transient)
                sqlite3_bind_text(answer, 3, row.bodyHash, -1, Self.transient)
                sqlite3_bind_text(answer, 4, row.response, -1, Self.transient)
                sqlite3_bind_int64(answer, 5, row.createdAt)
                Self.step(answer)
            }
            Self.step(commit)
            for (_, continuation) in batch { continuation.resume() }
            batch.removeAll(keepingCapacity: true)
        }
    }

    private static let configured: Int32 = floor_sqlite3_disable_memstatus()

    private static func open(_ path: String) -> OpaquePointer {
        _ = configured
        var db: OpaquePointer?
        guard sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nil) == SQLITE_OK, let db else {
            fatalError("floor: cannot open \(path)")
        }
        exec(db, "PRAGMA synchronous=FULL; PRAGMA busy_timeout=10000")
        return db
    }

    private static func exec(_ db: OpaquePointer, _ sql: String) {
        guard sqlite3_exec(db, sql, nil, nil, nil) == SQLITE_OK else { fatalError("floor: \(String(validatingCString: sqlite3_errmsg(db)) ?? "?")") }
    }

    private static func prepare(_ db: OpaquePointer, _ sql: String) -> OpaquePointer {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil) == SQLITE_OK, let statement else {
            fatalError("floor: \(String(validatingCString: sqlite3_errmsg(db)) ?? "?")")
        }
        return statement
    }

    /// Runs a write statement to its end and resets it.
    private static func step(_ statement: OpaquePointer) {
        let result = sqlite3_step(statement)
        sqlite3_reset(statement)
        guard result == SQLITE_DONE else { fatalError("floor: step returned \(result)") }
    }
}

private extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
