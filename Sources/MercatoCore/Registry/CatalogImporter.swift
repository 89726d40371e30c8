public import Foundation
public import Logging
import MercatoHooks
import MercatoStorage

/// Loads a catalog folder (`providers/*.yaml`, `apps/*.yaml`; JSON also accepted): provider
/// definitions are upserted, apps are registered and published under the platform's catalog org,
/// a newer version of an app is added, everything else is left alone. Running it again changes
/// nothing.
public struct CatalogImporter: Sendable {
    public let runtime: MercatoRuntime

    public init(runtime: MercatoRuntime) { self.runtime = runtime }

    /// What an import did.
    public struct Report: Sendable, Equatable {
        public var providers = 0
        public var appsCreated: [String] = []
        public var appsUpdated: [String] = []
        public var appsUnchanged: [String] = []
        /// `file: problem` lines for files that were not imported.
        public var problems: [String] = []
    }

    static let catalogOrgSetting = "catalog_org_id"

    public func importDirectory(_ directory: URL) async throws -> Report {
        var report = Report()
        for file in Self.files(in: directory.appendingPathComponent("providers")) {
            do {
                let definition = try ProviderDefinition.validate(try Self.document(file)).get()
                guard definition.key == file.deletingPathExtension().lastPathComponent else {
                    report.problems.append("\(file.lastPathComponent): key `\(definition.key)` does not match the file name")
                    continue
                }
                let json = try JSONCoding.text(definition)
                try await runtime.database.longTransaction { db in
                    // A provider the operator set through the API is theirs: the catalog does not overwrite it.
                    let current = try await ProviderStore.find(key: definition.key, on: db)
                    if current?.source != "api", current?.definition != json {
                        try await ProviderStore.upsert(key: definition.key, definitionJSON: json, source: "catalog", at: runtime.clock.millis, on: db)
                    }
                }
                report.providers += 1
            } catch let problems as ManifestProblems {
                report.problems.append("\(file.lastPathComponent): \(problems.apiError.detail)")
            } catch let error as APIError {
                report.problems.append("\(file.lastPathComponent): \(error.detail)")
            }
        }
        let catalogOrg = try await catalogOrgID()
        for file in Self.files(in: directory.appendingPathComponent("apps")) {
            do {
                let manifest = try await runtime.registry.validate(try Self.document(file))
                guard manifest.key == file.deletingPathExtension().lastPathComponent else {
                    report.problems.append("\(file.lastPathComponent): key `\(manifest.key)` does not match the file name")
                    continue
                }
                let existing = try await runtime.database.read { try await AppStore.find(key: manifest.key, on: $0) }
                guard let existing else {
                    _ = try await runtime.registry.register(manifest, developerOrg: catalogOrg, status: "published")
                    report.appsCreated.append(manifest.key)
                    continue
                }
                guard existing.developerOrgId == catalogOrg else {
                    report.problems.append("\(file.lastPathComponent): key `\(manifest.key)` belongs to another org's app")
                    continue
                }
                if let latest = Semver(existing.latestVersion), manifest.semver > latest {
                    _ = try await runtime.registry.addVersion(manifest, appKey: manifest.key, developerOrg: catalogOrg)
                    report.appsUpdated.append(manifest.key)
                } else {
                    report.appsUnchanged.append(manifest.key)
                }
            } catch let error as APIError {
                report.problems.append("\(file.lastPathComponent): \(error.detail)")
            }
        }
        return report
    }

    /// The org that owns catalog apps, created on first import.
    private func catalogOrgID() async throws -> String {
        try await runtime.database.longTransaction { db in
            if let id = try await PlatformSettingStore.get(Self.catalogOrgSetting, on: db) { return id }
            let org = OrgRecord(id: RecordID.make("org"), name: "Mercato Catalog", plan: Plan.enterprise.rawValue, createdAt: runtime.clock.millis)
            try await OrgStore.insert(org, on: db)
            try await PlatformSettingStore.set(Self.catalogOrgSetting, org.id, on: db)
            return org.id
        }
    }

    static func files(in directory: URL) -> [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") || $0.hasSuffix(".json") }
            .sorted().map { directory.appendingPathComponent($0) }
    }

    static func document(_ file: URL) throws -> JSONValue {
        let data: Data
        do { data = try Data(contentsOf: file) } catch {
            throw APIError(status: 400, code: "unreadable_file", title: "Unreadable file", detail: "cannot read the file")
        }
        return try ManifestDocument.parse(data, format: file.pathExtension == "json" ? .json : .yaml)
    }

    /// Imports and logs the outcome; used at server start.
    public func importAtStart(_ directory: URL, logger: Logger) async {
        do {
            let report = try await importDirectory(directory)
            logger.info("catalog imported", metadata: [
                "dir": "\(directory.path)", "providers": "\(report.providers)", "apps_created": "\(report.appsCreated.count)",
                "apps_updated": "\(report.appsUpdated.count)", "apps_unchanged": "\(report.appsUnchanged.count)",
            ])
            for problem in report.problems { logger.warning("catalog file not imported", metadata: ["problem": "\(problem)"]) }
        } catch {
            logger.error("catalog import failed", metadata: ["dir": "\(directory.path)", "reason": "\(error)"])
        }
    }
}
