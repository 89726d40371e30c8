import Foundation
import Hummingbird
import MercatoCore
import MercatoHTTP
import MercatoHooks

/// `/developer/docs` (developer+): the API reference rendered on the server from the same
/// OpenAPI document `GET /api/v1/openapi.json` serves: operations grouped by tag, each with
/// its parameters and a curl sample (a request body built from the schema's required fields).
struct DeveloperDocsPages {
    let kit: PageKit
    let reference: APIReference

    init(kit: PageKit, publicURL: String) {
        self.kit = kit
        self.reference = APIReference(document: OpenAPIDocument.bytes, baseURL: publicURL)
    }

    func register(on pages: RouterGroup<AppRequestContext>) {
        pages.get("developer/docs") { request, context in
            let session = try kit.requireSession(context, request: request)
            _ = try session.principal.org(atLeast: .developer, to: "The API reference")
            return kit.page("developer-docs", title: "API reference", context: context, nav: "developer", reference.model)
        }
    }
}

/// The OpenAPI document turned into the page's model once, at start.
struct APIReference: @unchecked Sendable {
    /// Built from JSON values only (strings, numbers, arrays, dictionaries); never mutated.
    let model: [String: Any]

    init(document: [UInt8], baseURL: String) {
        guard let root = (try? JSONSerialization.jsonObject(with: Data(document))) as? [String: Any],
              let paths = root["paths"] as? [String: Any]
        else {
            model = ["title": "API reference", "groups": [[String: Any]](), "empty": true]
            return
        }
        let resolver = Resolver(root: root)
        let info = root["info"] as? [String: Any] ?? [:]
        let globalSecurity = root["security"] as? [Any] ?? []
        var tagOrder: [String] = []
        var tagDescriptions: [String: String] = [:]
        for tag in root["tags"] as? [[String: Any]] ?? [] {
            guard let name = tag["name"] as? String else { continue }
            tagOrder.append(name)
            tagDescriptions[name] = tag["description"] as? String
        }
        var byTag: [String: [[String: Any]]] = [:]
        let methods = ["get", "post", "put", "patch", "delete"]
        for path in paths.keys.sorted() {
            guard let item = paths[path] as? [String: Any] else { continue }
            let shared = (item["parameters"] as? [Any] ?? []).compactMap { resolver.object($0) }
            for method in methods {
                guard let operation = item[method] as? [String: Any] else { continue }
                let tag = (operation["tags"] as? [String])?.first ?? "other"
                if !tagOrder.contains(tag) { tagOrder.append(tag) }
                let parameters = shared + (operation["parameters"] as? [Any] ?? []).compactMap { resolver.object($0) }
                let security = operation["security"] as? [Any] ?? globalSecurity
                var body: Any?
                if let requestBody = resolver.object(operation["requestBody"] as Any),
                   let content = requestBody["content"] as? [String: Any],
                   let json = content["application/json"] as? [String: Any], let schema = json["schema"] {
                    body = resolver.sample(schema, depth: 0)
                }
                let id = operation["operationId"] as? String ?? "\(method)-\(path)"
                var entry: [String: Any] = [
                    "method": method.uppercased(), "methodClass": method, "path": path,
                    "anchor": "op-" + id.filter { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" },
                    "summary": operation["summary"] as? String ?? "",
                    "curl": Self.curl(method: method, path: path, baseURL: baseURL, parameters: parameters, authenticated: !security.isEmpty, body: body),
                    "auth": !security.isEmpty,
                ]
                if let description = operation["description"] as? String { entry["opDescription"] = description }
                let rows: [[String: Any]] = parameters.compactMap { parameter in
                    guard let name = parameter["name"] as? String, let place = parameter["in"] as? String else { return nil }
                    var row: [String: Any] = ["name": name, "in": place, "required": parameter["required"] as? Bool == true]
                    if let description = parameter["description"] as? String { row["paramDescription"] = description }
                    if let schema = resolver.object(parameter["schema"] as Any), let type = schema["type"] as? String { row["paramType"] = type }
                    return row
                }
                if !rows.isEmpty { entry["parameters"] = rows; entry["hasParameters"] = true }
                byTag[tag, default: []].append(entry)
            }
        }
        let groups: [[String: Any]] = tagOrder.compactMap { tag in
            guard let operations = byTag[tag], !operations.isEmpty else { return nil }
            var group: [String: Any] = ["tag": tag, "anchor": "tag-" + tag.filter { $0.isLetter || $0.isNumber }, "operations": operations,
                                        "count": operations.count]
            if let description = tagDescriptions[tag] { group["tagDescription"] = description }
            return group
        }
        model = [
            "apiTitle": info["title"] as? String ?? "Mercato API", "version": info["version"] as? String ?? "",
            "groups": groups, "empty": groups.isEmpty, "baseURL": baseURL,
        ]
    }

    /// A curl command for the operation: `{name}` path parameters as shell variables, the
    /// token as `$MERCATO_TOKEN`, header parameters as placeholders, a JSON body when it has one.
    static func curl(method: String, path: String, baseURL: String, parameters: [[String: Any]], authenticated: Bool, body: Any?) -> String {
        var url = path
        for parameter in parameters where parameter["in"] as? String == "path" {
            guard let name = parameter["name"] as? String else { continue }
            url = url.replacingOccurrences(of: "{\(name)}", with: "${\(shellName(name))}")
        }
        var lines = ["curl -s" + (method == "get" ? "" : " -X \(method.uppercased())") + " \"\(baseURL)\(url)\""]
        if authenticated { lines.append("  -H \"Authorization: Bearer $MERCATO_TOKEN\"") }
        for parameter in parameters where parameter["in"] as? String == "header" {
            guard let name = parameter["name"] as? String else { continue }
            lines.append("  -H \"\(name): ${\(shellName(name))}\"")
        }
        if let body {
            let options: JSONSerialization.WritingOptions = [.sortedKeys, .withoutEscapingSlashes]
            let json = (try? JSONSerialization.data(withJSONObject: body, options: options)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
            lines.append("  -H \"Content-Type: application/json\"")
            lines.append("  -d '\(json.replacingOccurrences(of: "'", with: "'\\''"))'")
        }
        return lines.joined(separator: " \\\n")
    }

    static func shellName(_ name: String) -> String {
        String(name.uppercased().map { $0.isLetter || $0.isNumber ? $0 : "_" })
    }

    /// `$ref` lookups within the document, and sample values for schemas.
    struct Resolver {
        let root: [String: Any]

        /// `value` as an object, following one or more local `$ref`s.
        func object(_ value: Any) -> [String: Any]? {
            var current = value as? [String: Any]
            var hops = 0
            while let ref = current?["$ref"] as? String, hops < 10 {
                guard ref.hasPrefix("#/") else { return nil }
                var node: Any? = root
                for part in ref.dropFirst(2).split(separator: "/") {
                    node = (node as? [String: Any])?[String(part).replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")]
                }
                current = node as? [String: Any]
                hops += 1
            }
            return current
        }

        /// A plausible value for `schema`: its example, default or first enum value, else one
        /// by type; objects hold their required properties (all of them when none is required).
        func sample(_ schema: Any, depth: Int) -> Any {
            guard depth < 6, let schema = object(schema) else { return [String: Any]() }
            if let example = schema["example"] { return example }
            if let value = schema["default"] { return value }
            if let values = schema["enum"] as? [Any], let first = values.first { return first }
            if let value = schema["const"] { return value }
            for key in ["allOf", "oneOf", "anyOf"] {
                if let options = schema[key] as? [Any], let first = options.first {
                    if key == "allOf" {
                        var merged: [String: Any] = [:]
                        for option in options {
                            if let part = sample(option, depth: depth + 1) as? [String: Any] { merged.merge(part) { a, _ in a } }
                        }
                        return merged
                    }
                    return sample(first, depth: depth + 1)
                }
            }
            var type = schema["type"] as? String
            if type == nil, let types = schema["type"] as? [String] { type = types.first { $0 != "null" } }
            if type == nil, schema["properties"] != nil { type = "object" }
            switch type {
            case "object"?:
                let properties = schema["properties"] as? [String: Any] ?? [:]
                let required = schema["required"] as? [String] ?? []
                let names = required.isEmpty ? Array(properties.keys) : required
                var result: [String: Any] = [:]
                for name in names { result[name] = properties[name].map { sample($0, depth: depth + 1) } ?? "…" }
                return result
            case "array"?:
                if let items = schema["items"] { return [sample(items, depth: depth + 1)] }
                return [Any]()
            case "integer"?:
                return (schema["minimum"] as? Int) ?? 1
            case "number"?:
                return (schema["minimum"] as? Double) ?? 1
            case "boolean"?:
                return true
            case "string"?:
                switch schema["format"] as? String {
                case "date-time"?: return "2026-01-01T00:00:00Z"
                case "uri"?, "url"?: return "https://example.com"
                case "email"?: return "ada@example.com"
                default: return "string"
                }
            default:
                return [String: Any]()
            }
        }
    }
}
