import Hummingbird
import MercatoCore

/// `?limit=` (default 50, 1...200) and `?cursor=` of every list.
struct Pagination {
    let limit: Int
    let cursor: String?

    init(_ request: Request) throws {
        let query = request.uri.queryParameters
        if let raw = query["limit"] {
            guard let n = Int(String(raw)), (1 ... 200).contains(n) else {
                throw APIError.invalidRequest("`limit` must be a whole number from 1 to 200.", errors: [.init(field: "limit", message: "must be 1 to 200")])
            }
            limit = n
        } else {
            limit = 50
        }
        cursor = query["cursor"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
    }
}

/// `{"data": [...], "next_cursor": ...}`.
struct Page<Item: Encodable & Sendable>: ResponseEncodable {
    let data: [Item]
    let nextCursor: String?

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(data, forKey: .data)
        try c.encode(nextCursor, forKey: .nextCursor)   // null, not absent
    }
    enum CodingKeys: String, CodingKey { case data, nextCursor }
}
