public import Hummingbird
public import Logging
public import MercatoCore
public import MercatoHTTP
import NIOCore

/// The browser pages (CONTRACT §8), mounted beside the API on the same router:
/// `buildApplication(runtime:metrics:logger:pages: try WebPages(runtime: runtime, logger: logger).register)`.
public struct WebPages: Sendable {
    let runtime: MercatoRuntime
    let kit: PageKit
    let statics: StaticFiles

    /// Loads the templates and static files (a missing resource fails here, at start).
    public init(runtime: MercatoRuntime, logger: Logger) throws {
        self.runtime = runtime
        self.kit = PageKit(renderer: try PageRenderer(), settings: runtime.settings, logger: logger)
        self.statics = try StaticFiles()
    }

    /// Adds every page to `router`.
    public func register(on router: Router<AppRequestContext>) {
        let pages = router.group().add(middleware: PageMiddleware(people: runtime.people, pages: kit))
        for (name, file) in statics.files {
            pages.get("static/\(name)") { _, _ in
                Response(status: .ok, headers: [.contentType: file.type, .cacheControl: "public, max-age=300"],
                         body: .init(byteBuffer: ByteBuffer(string: file.body)))
            }
        }
        pages.get("/") { _, context in
            kit.redirect(context.browser == nil ? "/login" : "/marketplace")
        }
        SessionPages(people: runtime.people, kit: kit).register(on: pages)
        EmbeddedSignInPages(people: runtime.people, kit: kit, secret: runtime.settings.ssoSecret,
                            publicKey: runtime.settings.ssoPublicKey).register(on: pages)
        MarketplacePages(runtime: runtime, kit: kit).register(on: pages)
        InstallPages(runtime: runtime, kit: kit).register(on: pages)
        NotificationPages(runtime: runtime, kit: kit).register(on: pages)
        DeveloperPages(runtime: runtime, kit: kit).register(on: pages)
        TokenPages(runtime: runtime, kit: kit).register(on: pages)
        WebhookPages(runtime: runtime, kit: kit).register(on: pages)
        AuditPages(runtime: runtime, kit: kit).register(on: pages)
        DeveloperDocsPages(kit: kit, publicURL: runtime.settings.publicURL).register(on: pages)
    }
}
