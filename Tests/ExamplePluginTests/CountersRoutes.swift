import MercatoHooks

extension CountersPlugin {
    /// `GET /api/v1/counters/milestones`: the milestones of every install of the caller's org,
    /// newest first, `limit` (1-200, default 50) a page; `after` takes the previous page's `next`.
    func handleRoute(_ request: RouteRequest, _ context: OrgContext) async throws -> RouteResponse {
        guard request.route == "counters/milestones" else { throw CommandError.notFound("No route `\(request.route)`.") }
        let limit = try PluginSupport.pageLimit(request.query["limit"])
        let page = try await context.storage.entries(prefix: "milestone_", after: request.query["after"], limit: limit, newestFirst: true)
        let items = page.map { entry -> JSONValue in
            var item = entry.value.value.objectValue ?? [:]
            item["install_id"] = entry.installID.map { .string($0) } ?? .null
            return .object(item)
        }
        let next: JSONValue = page.count == limit ? .string(page[page.count - 1].key) : .null
        return .json(["items": .array(items), "next": next])
    }
}
