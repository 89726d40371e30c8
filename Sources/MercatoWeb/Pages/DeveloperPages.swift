import Foundation
import Hummingbird
import MercatoCore
import MercatoHTTP
import MercatoHooks
import MercatoStorage

/// The developer portal: `/developer` (the org's apps), `/developer/apps/new` (register from a
/// pasted manifest, every problem listed with its field), `/developer/apps/{key}` (status,
/// versions, secrets, publish/unlist, rotate). Secrets appear once, on the page that answers
/// the registration or the rotation. Through `RegistryService`, as the API.
struct DeveloperPages {
    let runtime: MercatoRuntime
    let kit: PageKit

    static let flashes: [String: String] = [
        "published": "The app is published: every org can find it in the marketplace.",
        "unlisted": "The app is unlisted: it takes no new installs; existing installs keep working.",
    ]

    func register(on pages: RouterGroup<AppRequestContext>) {
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
            var request = request
            let form = FormData(buffer: try await request.collectBody(upTo: PageMiddleware.maxFormSize))
            let text = form["manifest"] ?? ""
            let format: ManifestDocument.Format = text.trimmingCharacters(in: .whitespacesAndNewlines).hasPrefix("{") ? .json : .yaml
            do {
                let document = try ManifestDocument.parse(Data(text.utf8), format: format)
                let made = try await runtime.registry.register(document, by: session.principal, requestID: context.requestID)
                return kit.page("developer-secrets", title: "\(made.manifest.name) registered", context: context, nav: "developer", [
                    "heading": "\(made.manifest.name) is registered", "path": MarketplacePages.pathSegment(made.app.key),
                    "secrets": Self.secretRows(made.newSecrets), "warning": Self.onceWarning,
                ])
            } catch let error as APIError where error.status == 400 || error.status == 422 || error.status == 409 {
                let problems = error.errors.map { ["field": $0.field, "message": $0.message] }
                return kit.page("developer-new", title: "Register an app", context: context, status: HTTPResponse.Status(code: error.status),
                                nav: "developer", ["manifest": text, "problems": problems, "hasProblems": !problems.isEmpty,
                                                   "failure": problems.isEmpty ? error.detail : "The manifest has \(problems.count) problem\(problems.count == 1 ? "" : "s"); fix them and register again."])
            }
        }

        pages.get("developer/apps/{key}") { request, context in
            let session = try kit.requireSession(context, request: request)
            let key = try context.parameters.require("key")
            let view = try await runtime.registry.developerApp(key: key, by: session.principal)
            var model: [String: Any] = [
                "key": view.app.key, "path": MarketplacePages.pathSegment(view.app.key), "name": view.manifest.name, "status": view.app.status,
                "version": view.app.latestVersion, "versions": view.versions, "isPublished": view.app.status == "published",
                "secrets": view.secrets.map { secret -> [String: Any] in
                    var row: [String: Any] = ["kind": secret.kind, "created": MarketplacePages.time(secret.createdAt)]
                    if let until = secret.validUntil { row["until"] = MarketplacePages.time(until) }
                    return row
                },
            ]
            if let done = request.uri.queryParameters["done"].map(String.init), let text = Self.flashes[done] { model["flash"] = ["kind": "ok", "text": text] }
            return kit.page("developer-app", title: view.manifest.name, context: context, nav: "developer", model)
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

    static let onceWarning = "Copy these secrets now: they are shown on this page only and cannot be read again. Keep them in your app's secret store."

    static func secretRows(_ secrets: [String: String]) -> [[String: Any]] {
        secrets.sorted { $0.key < $1.key }.map { ["kind": $0.key, "value": $0.value, "id": "secret-" + $0.key] }
    }
}
