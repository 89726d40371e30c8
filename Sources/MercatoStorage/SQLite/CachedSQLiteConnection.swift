import CMercatoSQLite
import NIOCore
import SQLiteNIO
import Synchronization

/// An SQLite failure: the library's result code and message. Carries no SQL and no bound values.
struct SQLiteFailure: Error, CustomStringConvertible {
    let code: Int32
    let message: String
    var description: String { "SQLite error \(code): \(message)" }
}

/// One SQLite connection with its prepared statements cached by SQL text, run on the calling
/// thread. A statement is parsed once per connection, then reset and bound again for each run.
///
/// Every call takes the connection's lock: a reader is also handed to one caller at a time by
/// ``SQLiteReaderPool``, and the writer is behind the database's writer lock, so the lock is
/// only a guard, never waited on.
final class CachedSQLiteConnection: @unchecked Sendable {
    /// Beyond this many distinct statements the cache starts again (statements built with a
    /// varying number of rows or values would otherwise grow it without bound).
    static let cacheLimit = 256

    private let lock = Mutex(())
    private var handle: OpaquePointer?
    private var statements: [String: CachedStatement] = [:]

    /// A prepared statement with the column names of its result, read at its first row and
    /// kept until SQLite prepares the statement again (after a schema change).
    private struct CachedStatement {
        let statement: OpaquePointer
        var columns: SQLiteColumns?
        var reprepares: Int32 = 0
    }
    /// Statements prepared so far (misses of the cache), for tests and measurements.
    private(set) var prepareCount = 0

    /// SQLite configured for this process, once, before its first connection: no memory
    /// statistics (`mercato_sqlite3_disable_memstatus`). `MERCATO_SQLITE_MISUSE` when something
    /// else in the process had initialized the library first (it then keeps its defaults).
    static let processConfiguration: Int32 = mercato_sqlite3_disable_memstatus()
    /// The bytes SQLite counts as held: 0 while its memory statistics are off (tests).
    static var memoryCounted: Int64 { sqlite3_memory_used() }

    /// Opens (creating when missing) the file at `path`, with `pragmas` run once.
    init(path: String, pragmas: [String]) throws {
        _ = Self.processConfiguration
        var db: OpaquePointer?
        // NOMUTEX: SQLite's own per-call mutex is not needed, the lock above serializes use.
        let flags = MERCATO_SQLITE_OPEN_READWRITE | MERCATO_SQLITE_OPEN_CREATE | MERCATO_SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == MERCATO_SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close_v2(db)
            throw SQLiteFailure(code: rc, message: message)
        }
        handle = db
        do {
            for pragma in pragmas { try run(pragma, binds: []) { _ in } }
        } catch {
            close()
            throw error
        }
    }

    deinit { closeLocked() }

    /// Finalizes every statement and closes the connection; later calls fail.
    func close() {
        lock.withLock { _ in closeLocked() }
    }

    private func closeLocked() {
        for cached in statements.values { sqlite3_finalize(cached.statement) }
        statements.removeAll()
        if let handle { sqlite3_close_v2(handle) }
        handle = nil
    }

    /// Whether a transaction is open (SQLite leaves autocommit at `BEGIN` and returns to it at
    /// `COMMIT`, `ROLLBACK`, or when an error such as a full disk rolled the transaction back).
    var inTransaction: Bool {
        lock.withLock { _ in handle.map { sqlite3_get_autocommit($0) == 0 } ?? false }
    }

    /// Runs `sql` (one statement) with `binds`, handing each result row to `onRow` as it is read.
    func run(_ sql: String, binds: [SQLiteData], onRow: (SQLiteResultRow) throws -> Void) throws {
        try lock.withLock { _ in
            guard let db = handle else { throw SQLiteFailure(code: MERCATO_SQLITE_MISUSE, message: "the connection is closed") }
            guard let cached = try statement(for: sql, on: db) else { return }
            let statement = cached.statement
            defer {
                sqlite3_reset(statement)
                sqlite3_clear_bindings(statement)
            }
            try bind(binds, to: statement, on: db)
            var columns: SQLiteColumns?
            while true {
                let rc = sqlite3_step(statement)
                if rc == MERCATO_SQLITE_DONE { return }
                guard rc == MERCATO_SQLITE_ROW else { throw failure(rc, db) }
                let names: SQLiteColumns
                if let columns { names = columns } else {
                    let reprepares = sqlite3_stmt_status(statement, MERCATO_SQLITE_STMTSTATUS_REPREPARE, 0)
                    if let known = cached.columns, cached.reprepares == reprepares {
                        names = known
                    } else {
                        names = Self.columns(of: statement)
                        statements[sql]?.columns = names
                        statements[sql]?.reprepares = reprepares
                    }
                    columns = names
                }
                var values: [SQLiteData] = []
                values.reserveCapacity(names.names.count)
                for index in 0 ..< Int32(names.names.count) { values.append(Self.value(at: index, of: statement)) }
                try onRow(SQLiteResultRow(columns: names, values: values))
            }
        }
    }

    /// The cached statement for `sql`, prepared on a miss; `nil` when `sql` holds no statement.
    private func statement(for sql: String, on db: OpaquePointer) throws -> CachedStatement? {
        if let cached = statements[sql] { return cached }
        var statement: OpaquePointer?
        let rc = sqlite3_prepare_v3(db, sql, -1, UInt32(MERCATO_SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard rc == MERCATO_SQLITE_OK else { throw failure(rc, db) }
        guard let statement else { return nil }
        prepareCount += 1
        if statements.count >= Self.cacheLimit {
            for old in statements.values { sqlite3_finalize(old.statement) }
            statements.removeAll(keepingCapacity: true)
        }
        let cached = CachedStatement(statement: statement)
        statements[sql] = cached
        return cached
    }

    private func bind(_ binds: [SQLiteData], to statement: OpaquePointer, on db: OpaquePointer) throws {
        for (offset, value) in binds.enumerated() {
            let index = Int32(offset + 1)
            let rc: Int32
            switch value {
            case .integer(let n): rc = sqlite3_bind_int64(statement, index, Int64(n))
            case .float(let x): rc = sqlite3_bind_double(statement, index, x)
            case .null: rc = sqlite3_bind_null(statement, index)
            case .text(let text):
                var text = text
                rc = text.withUTF8 { bytes in
                    // An empty string is still text (a nil pointer would bind NULL).
                    bytes.withMemoryRebound(to: CChar.self) { chars in
                        mercato_sqlite3_bind_text(statement, index, chars.baseAddress ?? emptyText, UInt64(chars.count))
                    }
                }
            case .blob(let buffer):
                rc = buffer.withUnsafeReadableBytes { bytes in
                    // An empty blob is still a blob (a nil pointer would bind NULL).
                    bytes.isEmpty ? sqlite3_bind_zeroblob(statement, index, 0)
                        : mercato_sqlite3_bind_blob(statement, index, bytes.baseAddress, UInt64(bytes.count))
                }
            }
            guard rc == MERCATO_SQLITE_OK else { throw failure(rc, db) }
        }
    }

    private static func columns(of statement: OpaquePointer) -> SQLiteColumns {
        let count = sqlite3_column_count(statement)
        var names: [String] = []
        names.reserveCapacity(Int(count))
        for index in 0 ..< count { names.append(sqlite3_column_name(statement, index).map { String(cString: $0) } ?? "") }
        return SQLiteColumns(names: names)
    }

    private static func value(at index: Int32, of statement: OpaquePointer) -> SQLiteData {
        switch sqlite3_column_type(statement, index) {
        case MERCATO_SQLITE_INTEGER:
            return .integer(Int(sqlite3_column_int64(statement, index)))
        case MERCATO_SQLITE_FLOAT:
            return .float(sqlite3_column_double(statement, index))
        case MERCATO_SQLITE_TEXT:
            guard let text = sqlite3_column_text(statement, index) else { return .text("") }
            let count = Int(sqlite3_column_bytes(statement, index))
            return .text(String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self))
        case MERCATO_SQLITE_BLOB:
            let count = Int(sqlite3_column_bytes(statement, index))
            var buffer = ByteBufferAllocator().buffer(capacity: count)
            if let bytes = sqlite3_column_blob(statement, index) {
                buffer.writeBytes(UnsafeRawBufferPointer(start: bytes, count: count))
            }
            return .blob(buffer)
        default:
            return .null
        }
    }

    private func failure(_ rc: Int32, _ db: OpaquePointer) -> SQLiteFailure {
        SQLiteFailure(code: rc, message: String(cString: sqlite3_errmsg(db)))
    }
}

/// A non-nil pointer for an empty string.
private nonisolated(unsafe) let emptyText: UnsafePointer<CChar> = {
    let bytes = UnsafeMutablePointer<CChar>.allocate(capacity: 1)
    bytes.initialize(to: 0)
    return UnsafePointer(bytes)
}()

/// The column names of one statement's result, shared by its rows.
final class SQLiteColumns: Sendable {
    let names: [String]
    init(names: [String]) { self.names = names }

    func index(of name: String) -> Int? { names.firstIndex(of: name) }
}

/// One result row: the values as SQLite returned them.
struct SQLiteResultRow: Sendable {
    let columns: SQLiteColumns
    let values: [SQLiteData]

    subscript(_ name: String) -> SQLiteData? {
        columns.index(of: name).map { values[$0] }
    }
}
