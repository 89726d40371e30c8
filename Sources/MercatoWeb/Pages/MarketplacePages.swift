import Foundation
import Hummingbird
import MercatoCore
import MercatoHTTP
import MercatoHooks
import MercatoStorage

/// `/marketplace` (the catalog) and `/marketplace/{key}` (one app: install form, or the
/// install's status, actions and command log). Every read and change goes through the services
/// the API uses (`RegistryService`, `InstallService`, `CommandLogService`).
struct MarketplacePages {
    let runtime: MercatoRuntime
    let kit: PageKit

    /// The label of the secret field (its key) the provider's signing secret goes in.
    static func inboundSecretLabel(_ view: InstallService.View, field: String?) -> String {
        guard let field else { return "" }
        return view.manifest.config.first(where: { $0.key == field })?.label ?? field
    }

    /// Who sends a scheme's webhooks, where its receiving URL goes and which of its secrets the
    /// install needs, in the words an org admin finds in that provider's dashboard (not the
    /// scheme's code, `standard-webhooks`).
    static func inboundSender(_ provider: String) -> (name: String, settings: String, secret: String) {
        switch provider {
        case "github": ("GitHub webhooks", "the repository's (or organization's) webhook settings on GitHub", "the secret you set there")
        case "phonepe": ("PhonePe callbacks", "the callbackUrl of your PhonePe payment requests", "the salt key PhonePe issued you")
        case "razorpay": ("Razorpay webhooks", "a webhook in Razorpay's Dashboard", "the secret you set there")
        case "shopify": ("Shopify webhooks", "Shopify's webhook settings", "the signing secret Shopify shows there")
        case "slack": ("Slack events", "your Slack app's Event Subscriptions Request URL", "the app's Signing Secret (on its Basic Information page)")
        case "stripe": ("Stripe webhooks", "a webhook endpoint in Stripe's Dashboard", "the endpoint's signing secret")
        case "standard-webhooks": ("Standard Webhooks events (Clerk, Svix, Resend)", "the webhook settings of the service that sends them (Clerk, Svix, Resend or any other that signs with Standard Webhooks)",
                                   "the endpoint's signing secret (whsec_...)")
        default: ("\(provider) webhooks", "\(provider)'s webhook settings", "its signing secret")
        }
    }

    /// What the receiving URL last got (`GET /api/v1/inbound/{install_id}`, the Inbound
    /// plugin's route, called as the API calls it), by provider; `nil` when no plugin serves it
    /// or it could not answer (the page then says nothing of it rather than fail).
    func inboundStatus(_ install: String, session: BrowserSession, context: AppRequestContext) async -> [String: [String: JSONValue]]? {
        let calls = PluginRouteCall(runtime: runtime)
        guard let route = calls.route(.get, "inbound/{install_id}"),
              case .json(let value, _)? = try? await calls.call(plugin: route.plugin, route.definition, caller: session.principal,
                                                                parameters: ["install_id": install], query: [:], body: nil,
                                                                requestID: context.requestID, logger: context.logger) else { return nil }
        var byProvider: [String: [String: JSONValue]] = [:]
        for item in value.objectValue?["data"]?.arrayValue ?? [] {
            guard let object = item.objectValue, let provider = object["provider"]?.stringValue else { continue }
            byProvider[provider] = object
        }
        return byProvider
    }

    /// The page's lines for one provider's last event and last refusal: the refusal only when
    /// it came after the last event (an old mistake since put right is not news). Nothing when
    /// the notes could not be read.
    static func inboundLastGot(_ notes: [String: [String: JSONValue]]?, provider: String) -> [String: Any] {
        guard let notes else { return [:] }
        let status = notes[provider]
        let received = status?["last_received"]?.objectValue
        let refused = status?["last_refused"]?.objectValue
        var model: [String: Any] = [:]
        if let received, let at = received["at"]?.stringValue {
            model["received"] = ["at": Self.shownTime(at), "type": received["event_type"]?.stringValue.map { $0 as Any } ?? false]
        } else {
            model["noneReceived"] = true
        }
        if let refused, let at = refused["at"]?.stringValue, at > (received?["at"]?.stringValue ?? "") {
            model["refused"] = ["at": Self.shownTime(at), "code": refused["code"]?.stringValue ?? "", "detail": refused["detail"]?.stringValue ?? ""]
        }
        return model
    }

    /// `2026-12-02T14:05:09.123Z` as the page shows times (`2026-12-02 14:05:09 UTC`).
    static func shownTime(_ timestamp: String) -> String {
        guard timestamp.count >= 19 else { return timestamp }
        return timestamp.prefix(10) + " " + timestamp.dropFirst(11).prefix(8) + " UTC"
    }

    /// Why an install that is not active receives nothing at its receiving URL (`nil`: it is active).
    static func inboundPaused(_ status: InstallStatus) -> String? {
        switch status {
        case .active, .uninstalled: nil
        case .disabled: "Not receiving while the app is disabled: requests to this URL are refused until you enable it."
        case .pendingOAuth: "Not receiving until an account is connected: requests to this URL are refused until then."
        }
    }

    static let flashes: [String: String] = [
        "welcome": "Welcome! You are signed in.",
        "installed": "The app is installed.",
        "disabled": "The app is disabled: its commands are refused until you enable it.",
        "enabled": "The app is enabled again.",
        "uninstalled": "The app is uninstalled; its configuration was deleted.",
        "disconnected": "The account is disconnected; the app waits until you connect one again.",
        "connected": "The account is connected.",
        "installed-connect": "The app is installed. Connect an account to start using it.",
        "configured": "Settings saved.",
        "upgraded": "The app is upgraded to its latest version.",
    ]

    func register(on pages: RouterGroup<AppRequestContext>) {
        registerConfig(on: pages)
        registerUpgrade(on: pages)
        pages.get("marketplace") { request, context in
            let session = try kit.requireSession(context, request: request)
            let query = request.uri.queryParameters
            let q = query["q"].map(String.init)?.trimmingCharacters(in: .whitespaces) ?? ""
            let category = query["category"].map(String.init) ?? ""
            let cursor = query["cursor"].map(String.init)
            let page = try await runtime.registry.catalog(for: session.principal, query: q.isEmpty ? nil : q,
                                                          category: category.isEmpty ? nil : category, cursor: cursor, limit: 24)
            let everything = try await runtime.registry.catalog(for: session.principal, query: nil, category: nil, cursor: nil, limit: 200)
            let categories = Set(everything.entries.flatMap(\.manifest.categories)).sorted()
            let installed = try await liveInstalls(session)
            let apps: [[String: Any]] = page.entries.map { entry in
                var app: [String: Any] = [
                    "key": entry.app.key, "name": entry.manifest.name, "summary": Self.summary(entry.manifest.description),
                    "developer": entry.manifest.developer.name, "plan": entry.manifest.plan.rawValue,
                ]
                if entry.manifest.plan != .free { app["paidPlan"] = true }
                if let install = installed[entry.app.key] { app["installed"] = true; app["installStatus"] = Self.statusWords(install.status) }
                if entry.app.status != "published" { app["draft"] = entry.app.status }
                if !entry.installable { app["unavailable"] = entry.notInstallableReason ?? "Not available" }
                return app
            }
            var model: [String: Any] = [
                "q": q, "apps": apps, "empty": apps.isEmpty,
                "categories": categories.map { ["name": $0, "selected": $0 == category] },
            ]
            if let next = page.nextCursor {
                model["nextURL"] = "/marketplace?" + Self.query(["q": q, "category": category, "cursor": next])
            }
            if let done = query["done"].map(String.init), let text = Self.flashes[done] { model["flash"] = ["kind": "ok", "text": text] }
            return kit.page("marketplace", title: "Marketplace", context: context, nav: "marketplace", model)
        }

        pages.get("marketplace/{key}") { request, context in
            let session = try kit.requireSession(context, request: request)
            let key = try context.parameters.require("key")
            var model = try await appModel(key: key, session: session, context: context)
            if let done = request.uri.queryParameters["done"].map(String.init), let text = Self.flashes[done] {
                model["flash"] = ["kind": "ok", "text": text]
            } else if let code = request.uri.queryParameters["connect_error"].map(String.init), let text = ConnectFlow.flowErrors[code] {
                model["flash"] = ["kind": "error", "text": text]
            }
            return kit.page("app", title: model["name"] as? String ?? key, context: context, nav: "marketplace", model)
        }

        pages.post("marketplace/{key}/install") { request, context in
            let session = try kit.requireSession(context, request: request)
            let key = try context.parameters.require("key")
            var request = request
            let form = FormData(buffer: try await request.collectBody(upTo: PageMiddleware.maxFormSize))
            let entry = try await runtime.registry.catalogApp(key: key, for: session.principal)
            let (config, problems) = Self.config(from: form, schema: entry.manifest.config, patch: false)
            do {
                if !problems.isEmpty { throw APIError.fieldProblems(problems) }
                let made = try await runtime.installs.install(appKey: key, version: nil, config: config,
                                                              by: .init(session.principal, requestID: context.requestID))
                let done = made.install.status == .pendingOAuth ? "installed-connect" : "installed"
                return kit.redirect("/marketplace/\(Self.pathSegment(key))?done=\(done)")
            } catch let error as APIError where !error.errors.isEmpty || error.status == 409 || error.status == 403 && error.code != "forbidden" {
                var model = try await appModel(key: key, session: session, context: context, entered: form, problems: error.errors)
                if error.errors.isEmpty { model["flash"] = ["kind": "error", "text": error.detail] }
                else { model["flash"] = ["kind": "error", "text": "Some fields need your attention."] }
                return kit.page("app", title: entry.manifest.name, context: context, status: HTTPResponse.Status(code: error.status),
                                nav: "marketplace", model)
            }
        }
    }

    func registerConfig(on pages: RouterGroup<AppRequestContext>) {
        pages.post("marketplace/{key}/config") { request, context in
            let session = try kit.requireSession(context, request: request)
            let key = try context.parameters.require("key")
            var request = request
            let form = FormData(buffer: try await request.collectBody(upTo: PageMiddleware.maxFormSize))
            guard let install = try await liveInstalls(session)[key] else { throw APIError.notFound("Install of \(key)") }
            let view = try await runtime.installs.get(install.id, by: session.principal)
            let (patch, problems) = Self.config(from: form, schema: view.manifest.config, patch: true)
            do {
                if !problems.isEmpty { throw APIError.fieldProblems(problems) }
                _ = try await runtime.installs.patchConfig(install.id, patch: patch, by: .init(session.principal, requestID: context.requestID))
                return kit.redirect("/marketplace/\(Self.pathSegment(key))?done=configured")
            } catch let error as APIError where !error.errors.isEmpty {
                var model = try await appModel(key: key, session: session, context: context, entered: form, problems: error.errors)
                model["flash"] = ["kind": "error", "text": "Some settings need your attention; nothing was changed."]
                return kit.page("app", title: view.manifest.name, context: context, status: HTTPResponse.Status(code: error.status),
                                nav: "marketplace", model)
            }
        }
    }

    /// The org's live installs by app key.
    func liveInstalls(_ session: BrowserSession) async throws -> [String: InstallRecord] {
        let (views, _) = try await runtime.installs.list(by: session.principal, cursor: nil, limit: 500)
        var byKey: [String: InstallRecord] = [:]
        for view in views where view.install.status != .uninstalled { byKey[view.install.appKey] = view.install }
        return byKey
    }

    /// The app page's model: the app, and either the install form (admin+) or the install.
    func appModel(key: String, session: BrowserSession, context: AppRequestContext, entered: FormData? = nil, problems: [APIError.FieldProblem] = [],
                  upgradeEntered: FormData? = nil, upgradeProblems: [APIError.FieldProblem] = [], upgradeFailure: String? = nil) async throws -> [String: Any] {
        let entry = try await runtime.registry.catalogApp(key: key, for: session.principal)
        let manifest = entry.manifest
        var model: [String: Any] = [
            "key": entry.app.key, "path": Self.pathSegment(entry.app.key), "name": manifest.name, "description": manifest.description,
            "developer": manifest.developer.name, "version": manifest.version, "plan": manifest.plan.rawValue,
            "categories": manifest.categories,
            "scopes": manifest.scopes.map { ["name": $0, "words": runtime.capabilities.scopes[$0]?.summary ?? $0] },
            "hasScopes": !manifest.scopes.isEmpty,
            "events": manifest.events, "hasEvents": !manifest.events.isEmpty,
        ]
        if let url = manifest.developer.url, url.lowercased().hasPrefix("https://") || url.lowercased().hasPrefix("http://") {
            model["developerURL"] = url
        }
        let isAdmin = session.role >= .admin
        if let install = try await liveInstalls(session)[key] {
            var installModel: [String: Any] = [
                "id": install.id, "version": install.version, "status": Self.statusWords(install.status),
                "statusClass": install.status.rawValue, "canToggle": isAdmin && install.status != .pendingOAuth,
            ]
            if install.status == .disabled { installModel["isDisabled"] = true }
            installModel["isAdmin"] = isAdmin
            // The command log is an admin's read (as `GET /api/v1/installs/{id}/commands`): a member sees the page without it.
            if isAdmin {
                let (records, _) = try await runtime.commandLog.forInstall(install.id, by: session.principal, filter: try CommandLogFilter(query: [:]),
                                                                           cursor: nil, limit: 25)
                installModel["commands"] = records.map { record -> [String: Any] in
                    ["command": record.command, "outcome": record.outcome, "status": record.httpStatus,
                     "ok": record.httpStatus < 300, "at": Self.time(record.createdAt), "webhookID": record.webhookId]
                }
                installModel["noCommands"] = records.isEmpty
            }
            if let oauth = manifest.oauth, isAdmin {
                installModel["connection"] = try await connectionModel(install: install, provider: oauth.provider, session: session)
            }
            if isAdmin {
                // The install's own version's schema, filled with its values (secrets never).
                let view = try await runtime.installs.get(install.id, by: session.principal)
                let receiving = InstallService.inboundURLs(of: view, publicURL: runtime.settings.publicURL)
                if !receiving.isEmpty {
                    let lastGot = await inboundStatus(install.id, session: session, context: context)
                    installModel["inbound"] = receiving.map { entry in
                        let sender = Self.inboundSender(entry.provider)
                        let field = view.manifest.inbound?.first(where: { $0.provider == entry.provider })?.secretField
                        var model: [String: Any] = [
                            "provider": entry.provider, "sender": sender.name, "settings": sender.settings, "secret": sender.secret, "url": entry.url,
                            "secretField": Self.inboundSecretLabel(view, field: field),
                            // Without its secret nothing sent here verifies: say so where the URL is.
                            "waiting": field.map { !view.install.configKeys.contains($0) } ?? true,
                            "paused": Self.inboundPaused(install.status).map { $0 as Any } ?? false,
                        ]
                        model.merge(Self.inboundLastGot(lastGot, provider: entry.provider), uniquingKeysWith: { _, new in new })
                        return model
                    }
                }
                installModel["upgrade"] = upgradeModel(install: install, current: view.manifest, latest: manifest, entered: upgradeEntered,
                                                       problems: upgradeProblems, failure: upgradeFailure)
                let current = FormData(values: Self.formValues(view.config, schema: view.manifest.config))
                let byField = Dictionary(problems.map { ($0.field, $0.message) }, uniquingKeysWith: { a, _ in a })
                if !view.manifest.config.isEmpty {
                    installModel["configForm"] = ["fields": view.manifest.config.map { field in
                        Self.fieldModel(field, entered: entered ?? current, problem: byField["config." + field.key], keepsSecret: true)
                    }, "open": !problems.isEmpty]
                }
            }
            model["install"] = installModel
        } else if isAdmin, entry.installable {
            let byField = Dictionary(problems.map { ($0.field, $0.message) }, uniquingKeysWith: { a, _ in a })
            model["installForm"] = ["fields": manifest.config.map { field in Self.fieldModel(field, entered: entered, problem: byField["config." + field.key]) },
                                    "hasFields": !manifest.config.isEmpty]
        } else if !entry.installable {
            model["unavailable"] = entry.notInstallableReason ?? "This app cannot be installed."
        } else {
            model["askAdmin"] = true
        }
        return model
    }

    /// The connected-account badge: provider, account, status, token expiry (never a token).
    func connectionModel(install: InstallRecord, provider: String, session: BrowserSession) async throws -> [String: Any] {
        let view = try await runtime.connectFlow.connection(install.id, by: session.principal)
        // The provider's display name as the operator set it (its key when it is not defined).
        let providerName = try await runtime.providers.list(by: session.principal).first { $0.definition.key == view.provider }?.definition.name
        var model: [String: Any] = ["provider": providerName ?? view.provider, "statusClass": view.status]
        switch view.status {
        case "connected": model["status"] = "Connected"; model["connected"] = true
        case "needs_reconnect": model["status"] = "Needs to be connected again"; model["connected"] = true
        default: model["status"] = "Not connected"
        }
        if let record = view.record {
            model["account"] = record.accountName ?? record.accountId ?? "an account"
            if record.accountName != nil, let id = record.accountId { model["accountID"] = id }
            if let expires = record.expiresAt { model["expires"] = Self.time(expires) }
            if let error = record.lastError { model["lastError"] = error }
        }
        model["canConnect"] = install.status != .disabled
        return model
    }

    /// One config field as the form shows it: the manifest's label and help, the right input
    /// for its type, the value typed so far (never a secret's), the problem beside it.
    static func fieldModel(_ field: AppManifest.ConfigField, entered: FormData?, problem: String?, keepsSecret: Bool = false) -> [String: Any] {
        let id = "config-" + field.key.map { $0.isLetter || $0.isNumber ? String($0) : "-" }.joined()
        var model: [String: Any] = ["name": "config." + field.key, "id": id, "label": field.label, "required": field.required && !(keepsSecret && field.isSecret)]
        let keepNote = keepsSecret && field.isSecret ? "Leave empty to keep the current value." : nil
        let help = [field.help, keepNote].compactMap { $0 }.joined(separator: " ")
        if !help.isEmpty { model["help"] = help }
        if let problem { model["error"] = problem }
        let described = [help.isEmpty ? nil : id + "-help", problem.map { _ in id + "-error" }].compactMap { $0 }
        if !described.isEmpty { model["describedBy"] = described.joined(separator: " ") }
        let typed = entered?["config." + field.key]
        let initial: String = typed ?? {
            switch field.default {
            case .string(let s)?: return s
            case .number(let n)?: return n == n.rounded() && abs(n) < 1e15 ? String(Int64(n)) : String(n)
            case .bool(let b)?: return b ? "on" : ""
            default: return ""
            }
        }()
        switch field.type {
        case "text": model["isTextarea"] = true; model["value"] = initial
        case "boolean": model["isCheckbox"] = true; model["checked"] = entered == nil ? initial == "on" : typed == "on"
        case "enum":
            model["isSelect"] = true
            model["options"] = (field.options ?? []).map { ["value": $0, "selected": $0 == initial] }
        case "secret": model["isInput"] = true; model["inputType"] = "password"; model["value"] = ""; model["isPassword"] = true
        case "number": model["isInput"] = true; model["inputType"] = "number"; model["value"] = initial; model["step"] = "any"
        case "url": model["isInput"] = true; model["inputType"] = "url"; model["value"] = initial
        default: model["isInput"] = true; model["inputType"] = "text"; model["value"] = initial
        }
        return model
    }

    /// An install's config as the form's fields would send it (secret fields left out).
    static func formValues(_ config: [String: JSONValue], schema: [AppManifest.ConfigField]) -> [String: String] {
        var values: [String: String] = [:]
        for field in schema where !field.isSecret {
            switch config[field.key] {
            case .string(let text)?: values["config." + field.key] = text
            case .number(let n)?: values["config." + field.key] = n == n.rounded() && abs(n) < 1e15 ? String(Int64(n)) : String(n)
            case .bool(true)?: values["config." + field.key] = "on"
            default: break
            }
        }
        return values
    }

    /// The config a form sends: `patch` keeps a secret left empty and clears other empty fields;
    /// a new install leaves empty fields out (defaults apply).
    static func config(from form: FormData, schema: [AppManifest.ConfigField], patch: Bool) -> ([String: JSONValue], [APIError.FieldProblem]) {
        var config: [String: JSONValue] = [:]
        var problems: [APIError.FieldProblem] = []
        for field in schema {
            let text = form["config." + field.key] ?? ""
            switch field.type {
            case "boolean":
                config[field.key] = .bool(text == "on" || text == "true")
            case "number":
                if text.trimmingCharacters(in: .whitespaces).isEmpty { if patch { config[field.key] = .null }; continue }
                if let number = Double(text.trimmingCharacters(in: .whitespaces)) { config[field.key] = .number(number) }
                else { problems.append(.init(field: "config." + field.key, message: "must be a number")) }
            default:
                if !text.isEmpty { config[field.key] = .string(text) }
                else if patch && !field.isSecret { config[field.key] = .null }
            }
        }
        return (config, problems)
    }

    static func statusWords(_ status: InstallStatus) -> String {
        switch status {
        case .active: "Active"
        case .disabled: "Disabled"
        case .pendingOAuth: "Waiting for an account connection"
        case .uninstalled: "Uninstalled"
        }
    }

    /// The first sentence (or 160 characters) of a description, for the grid.
    static func summary(_ text: String) -> String {
        let line = text.split(separator: "\n").first.map(String.init) ?? ""
        return line.count > 160 ? String(line.prefix(157)) + "…" : line
    }

    /// `2026-12-02 14:05 UTC`: short enough for a table cell, unambiguous.
    static func time(_ millis: Int64) -> String {
        let text = Date(timeIntervalSince1970: Double(millis) / 1000).ISO8601Format()   // 2026-12-02T14:05:09Z
        return text.prefix(10) + " " + text.dropFirst(11).prefix(8) + " UTC"
    }

    static func pathSegment(_ key: String) -> String {
        key.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? key
    }

    static func query(_ items: [String: String]) -> String {
        items.filter { !$0.value.isEmpty }.sorted { $0.key < $1.key }
            .map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" }
            .joined(separator: "&")
    }
}
