import SQLKit

/// `INSERT INTO table (columns) VALUES (…), (…) [suffix]` for many rows, one statement per
/// ``rowsPerStatement`` rows: group commits prepare one statement instead of one per row.
enum MultiRowInsert {
    /// Rows per statement: with up to 11 binds a row, far below either engine's limit.
    static let rowsPerStatement = 128

    static func run(into table: String, columns: String, rows: [[any Encodable & Sendable]], suffix: String = "",
                    on db: any SQLDatabase) async throws {
        var start = 0
        while start < rows.count {
            let chunk = rows[start ..< min(start + rowsPerStatement, rows.count)]
            var q = SQLQueryString("INSERT INTO \(unsafeRaw: table) (\(unsafeRaw: columns)) VALUES ")
            for (n, row) in chunk.enumerated() {
                q.appendInterpolation(unsafeRaw: n == 0 ? "(" : ", (")
                for (i, value) in row.enumerated() {
                    if i > 0 { q.appendInterpolation(unsafeRaw: ", ") }
                    q.appendInterpolation(bind: value)
                }
                q.appendInterpolation(unsafeRaw: ")")
            }
            if !suffix.isEmpty { q.appendInterpolation(unsafeRaw: " " + suffix) }
            try await db.raw(q).run()
            start += chunk.count
        }
    }
}
