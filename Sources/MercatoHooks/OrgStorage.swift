/// A plugin's data across one org: the per-install namespaces (read across, written one at a
/// time) and the org's own namespace, which uninstalls do not touch. See <doc:Storage>.
public protocol OrgStorage: Sendable {
    /// Entries under `prefix` in every install namespace of this org, by key (descending when
    /// `newestFirst`), strictly past `after` in that order, at most `limit`.
    func entries(prefix: String, after: String?, limit: Int, newestFirst: Bool) async throws -> [StoredEntry]
    /// The first entry with exactly `key` in any install namespace of this org.
    func find(_ key: String) async throws -> StoredEntry?
    /// The namespace of one install of this org, to write in. Pass only an install id this
    /// view answered (``StoredEntry/installID``), never one taken from a request.
    func install(_ installID: String) -> any PluginStorage
    /// The org's own namespace: kept until the org is gone, whatever is uninstalled.
    var own: any PluginStorage { get }
}

/// Thrown by ``OrgStorage/entries(prefix:after:limit:newestFirst:)`` and ``OrgStorage/find(_:)``
/// for a plugin whose manifest does not declare ``PluginManifest/orgWideReads``: its keys are
/// not indexed by org, so they cannot be read across one.
public struct OrgWideReadsNotDeclared: Error, CustomStringConvertible {
    /// The plugin's id.
    public let plugin: String

    /// The error for `plugin`.
    public init(plugin: String) {
        self.plugin = plugin
    }

    public var description: String {
        "plugin `\(plugin)` reads across an org's installs but its manifest does not declare `orgWideReads: true`"
    }
}

/// One stored key of a plugin, with the install it belongs to (`nil` for the org's own namespace).
public struct StoredEntry: Sendable, Equatable {
    /// The install whose namespace holds the key, `nil` for the org's own namespace.
    public var installID: String?
    /// The key.
    public var key: String
    /// The value and its version.
    public var value: StoredValue

    /// An entry as ``OrgStorage`` answers it.
    public init(installID: String?, key: String, value: StoredValue) {
        self.installID = installID
        self.key = key
        self.value = value
    }
}
