import Foundation
import MercatoHooks
public import Hummingbird
import MercatoCore
import NIOCore

extension Request {
    /// Reads the body as JSON into `T`, with the answers the contract asks for: 415 for another
    /// content type, 413 past `limit`, 400 `malformed_json` for bytes that are not JSON, 422
    /// `invalid_request` naming the field for JSON of the wrong shape.
    public func decodeJSON<T: Decodable>(_ type: T.Type, context: AppRequestContext, limit: Int? = nil) async throws -> T {
        let bytes = try await collectBody(context: context, limit: limit)
        return try JSONBody.decode(type, from: bytes, contentType: headers[.contentType])
    }

    /// The raw body, refused early when `Content-Length` already says it is too large.
    public func collectBody(context: AppRequestContext, limit: Int? = nil) async throws -> ByteBuffer {
        let max = limit ?? context.maxUploadSize
        if let declared = headers[.contentLength].flatMap(Int.init), declared > max {
            throw APIError(status: 413, code: "payload_too_large", title: "Payload too large",
                           detail: "The body is \(declared) bytes; this route accepts at most \(max).")
        }
        do {
            return try await body.collect(upTo: max)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw APIError(status: 413, code: "payload_too_large", title: "Payload too large", detail: "The body is larger than the \(max) bytes this route accepts.")
        }
    }
}

enum JSONBody {
    static func decode<T: Decodable>(_ type: T.Type, from buffer: ByteBuffer, contentType: String?) throws -> T {
        let mediaType = contentType?.split(separator: ";").first.map { PluginSupport.trimmingBlanks($0).lowercased() }
        guard let mediaType, mediaType == "application/json" || (mediaType.hasPrefix("application/") && mediaType.hasSuffix("+json")) else {
            throw APIError(status: 415, code: "unsupported_media_type", title: "Unsupported media type",
                           detail: "Send the body as `Content-Type: application/json`\(contentType.map { " (got `\($0)`)" } ?? "").")
        }
        guard buffer.readableBytes > 0 else { throw APIError.malformedJSON("The request body is empty; a JSON object is expected.") }
        // Read once directly: the NUL check, and the answer itself when a JSON value is asked for.
        // Text the reader refuses goes to JSONDecoder as before, which names the field whose value
        // it cannot hold; its reason for text that is not JSON at all is the reader's.
        let parsed = Result { () throws(JSONValue.ParseError) in try JSONValue(parsing: buffer.readableBytesView) }
        if case .success(let value) = parsed {
            // Storage refuses NUL in text; say so here instead of failing in the database.
            if let path = value.pathOfNUL() {
                throw APIError.invalidRequest("Text must not contain the NUL character (\\u0000); found in `\(path)`.",
                                              errors: [.init(field: path, message: "contains NUL")])
            }
            if let value = value as? T { return value }
        }
        do {
            return try JSONCoding.decoder.decode(T.self, from: Data(buffer.readableBytesView))
        } catch let error as DecodingError {
            if case .failure(let reason) = parsed, case .dataCorrupted(let context) = error, context.codingPath.isEmpty {
                throw APIError.malformedJSON("The body is not valid JSON: \(reason).")
            }
            throw problem(for: error)
        }
    }

    /// The snake_case path of the field a decoding error is about.
    static func fieldPath(_ path: [any CodingKey]) -> String {
        path.map { key in key.intValue.map { "[\($0)]" } ?? snakeCase(key.stringValue) }
            .joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
    }

    private static func snakeCase(_ s: String) -> String {
        var out = ""
        for ch in s {
            if ch.isUppercase { out += "_" + ch.lowercased() } else { out.append(ch) }
        }
        return out
    }

    static func problem(for error: DecodingError) -> APIError {
        switch error {
        case .dataCorrupted(let context) where context.codingPath.isEmpty:
            return .malformedJSON("The body is not valid JSON.")
        case .dataCorrupted(let context):
            let field = fieldPath(context.codingPath)
            return .invalidRequest("Field `\(field)` has an invalid value.", errors: [.init(field: field, message: "invalid value")])
        case .keyNotFound(let key, let context):
            let field = fieldPath(context.codingPath + [key])
            return .invalidRequest("Field `\(field)` is required.", errors: [.init(field: field, message: "is required")])
        case .typeMismatch(let expected, let context):
            let field = fieldPath(context.codingPath)
            let name = jsonTypeName(expected)
            if context.codingPath.isEmpty { return .invalidRequest("The body must be \(name) (JSON).") }
            return .invalidRequest("Field `\(field)` must be \(name).", errors: [.init(field: field, message: "must be \(name)")])
        case .valueNotFound(let expected, let context):
            let field = fieldPath(context.codingPath)
            return .invalidRequest("Field `\(field)` must not be null.", errors: [.init(field: field, message: "must be \(jsonTypeName(expected)), not null")])
        @unknown default:
            return .invalidRequest("The body does not have the expected shape.")
        }
    }

    private static func jsonTypeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "a boolean"
        case is Int.Type, is Int64.Type, is Double.Type: "a number"
        case is [Any].Type: "an array"
        default: "an object"
        }
    }
}
