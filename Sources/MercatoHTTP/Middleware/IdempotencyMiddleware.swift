import Foundation
import HTTPTypes
import Hummingbird
import MercatoCore
import MercatoCrypto
import MercatoHooks
import MercatoStorage
import NIOCore
import Synchronization

/// `Idempotency-Key` on every POST of the management API (CONTRACT §9), after authentication:
/// the key is the caller's, the body's fingerprint (method, path and query, content type, bytes)
/// tells a retry from another request, and ``APIIdempotency`` keeps the first answer sealed.
/// Signed commands (`/api/v1/apps/commands`) have their own idempotency and never pass here.
struct IdempotencyMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let idempotency: APIIdempotency
    let routes: RouteTable

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method == .post, let key = request.headers[.idempotencyKey] else { return try await next(request, context) }
        guard (1 ... 255).contains(key.utf8.count), key.utf8.allSatisfy({ $0 >= 0x21 && $0 <= 0x7E }) else {
            throw APIError(status: 400, code: "invalid_request", title: "Invalid request",
                           detail: "The `Idempotency-Key` header must be 1 to 255 visible ASCII characters.",
                           errors: [.init(field: "Idempotency-Key", message: "must be 1 to 255 visible ASCII characters")])
        }
        let caller = try context.requirePrincipal()
        var request = request
        let body = try await request.collectBody(upTo: context.maxUploadSize)
        var material = Array("POST \(request.uri.path)?\(request.uri.query ?? "")\n\(request.headers[.contentType] ?? "")\n".utf8)
        material.append(contentsOf: body.readableBytesView)
        let scope: String
        switch caller {
        case .operator(let token): scope = token
        case .member(_, let principal, _, _): scope = principal
        }
        let claim = APIIdempotency.Claim(scope: scope, org: caller.orgID, key: key, fingerprint: Signatures.sha256Hex(material))

        switch try await idempotency.begin(claim) {
        case .first:
            break
        case .conflict:
            throw APIError(status: 409, code: "idempotency_conflict", title: "Idempotency key reused",
                           detail: "This `Idempotency-Key` was used in the last 24 hours with another request; use a new key.")
        case .inProgress:
            throw APIError(status: 409, code: "idempotency_in_progress", title: "Request in progress",
                           detail: "The first request with this `Idempotency-Key` is still running; retry in a moment.", headers: ["Retry-After": "1"])
        case .outcomeUnknown(let since):
            throw APIError(status: 409, code: "idempotency_outcome_unknown", title: "Outcome of the first request unknown",
                           detail: "The first request with this `Idempotency-Key` stopped on the server before its answer was kept (its hold lapsed at "
                               + PluginSupport.timestamp(Date(timeIntervalSince1970: Double(since) / 1000))
                               + "); it may have been applied. Check whether it was; if not, send it again with a new key.")
        case .replay(let kept):
            var headers = HTTPFields()
            for (name, value) in kept.headers { if let field = HTTPField.Name(name) { headers[field] = value } }
            headers[.idempotentReplayed] = "true"
            return Response(status: .init(code: kept.status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: kept.body)))
        }

        var response: Response
        // A change whose COMMIT got no answer may have been applied: its key is not freed for a
        // second run. Its answer (503, "may have been applied") is kept as the key's, if storage
        // takes it; if not, the key stays reserved and, once its lease lapses, a retry hears
        // `idempotency_outcome_unknown`. Either way a retry with the key never runs the change twice.
        var outcomeUnknown = false
        do {
            response = try await idempotency.holding(claim) { try await next(request, context) }
        } catch {
            let problem = RequestMiddleware.problem(for: error, request: request, routes: routes)
            outcomeUnknown = (error as? StorageUnavailable)?.outcomeUnknown == true
            guard problem.status < 500 || outcomeUnknown else {
                try? await idempotency.release(claim)
                throw error
            }
            response = AnswerResponse.problem(problem, requestID: context.requestID)
        }
        guard response.status.code < 500 || outcomeUnknown else {
            try? await idempotency.release(claim)
            return response
        }
        let collector = BodyCollector()
        try await response.body.write(collector)
        let bytes = collector.bytes
        var headers: [String: String] = [:]
        for field in response.headers where field.name != .xRequestID { headers[field.name.canonicalName] = field.value }
        let kept = APIIdempotency.KeptAnswer(status: Int(response.status.code), headers: headers, body: Data(bytes))
        if outcomeUnknown { try? await idempotency.keep(kept, for: claim) } else { try await idempotency.keep(kept, for: claim) }
        response.body = .init(byteBuffer: ByteBuffer(bytes: bytes))
        return response
    }
}

/// The bytes a ``BodyCollector`` gathered.
private final class CollectedBytes: Sendable {
    let bytes = Mutex<[UInt8]>([])
}

/// Gathers a response body's bytes (the answer to keep).
private struct BodyCollector: ResponseBodyWriter {
    let box = CollectedBytes()
    var bytes: [UInt8] { box.bytes.withLock { $0 } }

    mutating func write(_ buffer: ByteBuffer) async throws {
        box.bytes.withLock { $0.append(contentsOf: buffer.readableBytesView) }
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
}

extension HTTPField.Name {
    static let idempotencyKey = Self("Idempotency-Key")!
    static let idempotentReplayed = Self("Idempotent-Replayed")!
}
