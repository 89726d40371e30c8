/// One member of a command's `args` object; the host checks it before the command reaches
/// the plugin (422 `invalid_args` naming the field).
public struct ArgField: Sendable {
    /// What a member may hold. `null` counts as absent.
    public enum Kind: Sendable, Equatable {
        /// A string of at most `maxLength` characters (and not empty when required).
        case string(maxLength: Int)
        /// A JSON number.
        case number
        /// `true` or `false`.
        case bool
        /// Any JSON value whose encoding is at most `maxBytes` bytes.
        case json(maxBytes: Int)
    }

    /// The member's name in `args`.
    public var name: String
    /// What it may hold.
    public var kind: Kind
    /// Whether a command without it is refused.
    public var required: Bool

    /// A member `name` of `kind`, optional unless `required`.
    public init(_ name: String, _ kind: Kind, required: Bool = false) {
        self.name = name
        self.kind = kind
        self.required = required
    }
}
