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
            var text = "INSERT INTO \(table) (\(columns)) VALUES "
            var binds: [any Encodable & Sendable] = []
            binds.reserveCapacity(chunk.count * (chunk.first?.count ?? 0))
            for (n, row) in chunk.enumerated() {
                text += n == 0 ? "(" : ", ("
                for i in row.indices { text += i == row.startIndex ? "?" : ", ?" }
                text += ")"
                binds += row
            }
            if !suffix.isEmpty { text += " " + suffix }
            try await db.bound(text, binds).run()
            start += chunk.count
        }
    }
}
