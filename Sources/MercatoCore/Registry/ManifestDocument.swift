public import Foundation
public import MercatoHooks
import Yams

/// Reads a manifest body: JSON, or YAML when the content type says so (or the file ends in
/// `.yaml`/`.yml`). YAML is read into the same JSON value, so validation is one code path.
public enum ManifestDocument {
    public enum Format: Sendable { case json, yaml }

    /// The format a `Content-Type` names, `nil` when it is neither JSON nor YAML.
    public static func format(contentType: String?) -> Format? {
        let media = contentType?.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        switch media {
        case "application/json": return .json
        case "application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml": return .yaml
        default: return media.hasPrefix("application/") && media.hasSuffix("+json") ? .json : nil
        }
    }

    /// Parses `data`; a syntax error is 400 `malformed_json` / `malformed_yaml` with the reason.
    public static func parse(_ data: Data, format: Format) throws -> JSONValue {
        let value = try parseSyntax(data, format: format)
        if let path = value.pathOfNUL() {
            throw ManifestProblems(errors: [.init(field: path, message: "must not contain the NUL character")]).apiError
        }
        return value
    }

    private static func parseSyntax(_ data: Data, format: Format) throws -> JSONValue {
        guard !data.isEmpty else {
            throw APIError(status: 400, code: format == .json ? "malformed_json" : "malformed_yaml", title: "Empty body", detail: "The request body is empty; send the manifest.")
        }
        switch format {
        case .json:
            do { return try JSONDecoder().decode(JSONValue.self, from: data) } catch {
                throw APIError.malformedJSON("The manifest is not valid JSON.")
            }
        case .yaml:
            guard let text = String(data: data, encoding: .utf8) else {
                throw APIError(status: 400, code: "malformed_yaml", title: "Malformed YAML", detail: "The manifest is not UTF-8 text.")
            }
            do {
                return try YAMLDecoder().decode(JSONValue.self, from: text, userInfo: [JSONValue.scalarsReadAsText: true])
            } catch let error as YamlError {
                throw APIError(status: 400, code: "malformed_yaml", title: "Malformed YAML", detail: "The manifest is not valid YAML: \(Self.reason(error))")
            } catch {
                throw APIError(status: 400, code: "malformed_yaml", title: "Malformed YAML", detail: "The manifest is not a YAML mapping.")
            }
        }
    }

    private static func reason(_ error: YamlError) -> String {
        String(describing: error).split(separator: "\n").first.map(String.init) ?? "syntax error"
    }
}
