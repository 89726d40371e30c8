import Foundation
import PostgresNIO

/// Reads `DATABASE_URL` (`postgres://user:password@host:port/database?sslmode=disable|prefer|require`).
enum PostgresURL {
    static func parse(_ text: String) throws -> PostgresClient.Configuration {
        guard let url = URLComponents(string: text), let scheme = url.scheme, ["postgres", "postgresql"].contains(scheme) else {
            throw StorageError("DATABASE_URL must look like postgres://user:password@host:5432/database")
        }
        guard let user = url.user, !user.isEmpty else { throw StorageError("DATABASE_URL names no user") }
        let database = url.path.hasPrefix("/") ? String(url.path.dropFirst()) : url.path
        let sslmode = url.queryItems?.first(where: { $0.name == "sslmode" })?.value ?? "disable"
        let tls: PostgresClient.Configuration.TLS
        switch sslmode {
        case "disable": tls = .disable
        case "prefer", "allow": tls = .prefer(.makeClientConfiguration())
        case "require", "verify-ca", "verify-full": tls = .require(.makeClientConfiguration())
        default: throw StorageError("DATABASE_URL sslmode \(sslmode) is not one of disable, prefer, require")
        }
        if let socketDir = url.queryItems?.first(where: { $0.name == "host" })?.value, socketDir.hasPrefix("/") {
            let port = url.port ?? 5432
            return .init(unixSocketPath: "\(socketDir)/.s.PGSQL.\(port)", username: user, password: url.password?.removingPercentEncoding, database: database.isEmpty ? nil : database)
        }
        return .init(
            host: url.host ?? "127.0.0.1",
            port: url.port ?? 5432,
            username: user.removingPercentEncoding ?? user,
            password: url.password?.removingPercentEncoding,
            database: database.isEmpty ? nil : database,
            tls: tls
        )
    }

    /// The URL with its password replaced, for messages.
    static func redacted(_ text: String) -> String {
        guard var url = URLComponents(string: text) else { return "(unparsable URL)" }
        if url.password != nil { url.password = "********" }
        return url.string ?? "(unparsable URL)"
    }
}

import NIOSSL
