import Hummingbird
import MercatoCore

/// `GET /api/v1/apps` and `GET /api/v1/apps/{key}`: the catalog an org's members browse.
struct CatalogRoutes {
    let registry: RegistryService

    func register(on api: RouterGroup<AppRequestContext>) {
        api.get("apps") { request, context in
            let caller = try context.requirePrincipal()
            let page = try Pagination(request)
            let query = request.uri.queryParameters
            let q = query["q"].map(String.init)
            if let q, q.count > 200 {
                throw APIError.invalidRequest("`q` must be at most 200 characters.", errors: [.init(field: "q", message: "is too long")])
            }
            let category = query["category"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
            let (entries, next) = try await registry.catalog(for: caller, query: q, category: category, cursor: page.cursor, limit: page.limit)
            return Page(data: entries.map(CatalogItem.init), nextCursor: next)
        }
        api.get("apps/{key}") { _, context in
            let caller = try context.requirePrincipal()
            return CatalogItem(entry: try await registry.catalogApp(key: try context.parameters.require("key"), for: caller))
        }
    }
}
