import Foundation
@testable import MercatoStorage
import SQLiteKit
import SQLiteNIO
import Testing

/// The SQLite binding's shortcuts for common bound and read values give what SQLiteKit's own
/// encoder and decoder give; ids are made and recognised as before.
@Suite("SQLite values and record ids")
struct SQLiteValueTests {
    @Test func boundValuesAreWhatSQLiteKitWouldBind() throws {
        let values: [any Encodable & Sendable] = [
            "", "text", "é😀\u{0}", 0, -1, Int.max, Int.min, Int64(42), Int64.min, 0.5, -0.0, Double.infinity, 1e300, true, false,
            Optional<String>.none, Optional("some"), Optional<Int64>.none, Optional(Int64(7)), Optional(2.5), Optional(true),
            Int32(5), UInt8(9), ["a": 1], [1, 2],
        ]
        let encoder = SQLiteDataEncoder()
        for value in values {
            #expect(try SQLiteSQLDatabase.bind(value) == encoder.encode(value), "\(value)")
        }
    }

    @Test func readValuesAreWhatSQLiteKitWouldRead() throws {
        let decoder = SQLiteDataDecoder()
        let stored: [SQLiteData] = [.text("x"), .text(""), .text("12"), .integer(12), .integer(-3), .integer(0), .integer(1), .float(2.5), .null]
        func same<D: Decodable & Equatable>(_ type: D.Type, _ data: SQLiteData) {
            let row = SQLiteResultRow(columns: SQLiteColumns(names: ["c"]), values: [data])
            let mine = Result { try SQLiteSQLRow(row: row, decoder: decoder).decode(column: "c", as: D.self) }
            let theirs = Result { try decoder.decode(D.self, from: data) }
            switch (mine, theirs) {
            case (.success(let a), .success(let b)): #expect(a == b, "\(D.self) from \(data)")
            case (.failure, .failure): break
            default: Issue.record("\(D.self) from \(data): \(mine) against \(theirs)")
            }
        }
        for data in stored {
            same(String.self, data)
            same(Int.self, data)
            same(Int64.self, data)
            same(Double.self, data)
            same(Bool.self, data)
            same(String?.self, data)
            same(Int64?.self, data)
        }
    }

    @Test func recordIDsHaveTheirShapeAndSortByTime() {
        var previous = ""
        for i in 0 ..< 2_000 {
            let id = RecordID.make("cl", millis: 1_700_000_000_000 + Int64(i / 10))
            #expect(id.count == 29 && id.hasPrefix("cl_"))
            #expect(RecordID.isValid(id, prefix: "cl"))
            #expect(!RecordID.isValid(id, prefix: "c"))
            #expect(id > previous)
            previous = id
        }
        let id = RecordID.make("org", millis: 0)
        #expect(id.hasPrefix("org_0000000000"))
        for bad in ["org_", "org-" + id.dropFirst(4), String(id.dropLast()), id + "0", id.uppercased(), id.replacingOccurrences(of: "org_", with: "org_I").prefix(30).description,
                    "org_" + String(repeating: "u", count: 26), "org_" + String(repeating: "é", count: 26), "xorg_" + id.dropFirst(4)] {
            #expect(!RecordID.isValid(bad, prefix: "org"), "\(bad)")
        }
        #expect(RecordID.isValid("org_" + String(repeating: "z", count: 26), prefix: "org"))
    }
}
