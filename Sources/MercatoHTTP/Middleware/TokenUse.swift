import Synchronization

/// What ``BearerAuthMiddleware`` learned about the request's API token, for
/// ``RequestMiddleware`` to act on once the answer is final (errors included): the
/// `RateLimit-*` headers and the token's usage row.
final class TokenUse: Sendable {
    struct Noted: Sendable {
        var tokenID: String
        var headers: [String: String]
    }

    private let state = Mutex<Noted?>(nil)

    func note(tokenID: String, headers: [String: String]) {
        state.withLock { $0 = Noted(tokenID: tokenID, headers: headers) }
    }

    var noted: Noted? { state.withLock { $0 } }
}
