import Foundation
import HTTPTypes
import Hummingbird
import MercatoCore
import MercatoHTTP
import MercatoHooks
import MercatoStorage

/// `/installs` and the install actions of the app page: disable, enable, uninstall (with a
/// confirmation page). Through `InstallService`, as the API.
struct InstallPages {
    let runtime: MercatoRuntime
    let kit: PageKit

    func register(on pages: RouterGroup<AppRequestContext>) {
        pages.get("installs") { request, context in
            let session = try kit.requireSession(context, request: request)
            let (views, _) = try await runtime.installs.list(by: session.principal, cursor: nil, limit: 500)
            let rows: [[String: Any]] = views.filter { $0.install.status != .uninstalled }.map { view in
                ["name": view.manifest.name, "key": view.install.appKey, "path": MarketplacePages.pathSegment(view.install.appKey),
                 "version": view.install.version, "status": MarketplacePages.statusWords(view.install.status),
                 "statusClass": view.install.status.rawValue, "since": MarketplacePages.time(view.install.createdAt)]
            }
            return kit.page("installs", title: "Installs", context: context, nav: "installs", ["installs": rows, "empty": rows.isEmpty])
        }

        pages.post("marketplace/{key}/disable") { request, context in
            try await toggle(request: request, context: context, enabled: false)
        }
        pages.post("marketplace/{key}/enable") { request, context in
            try await toggle(request: request, context: context, enabled: true)
        }

        // A link, not a form: the answer redirects to the provider, which a form's CSP
        // (`form-action 'self'`) would stop. Starting a flow changes nothing until the provider
        // sends this browser back with the state it holds in its cookie.
        pages.get("marketplace/{key}/connect") { request, context in
            let session = try kit.requireSession(context, request: request)
            let key = try context.parameters.require("key")
            let install = try await liveInstall(key: key, session: session)
            let start = try await runtime.connectFlow.start(install.install.id, by: session.principal)
            var response = Response(status: .found, headers: [.location: start.location])
            response.headers.append(HTTPField(name: .setCookie, value: start.setCookie))
            return response
        }

        // The end of a connect flow started here (`/oauth/complete` sends a signed-in browser
        // on): the app page of the install, with the result as a flash. Another org's install
        // is a 404 page.
        pages.get("installs/{id}/connected") { request, context in
            let session = try kit.requireSession(context, request: request)
            let view = try await runtime.installs.get(try context.parameters.require("id"), by: session.principal)
            let query = request.uri.queryParameters
            let path = "/marketplace/\(MarketplacePages.pathSegment(view.install.appKey))"
            if query["result"] == "connected" { return kit.redirect(path + "?done=connected") }
            let code = query["error"].map(String.init).flatMap { ConnectFlow.flowErrors[$0] == nil ? nil : $0 } ?? "server_error"
            return kit.redirect(path + "?connect_error=" + code)
        }

        pages.post("marketplace/{key}/disconnect") { request, context in
            let session = try kit.requireSession(context, request: request)
            let key = try context.parameters.require("key")
            let install = try await liveInstall(key: key, session: session)
            _ = try await runtime.connectFlow.disconnect(install.install.id, by: .init(session.principal, requestID: context.requestID))
            return kit.redirect("/marketplace/\(MarketplacePages.pathSegment(key))?done=disconnected")
        }

        pages.get("marketplace/{key}/uninstall") { request, context in
            let session = try kit.requireSession(context, request: request)
            let key = try context.parameters.require("key")
            let install = try await liveInstall(key: key, session: session)
            // The confirmation asks for what only an admin may do (the POST's rule, InstallService's).
            _ = try session.principal.org(atLeast: .admin, to: "Installing and changing apps")
            return kit.page("uninstall", title: "Uninstall \(install.manifest.name)", context: context, nav: "marketplace",
                            ["name": install.manifest.name, "path": MarketplacePages.pathSegment(key)])
        }

        pages.post("marketplace/{key}/uninstall") { request, context in
            let session = try kit.requireSession(context, request: request)
            let key = try context.parameters.require("key")
            let install = try await liveInstall(key: key, session: session)
            try await runtime.installs.uninstall(install.install.id, by: .init(session.principal, requestID: context.requestID))
            return kit.redirect("/marketplace/\(MarketplacePages.pathSegment(key))?done=uninstalled")
        }
    }

    private func toggle(request: Request, context: AppRequestContext, enabled: Bool) async throws -> Response {
        let session = try kit.requireSession(context, request: request)
        let key = try context.parameters.require("key")
        let install = try await liveInstall(key: key, session: session)
        _ = try await runtime.installs.setEnabled(install.install.id, enabled, by: .init(session.principal, requestID: context.requestID))
        return kit.redirect("/marketplace/\(MarketplacePages.pathSegment(key))?done=\(enabled ? "enabled" : "disabled")")
    }

    /// The org's live install of `key`; 404 when there is none (or the app is another org's draft).
    private func liveInstall(key: String, session: BrowserSession) async throws -> InstallService.View {
        _ = try await runtime.registry.catalogApp(key: key, for: session.principal)
        let (views, _) = try await runtime.installs.list(by: session.principal, cursor: nil, limit: 500)
        guard let view = views.first(where: { $0.install.appKey == key && $0.install.status != .uninstalled }) else {
            throw APIError.notFound("Install of \(key)")
        }
        return view
    }
}
