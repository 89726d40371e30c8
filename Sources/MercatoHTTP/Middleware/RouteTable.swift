import HTTPTypes
import Hummingbird
import Synchronization

/// The registered routes as (method, path template), so that a path that exists under another
/// method answers 405 with `Allow` instead of 404.
final class RouteTable: Sendable {
    private let routes = Mutex<[(method: HTTPRequest.Method, segments: [Substring])]>([])

    func load(_ descriptions: [Router<AppRequestContext>.RouteDescription]) {
        let parsed = descriptions.map { (method: $0.method, segments: Self.segments(of: $0.path.description)) }
        routes.withLock { $0 = parsed }
    }

    /// Methods registered for a concrete request path.
    func methods(matching path: String) -> [HTTPRequest.Method] {
        let target = Self.segments(of: path)
        return routes.withLock { routes in
            routes.filter { route in
                route.segments.count == target.count
                    && zip(route.segments, target).allSatisfy { pattern, value in
                        pattern == value || pattern.hasPrefix(":") || pattern.hasPrefix("{") || pattern == "*"
                    }
            }.map(\.method)
        }
    }

    private static func segments(of path: String) -> [Substring] {
        path.split(separator: "/", omittingEmptySubsequences: true)
    }
}
