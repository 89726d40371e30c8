import Foundation
public import MercatoHooks

/// Checks a command's `args` against its definition; the first problem names its field.
public enum ArgsValidator {
    public static func validate(_ args: JSONValue?, against definition: CommandDefinition) -> CommandError? {
        let object: [String: JSONValue]
        switch args {
        case nil, .null?: object = [:]
        case .object(let o)?: object = o
        default: return .invalidArgs(field: "args", "must be an object")
        }
        if let path = JSONValue.object(object).pathOfNUL() {
            return .invalidArgs(field: "args.\(path)", "must not contain the NUL character")
        }
        let known = Dictionary(uniqueKeysWithValues: definition.args.map { ($0.name, $0) })
        for key in object.keys.sorted() where known[key] == nil {
            return .invalidArgs(field: "args.\(key)", "is not an argument of `\(definition.name)`")
        }
        for field in definition.args {
            guard let value = object[field.name], value != .null else {
                if field.required { return .invalidArgs(field: "args.\(field.name)", "is required") }
                continue
            }
            switch field.kind {
            case .string(let max):
                guard let s = value.stringValue else { return .invalidArgs(field: "args.\(field.name)", "must be a string") }
                if s.isEmpty && field.required { return .invalidArgs(field: "args.\(field.name)", "must not be empty") }
                if s.count > max { return .invalidArgs(field: "args.\(field.name)", "must be at most \(max) characters") }
            case .number:
                if value.numberValue == nil { return .invalidArgs(field: "args.\(field.name)", "must be a number") }
            case .bool:
                if value.boolValue == nil { return .invalidArgs(field: "args.\(field.name)", "must be true or false") }
            case .json(let maxBytes):
                // Measured as storage writes it (``JSONValue/jsonBytes()``).
                let size = (try? value.jsonBytes().count) ?? Int.max
                if size > maxBytes { return .invalidArgs(field: "args.\(field.name)", "must be at most \(maxBytes / 1024) KiB of JSON") }
            }
        }
        return nil
    }
}
