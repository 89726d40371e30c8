public import Foundation
public import MercatoHooks

/// Whether one config value fits its field's type; shared by manifest defaults and, later,
/// install config validation.
public enum ConfigValueCheck {
    /// A sentence saying what is wrong with `value`, or `nil` when it fits.
    public static func problem(with value: JSONValue, type: String, options: [String]?, pattern: NSRegularExpression?,
                               min: Double? = nil, max: Double? = nil) -> String? {
        switch type {
        case "string", "text", "secret", "url":
            guard let s = value.stringValue else { return "must be a string" }
            if type == "url", !(URL(string: s).map { ["http", "https"].contains($0.scheme ?? "") && $0.host != nil } ?? false) {
                return "must be an http(s) URL"
            }
            if let pattern, !ManifestValidator.matches(pattern, s) {
                // The pattern, never the value: the value may be a secret.
                return "must match the pattern \(pattern.pattern)"
            }
            return nil
        case "number":
            guard let n = value.numberValue else { return "must be a number" }
            if let min, n < min { return "must be at least \(JSONValue.number(min).compactText)" }
            if let max, n > max { return "must be at most \(JSONValue.number(max).compactText)" }
            return nil
        case "boolean":
            return value.boolValue == nil ? "must be true or false" : nil
        case "enum":
            guard let s = value.stringValue else { return "must be one of the options" }
            return (options ?? []).contains(s) ? nil : "must be one of \((options ?? []).joined(separator: ", "))"
        default:
            return "has an unknown type"
        }
    }
}

extension ConfigValueCheck {
    /// Checks `value` against a manifest config field.
    public static func problem(with value: JSONValue, field: AppManifest.ConfigField) -> String? {
        let regex = field.pattern.flatMap { try? NSRegularExpression(pattern: $0) }
        return problem(with: value, type: field.type, options: field.options, pattern: regex, min: field.min, max: field.max)
    }
}
