public import MercatoHooks

/// Turns what a caller sent into an install's config, against one version's schema: defaults
/// filled in, unknown keys refused, types/patterns/bounds checked, required fields enforced,
/// every problem named by field (422 `invalid_config`). Problems never quote a value.
public enum ConfigResolver {
    /// What secret fields show in answers.
    public static let mask = "********"

    /// The resolved values and the keys whose value changed.
    public struct Resolution: Sendable, Equatable {
        public var values: [String: JSONValue]
        public var changed: [String]
    }

    /// - Parameters:
    ///   - current: the install's values now (empty for a new install).
    ///   - patch: keys to set; `null` clears a key; a secret field sent as the mask keeps its value.
    public static func resolve(fields: [AppManifest.ConfigField], current: [String: JSONValue], patch: [String: JSONValue]) throws -> Resolution {
        let byKey = Dictionary(uniqueKeysWithValues: fields.map { ($0.key, $0) })
        var values = current.filter { byKey[$0.key] != nil }           // drop keys the schema no longer has
        for field in fields where values[field.key] == nil && current[field.key] == nil {
            if let d = field.default { values[field.key] = d }         // defaults for fields never set
        }
        var problems: [APIError.FieldProblem] = []
        for key in patch.keys.sorted() {
            let value = patch[key]!
            guard let field = byKey[key] else {
                problems.append(.init(field: "config.\(key)", message: "is not a config field of this app"))
                continue
            }
            if value == .null { values[key] = nil; continue }
            if field.isSecret, value == .string(mask) {
                if current[key] == nil { problems.append(.init(field: "config.\(key)", message: "must be set; the mask only keeps an existing value")) }
                continue
            }
            if let problem = ConfigValueCheck.problem(with: value, field: field) {
                problems.append(.init(field: "config.\(key)", message: problem))
                continue
            }
            values[key] = value
        }
        for field in fields where field.required && values[field.key] == nil && !problems.contains(where: { $0.field == "config.\(field.key)" }) {
            problems.append(.init(field: "config.\(field.key)", message: "is required"))
        }
        guard problems.isEmpty else {
            throw APIError.fieldProblems(problems, code: "invalid_config", title: "Invalid config")
        }
        let changed = Set(values.keys).union(current.keys).filter { values[$0] != current[$0] }.sorted()
        return Resolution(values: values, changed: changed)
    }

    /// `values` as answers show them: secret fields masked.
    public static func masked(_ values: [String: JSONValue], fields: [AppManifest.ConfigField]) -> [String: JSONValue] {
        var out = values
        for field in fields where field.isSecret && out[field.key] != nil { out[field.key] = .string(mask) }
        return out
    }
}

/// Per-plan limits; `nil` is unlimited.
public struct PlanLimits: Sendable {
    public var maxInstalls: [Plan: Int]

    public init(maxInstalls: [Plan: Int] = [.free: 5, .pro: 50]) {
        self.maxInstalls = maxInstalls
    }
}
