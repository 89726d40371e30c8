import Foundation
import Hummingbird
import MercatoCore
import MercatoHTTP
import MercatoHooks
import MercatoStorage

/// Upgrading an install from the app page: offered when the app has a newer version; the
/// scopes it adds are shown in plain words and need the admin's explicit consent (a checkbox),
/// and settings the new version adds are asked for on the same form. `InstallService.upgrade`
/// decides, as for the API (`accept_scopes`); its refusals are shown on the page.
extension MarketplacePages {
    func registerUpgrade(on pages: RouterGroup<AppRequestContext>) {
        pages.post("marketplace/{key}/upgrade") { request, context in
            let session = try kit.requireSession(context, request: request)
            let key = try context.parameters.require("key")
            let form = try await FormData.posted(request)
            guard let install = try await liveInstalls(session)[key] else { throw APIError.notFound("Install of \(key)") }
            let view = try await runtime.installs.get(install.id, by: session.principal)
            let version = form["version"] ?? ""
            let target = try await runtime.registry.catalogApp(key: key, for: session.principal).manifest
            // Only the settings the offered version adds come from this form.
            let added = target.version == version ? Self.addedFields(from: view.manifest, to: target) : []
            let (config, problems) = Self.config(from: form, schema: added, patch: false)
            let accepted = form["confirm_scopes"] == "on" ? form.all("accept_scopes") : []
            do {
                if !problems.isEmpty { throw APIError.fieldProblems(problems) }
                _ = try await runtime.installs.upgrade(install.id, to: version, acceptScopes: accepted, config: config,
                                                       by: .init(session.principal, requestID: context.requestID))
                return kit.redirect("/marketplace/\(Self.pathSegment(key))?done=upgraded")
            } catch let error as APIError where error.status == 409 || error.status == 422 {
                var model = try await appModel(key: key, session: session, context: context, upgradeEntered: form, upgradeProblems: error.errors,
                                               upgradeFailure: error.code == "scopes_not_accepted" ? nil : error.detail)
                model["flash"] = ["kind": "error", "text": "The app was not upgraded; see the Upgrade section."]
                return kit.page("app", title: target.name, context: context, status: HTTPResponse.Status(code: error.status), nav: "marketplace", model)
            }
        }
    }

    /// Config fields of `next` that `current` does not have.
    static func addedFields(from current: AppManifest, to next: AppManifest) -> [AppManifest.ConfigField] {
        let known = Set(current.config.map(\.key))
        return next.config.filter { !known.contains($0.key) }
    }

    /// The Upgrade section when `latest` is newer than the install's version, else nil.
    func upgradeModel(install: InstallRecord, current: AppManifest, latest: AppManifest, entered: FormData?,
                      problems: [APIError.FieldProblem], failure: String?) -> [String: Any]? {
        guard let from = Semver(install.version), let to = Semver(latest.version), to > from else { return nil }
        let granted = Set(install.scopes)
        let addedScopes = latest.scopes.filter { !granted.contains($0) }
        let byField = Dictionary(problems.map { ($0.field, $0.message) }, uniquingKeysWith: { a, _ in a })
        var model: [String: Any] = [
            "version": latest.version, "from": install.version,
            "addedScopes": addedScopes.map { ["name": $0, "words": runtime.capabilities.scopes[$0]?.summary ?? $0] },
            "hasAddedScopes": !addedScopes.isEmpty,
            "fields": Self.addedFields(from: current, to: latest).map { field in
                // Ids apart from the settings form's fields on the same page.
                var model = Self.fieldModel(field, entered: entered, problem: byField["config." + field.key])
                for name in ["id", "describedBy"] {
                    if let value = model[name] as? String { model[name] = value.replacingOccurrences(of: "config-", with: "upgrade-config-") }
                }
                return model
            },
            "open": failure != nil,
        ]
        if let failure { model["failure"] = failure }
        if byField["accept_scopes"] != nil { model["consentError"] = "Tick the box to allow the new permissions." }
        if entered?["confirm_scopes"] == "on" { model["confirmed"] = true }
        if latest.oauth != nil && current.oauth == nil { model["connectNote"] = "This version connects to \(latest.oauth?.provider ?? "an account"): connect it after upgrading." }
        return model
    }
}
