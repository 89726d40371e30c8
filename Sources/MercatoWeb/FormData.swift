import Foundation
import Hummingbird
import NIOCore

/// A form as a page handler reads it: `application/x-www-form-urlencoded` (or a query string)
/// as name → values, or `multipart/form-data` (RFC 7578) with its text fields and uploaded files.
struct FormData: Sendable {
    /// A file chosen in an `<input type=file>`.
    struct UploadedFile: Sendable {
        let filename: String
        let contentType: String?
        let bytes: [UInt8]
    }

    private(set) var values: [String: [String]] = [:]
    /// Files by field name; a file input left empty sends none.
    private(set) var files: [String: UploadedFile] = [:]

    init(_ text: String) {
        for pair in text.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = Self.decode(parts[0])
            let value = parts.count > 1 ? Self.decode(parts[1]) : ""
            values[name, default: []].append(value)
        }
    }

    /// Values already decoded (one per name).
    init(values: [String: String]) {
        self.values = values.mapValues { [$0] }
    }

    init(buffer: ByteBuffer) {
        self.init(String(buffer: buffer))
    }

    /// The body as its `Content-Type` says: multipart when it names a boundary, else urlencoded.
    init(buffer: ByteBuffer, contentType: String?) {
        guard let contentType, let boundary = Self.multipartBoundary(contentType) else {
            self.init(buffer: buffer)
            return
        }
        self.init(values: [:])
        for part in Self.parts(of: Array(buffer.readableBytesView), boundary: Array(("--" + boundary).utf8)) {
            guard let name = part.name else { continue }
            if let filename = part.filename {
                if !filename.isEmpty || !part.body.isEmpty {
                    files[name] = UploadedFile(filename: filename, contentType: part.contentType, bytes: part.body)
                }
            } else {
                values[name, default: []].append(String(decoding: part.body, as: UTF8.self))
            }
        }
    }

    subscript(_ name: String) -> String? { values[name]?.first }

    /// Every value sent under `name` (repeated fields, checkboxes).
    func all(_ name: String) -> [String] { values[name] ?? [] }

    private static func decode(_ text: Substring) -> String {
        let spaced = text.replacingOccurrences(of: "+", with: " ")
        return spaced.removingPercentEncoding ?? spaced
    }

    /// The `boundary` parameter of a `multipart/form-data` content type (1-70 characters).
    static func multipartBoundary(_ contentType: String) -> String? {
        let pieces = contentType.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        guard pieces.first?.lowercased() == "multipart/form-data" else { return nil }
        for piece in pieces.dropFirst() {
            let pair = piece.split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2, pair[0].lowercased() == "boundary" else { continue }
            var value = pair[1]
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = String(value.dropFirst().dropLast()) }
            return (1 ... 70).contains(value.utf8.count) ? value : nil
        }
        return nil
    }

    struct Part {
        var name: String?
        var filename: String?
        var contentType: String?
        var body: [UInt8]
    }

    /// The parts between `delimiter` lines (`--boundary`); a body without a closing delimiter
    /// ends at its last complete part. Malformed parts are skipped.
    static func parts(of body: [UInt8], boundary delimiter: [UInt8]) -> [Part] {
        let crlf: [UInt8] = [13, 10]
        // Each part follows "--boundary" + CRLF and ends before CRLF + "--boundary".
        guard var start = find(delimiter, in: body, from: 0) else { return [] }
        var parts: [Part] = []
        let separator = crlf + delimiter
        while true {
            var at = start + delimiter.count
            guard at + 2 <= body.count, Array(body[at ..< at + 2]) == crlf else { break }   // "--" closes
            at += 2
            guard let end = find(separator, in: body, from: at) else { break }
            let raw = Array(body[at ..< end])
            if let headEnd = find(crlf + crlf, in: raw, from: 0) {
                var part = Part(body: Array(raw[(headEnd + 4)...]))
                let head = String(decoding: raw[..<headEnd], as: UTF8.self)
                for line in head.components(separatedBy: "\r\n") {
                    let pair = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                    guard pair.count == 2 else { continue }
                    switch pair[0].lowercased() {
                    case "content-disposition":
                        part.name = parameter("name", in: pair[1])
                        part.filename = parameter("filename", in: pair[1])
                    case "content-type":
                        part.contentType = pair[1]
                    default:
                        break
                    }
                }
                parts.append(part)
            }
            start = end + 2
        }
        return parts
    }

    /// `name="value"` (or unquoted) in a header value; `\"` inside quotes stands for a quote.
    private static func parameter(_ name: String, in header: String) -> String? {
        var rest = Substring(header)
        while let semicolon = rest.firstIndex(of: ";") {
            rest = rest[rest.index(after: semicolon)...].drop(while: { $0 == " " })
            guard rest.lowercased().hasPrefix(name + "=") else { continue }
            let value = rest.dropFirst(name.count + 1)
            guard value.first == "\"" else { return String(value.prefix { $0 != ";" }) }
            var text = ""
            var escaped = false
            for character in value.dropFirst() {
                if escaped { text.append(character); escaped = false }
                else if character == "\\" { escaped = true }
                else if character == "\"" { return text }
                else { text.append(character) }
            }
            return nil
        }
        return nil
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8], from: Int) -> Int? {
        guard !needle.isEmpty, haystack.count >= needle.count, from <= haystack.count - needle.count else { return nil }
        var i = from
        let first = needle[0]
        while i <= haystack.count - needle.count {
            if haystack[i] == first && haystack[i ..< i + needle.count].elementsEqual(needle) { return i }
            i += 1
        }
        return nil
    }
}

extension FormData {
    /// The form `request` posted (its body was collected, within the limits, by `PageMiddleware`).
    static func posted(_ request: Request) async throws -> FormData {
        var request = request
        let contentType = request.headers[.contentType]
        let limit = contentType.flatMap(multipartBoundary) != nil ? PageMiddleware.maxUploadSize : PageMiddleware.maxFormSize
        return FormData(buffer: try await request.collectBody(upTo: limit), contentType: contentType)
    }
}
