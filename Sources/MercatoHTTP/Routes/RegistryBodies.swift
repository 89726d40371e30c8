import Foundation
import Hummingbird
import MercatoCore
import MercatoHooks
import MercatoStorage

/// A catalog entry: the manifest's own fields plus `status`, `installable` and the reason.
struct CatalogItem: ResponseEncodable, Sendable {
    let entry: RegistryService.CatalogEntry

    enum Extra: String, CodingKey { case status, installable, notInstallableReason, publishedAt, updatedAt }

    func encode(to encoder: any Encoder) throws {
        try entry.manifest.encode(to: encoder)
        var c = encoder.container(keyedBy: Extra.self)
        try c.encode(entry.app.status, forKey: .status)
        try c.encode(entry.installable, forKey: .installable)
        try c.encodeIfPresent(entry.notInstallableReason, forKey: .notInstallableReason)
        try c.encode(Timestamp.date(millis: entry.app.updatedAt), forKey: .updatedAt)
    }
}

/// An app in the developer API (never a secret value).
struct DeveloperAppBody: ResponseEncodable, Sendable {
    let id: String
    let key: String
    let name: String
    let status: String
    let version: String
    let createdAt: Date
    let updatedAt: Date
    var versions: [String]?
    var manifest: AppManifest?
    var secrets: [SecretInfo]?

    struct SecretInfo: Encodable, Sendable {
        let id: String
        let kind: String
        let createdAt: Date
        let validUntil: Date?
    }

    init(_ app: AppRecord) {
        id = app.id
        key = app.key
        name = app.name
        status = app.status
        version = app.latestVersion
        createdAt = Timestamp.date(millis: app.createdAt)
        updatedAt = Timestamp.date(millis: app.updatedAt)
    }

    init(_ view: RegistryService.DeveloperView) {
        self.init(view.app)
        versions = view.versions
        manifest = view.manifest
        secrets = view.secrets.map { SecretInfo(id: $0.id, kind: $0.kind, createdAt: Timestamp.date(millis: $0.createdAt), validUntil: $0.validUntil.map(Timestamp.date(millis:))) }
    }
}

/// The answer to a registration or a new version: the app and, once, any secret it created.
struct RegisteredBody: ResponseEncodable, Sendable {
    let id: String
    let key: String
    let name: String
    let version: String
    let status: String
    let secrets: [String: String]?
    let createdAt: Date

    init(_ r: RegistryService.Registered) {
        id = r.app.id
        key = r.app.key
        name = r.app.name
        version = r.manifest.version
        status = r.app.status
        secrets = r.newSecrets.isEmpty ? nil : r.newSecrets
        createdAt = Timestamp.date(millis: r.app.createdAt)
    }
}
