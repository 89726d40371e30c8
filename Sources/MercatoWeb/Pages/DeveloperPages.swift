import Foundation
import Hummingbird
import MercatoCore
import MercatoHTTP
import MercatoHooks
import MercatoStorage

/// The developer portal: `/developer` (the org's apps), `/developer/apps/new` (register from a
/// pasted or uploaded manifest, every problem listed with its field), `/developer/apps/{key}`
/// (status, versions and a new version, secrets, publish/unlist, rotate, deliveries, command
/// log). Secrets appear once, on the page that answers the registration or the rotation.
/// Through `RegistryService`, as the API; deliveries and the log in `DeveloperLogPages`.
struct DeveloperPages {
    let runtime: MercatoRuntime
    let kit: PageKit

    /// The largest manifest file accepted (the API's manifest body limit).
    static let manifestLimit = 256 * 1024

    static let flashes: [String: String] = [
        "published": "The app is published: every org can find it in the marketplace.",
        "unlisted": "The app is unlisted: it takes no new installs; existing installs keep working.",
        "version": "The new version is added. Installs move to it when their admins upgrade.",
        "retried": "The delivery is queued: it is sent again in a moment.",
    ]

    func register(on pages: RouterGroup<AppRequestContext>) {
        let logs = DeveloperLogPages(runtime: runtime, kit: kit)
        logs.register(on: pages)

        pages.get("developer") { request, context in
            let session = try kit.requireSession(context, request: request)
            let apps = try await runtime.registry.developerApps(by: session.principal)
            let rows: [[String: Any]] = apps.map { app in
                ["key": app.key, "path": MarketplacePages.pathSegment(app.key), "name": app.name, "status": app.status,
                 "version": app.latestVersion, "updated": MarketplacePages.time(app.updatedAt)]
            }
            return kit.page("developer", title: "Developer", context: context, nav: "developer", ["apps": rows, "empty": rows.isEmpty])
        }

        pages.get("developer/apps/new") { request, context in
            let session = try kit.requireSession(context, request: request)
            _ = try session.principal.org(atLeast: .developer, to: "Registering apps")
            return kit.page("developer-new", title: "Register an app", context: context, nav: "developer", [:])
        }

        pages.post("developer/apps/new") { request, context in
            let session = try kit.requireSession(context, request: request)
            _ = try session.principal.org(atLeast: .developer, to: "Registering apps")
            let form = try await FormData.posted(request)
            let sent = Self.manifest(from: form)
            do {
                let made = try await runtime.registry.register(try sent.document(), by: session.principal, requestID: context.requestID)
                return kit.page("developer-secrets", title: "\(made.manifest.name) registered", context: context, nav: "developer", [
                    "heading": "\(made.manifest.name) is registered", "path": MarketplacePages.pathSegment(made.app.key),
                    "secrets": Self.secretRows(made.newSecrets), "warning": Self.onceWarning,
                ])
            } catch let error as APIError where error.status == 400 || error.status == 413 || error.status == 422 || error.status == 409 {
                return kit.page("developer-new", title: "Register an app", context: context, status: HTTPResponse.Status(code: error.status),
                                nav: "developer", Self.manifestFormModel(text: sent.text, error: error))
            }
        }

        pages.get("developer/apps/{key}") { request, context in
            let session = try kit.requireSession(context, request: request)
            let key = try context.parameters.require("key")
            let query = FormData(request.uri.query ?? "")
            var model = try await appModel(key: key, session: session, context: context, query: query, logs: logs)
            if let done = query["done"] {
                if done == "recovered", let count = query["count"].flatMap(Int.init) {
                    model["flash"] = ["kind": "ok", "text": DeveloperLogPages.recoveredText(count, more: query["more"] == "1")]
                } else if let text = Self.flashes[done] {
                    model["flash"] = ["kind": "ok", "text": text]
                }
            }
            return kit.page("developer-app", title: model["name"] as? String ?? key, context: context, nav: "developer", model)
        }

        // A new version: the manifest pasted or uploaded; its version must be greater.
        pages.post("developer/apps/{key}/versions") { request, context in
            let session = try kit.requireSession(context, request: request)
            let key = try context.parameters.require("key")
            _ = try await runtime.registry.developerApp(key: key, by: session.principal)   // 404 before reading another org's manifest
            let form = try await FormData.posted(request)
            let sent = Self.manifest(from: form)
            do {
                let made = try await runtime.registry.addVersion(key: key, document: try sent.document(), by: session.principal, requestID: context.requestID)
                guard !made.newSecrets.isEmpty else { return kit.redirect("/developer/apps/\(MarketplacePages.pathSegment(key))?done=version") }
                return kit.page("developer-secrets", title: "New secret", context: context, nav: "developer", [
                    "heading": "Version \(made.manifest.version) of \(made.manifest.name) is added", "path": MarketplacePages.pathSegment(key),
                    "secrets": Self.secretRows(made.newSecrets), "warning": Self.onceWarning,
                ])
            } catch let error as APIError where error.status == 400 || error.status == 413 || error.status == 422 || error.status == 409 {
                var model = try await appModel(key: key, session: session, context: context, query: FormData(""), logs: logs)
                model["versionForm"] = Self.manifestFormModel(text: sent.text, error: error).merging(["open": true]) { $1 }
                model["flash"] = ["kind": "error", "text": "The new version was not added; see the problems below."]
                return kit.page("developer-app", title: model["name"] as? String ?? key, context: context,
                                status: HTTPResponse.Status(code: error.status), nav: "developer", model)
            }
        }

        for (action, status) in [("publish", "published"), ("unlist", "unlisted")] {
            pages.post("developer/apps/{key}/\(action)") { request, context in
                let session = try kit.requireSession(context, request: request)
                let key = try context.parameters.require("key")
                _ = try await runtime.registry.setStatus(key: key, to: status, by: session.principal, requestID: context.requestID)
                return kit.redirect("/developer/apps/\(MarketplacePages.pathSegment(key))?done=\(status)")
            }
        }

        pages.post("developer/apps/{key}/rotate/{kind}") { request, context in
            let session = try kit.requireSession(context, request: request)
            let key = try context.parameters.require("key")
            guard let kind = RegistryService.SecretKind(rawValue: try context.parameters.require("kind")) else { throw APIError.notFound("Secret kind") }
            let view = try await runtime.registry.developerApp(key: key, by: session.principal)
            let (secret, until) = try await runtime.registry.rotateSecret(key: key, kind: kind, by: session.principal, requestID: context.requestID)
            var model: [String: Any] = [
                "heading": "New \(kind.rawValue) secret for \(view.manifest.name)", "path": MarketplacePages.pathSegment(key),
                "secrets": Self.secretRows([kind.rawValue: secret]), "warning": Self.onceWarning,
            ]
            if let until { model["overlap"] = "The previous secret keeps working until \(MarketplacePages.time(Int64(until.timeIntervalSince1970 * 1000)))." }
            return kit.page("developer-secrets", title: "New secret", context: context, nav: "developer", model)
        }
    }

    /// The app's page: listing, versions, secrets, deliveries and command log (filtered by `query`).
    func appModel(key: String, session: BrowserSession, context: AppRequestContext, query: FormData, logs: DeveloperLogPages) async throws -> [String: Any] {
        let view = try await runtime.registry.developerApp(key: key, by: session.principal)
        let latest = view.app.latestVersion
        var model: [String: Any] = [
            "key": view.app.key, "path": MarketplacePages.pathSegment(view.app.key), "name": view.manifest.name, "status": view.app.status,
            "version": latest, "isPublished": view.app.status == "published",
            "versions": view.versions.sorted { (Semver($0) ?? Semver("0.0.0")!) > (Semver($1) ?? Semver("0.0.0")!) }
                .map { ["version": $0, "latest": $0 == latest] },
            "secrets": view.secrets.map { secret -> [String: Any] in
                var row: [String: Any] = ["kind": secret.kind, "created": MarketplacePages.time(secret.createdAt)]
                if let until = secret.validUntil { row["until"] = MarketplacePages.time(until) }
                return row
            },
            "versionForm": Self.manifestFormModel(text: "", error: nil),
        ]
        model["deliveries"] = try await logs.deliveriesModel(key: key, session: session, query: query)
        model["commands"] = try await logs.commandsModel(key: key, session: session, query: query)
        model["recover"] = ["since": query["since"] ?? ""]
        return model
    }

    /// A manifest as a form sent it: the uploaded file when one was chosen, else the pasted text.
    struct SentManifest {
        var text: String
        var format: ManifestDocument.Format
        var problem: APIError?

        func document() throws -> JSONValue {
            if let problem { throw problem }
            return try ManifestDocument.parse(Data(text.utf8), format: format)
        }
    }

    static func manifest(from form: FormData) -> SentManifest {
        if let file = form.files["manifest_file"] {
            guard file.bytes.count <= manifestLimit else {
                return SentManifest(text: "", format: .json, problem: APIError.fieldProblems(
                    [.init(field: "manifest_file", message: "is larger than \(manifestLimit / 1024) KiB")], status: 413, code: "payload_too_large",
                    title: "Manifest too large"))
            }
            guard let text = String(validating: file.bytes, as: UTF8.self) else {
                return SentManifest(text: "", format: .json, problem: APIError.fieldProblems(
                    [.init(field: "manifest_file", message: "is not UTF-8 text")], status: 400, code: "malformed_yaml", title: "Not a manifest"))
            }
            let name = file.filename.lowercased()
            let format: ManifestDocument.Format = name.hasSuffix(".json") ? .json : name.hasSuffix(".yaml") || name.hasSuffix(".yml") ? .yaml
                : ManifestDocument.format(contentType: file.contentType) ?? sniff(text)
            return SentManifest(text: text, format: format)
        }
        let text = form["manifest"] ?? ""
        if text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            return SentManifest(text: text, format: .yaml, problem: APIError.fieldProblems(
                [.init(field: "manifest", message: "is empty: paste the manifest or choose its file")]))
        }
        return SentManifest(text: text, format: sniff(text))
    }

    private static func sniff(_ text: String) -> ManifestDocument.Format {
        text.trimmingCharacters(in: .whitespacesAndNewlines).hasPrefix("{") ? .json : .yaml
    }

    /// The manifest form (paste or upload) with `error`'s problems beside their fields: the
    /// file's problems beside the file input, the manifest's beside the text.
    static func manifestFormModel(text: String, error: APIError?) -> [String: Any] {
        var model: [String: Any] = ["manifest": text]
        guard let error else { return model }
        let fileProblems = error.errors.filter { $0.field == "manifest_file" }.map(\.message)
        let problems = error.errors.filter { $0.field != "manifest_file" }.map { ["field": $0.field, "message": $0.message] }
        if !fileProblems.isEmpty { model["fileError"] = fileProblems.joined(separator: "; ") }
        model["problems"] = problems
        model["hasProblems"] = !problems.isEmpty
        let count = problems.count + fileProblems.count
        model["failure"] = count == 0 ? error.detail : "The manifest has \(count) problem\(count == 1 ? "" : "s"); fix them and send it again."
        return model
    }

    static let onceWarning = "Copy these secrets now: they are shown on this page only and cannot be read again. Keep them in your app's secret store."

    static func secretRows(_ secrets: [String: String]) -> [[String: Any]] {
        secrets.sorted { $0.key < $1.key }.map { ["kind": $0.key, "value": $0.value, "id": "secret-" + $0.key] }
    }
}
