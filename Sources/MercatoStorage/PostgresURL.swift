import Foundation
import PostgresNIO

/// Reads `DATABASE_URL` (`postgres://user:password@host:port/database?sslmode=disable|prefer|require`).
enum PostgresURL {
    /// What the URL names.
    struct Parts {
        enum Endpoint {
            case tcp(host: String, port: Int)
            case socket(path: String)
        }
        enum TLSMode { case disable, prefer, require }
        var endpoint: Endpoint
        var user: String
        var password: String?
        var database: String?
        var tls: TLSMode
    }

    static func parts(_ text: String) throws -> Parts {
        guard let url = URLComponents(string: text), let scheme = url.scheme, ["postgres", "postgresql"].contains(scheme) else {
            throw StorageError("DATABASE_URL must look like postgres://user:password@host:5432/database")
        }
        guard let user = url.user, !user.isEmpty else { throw StorageError("DATABASE_URL names no user") }
        let database = url.path.hasPrefix("/") ? String(url.path.dropFirst()) : url.path
        let sslmode = url.queryItems?.first(where: { $0.name == "sslmode" })?.value ?? "disable"
        let tls: Parts.TLSMode
        switch sslmode {
        case "disable": tls = .disable
        case "prefer", "allow": tls = .prefer
        case "require", "verify-ca", "verify-full": tls = .require
        default: throw StorageError("DATABASE_URL sslmode \(sslmode) is not one of disable, prefer, require")
        }
        let password = url.password?.removingPercentEncoding
        if let socketDir = url.queryItems?.first(where: { $0.name == "host" })?.value, socketDir.hasPrefix("/") {
            return Parts(endpoint: .socket(path: "\(socketDir)/.s.PGSQL.\(url.port ?? 5432)"), user: user, password: password,
                         database: database.isEmpty ? nil : database, tls: .disable)
        }
        return Parts(endpoint: .tcp(host: url.host ?? "127.0.0.1", port: url.port ?? 5432), user: user.removingPercentEncoding ?? user,
                     password: password, database: database.isEmpty ? nil : database, tls: tls)
    }

    /// The pool's configuration.
    static func parse(_ text: String) throws -> PostgresClient.Configuration {
        let parts = try parts(text)
        switch parts.endpoint {
        case .socket(let path):
            return .init(unixSocketPath: path, username: parts.user, password: parts.password, database: parts.database)
        case .tcp(let host, let port):
            let tls: PostgresClient.Configuration.TLS = switch parts.tls {
            case .disable: .disable
            case .prefer: .prefer(.makeClientConfiguration())
            case .require: .require(.makeClientConfiguration())
            }
            return .init(host: host, port: port, username: parts.user, password: parts.password, database: parts.database, tls: tls)
        }
    }

    /// One connection's configuration, for telling why the pool gets none.
    static func connection(_ text: String) throws -> PostgresConnection.Configuration {
        let parts = try parts(text)
        switch parts.endpoint {
        case .socket(let path):
            return .init(unixSocketPath: path, username: parts.user, password: parts.password, database: parts.database)
        case .tcp(let host, let port):
            let tls: PostgresConnection.Configuration.TLS = switch parts.tls {
            case .disable: .disable
            case .prefer: .prefer(try .init(configuration: .makeClientConfiguration()))
            case .require: .require(try .init(configuration: .makeClientConfiguration()))
            }
            return .init(host: host, port: port, username: parts.user, password: parts.password, database: parts.database, tls: tls)
        }
    }

    /// The URL with its password replaced, for messages.
    static func redacted(_ text: String) -> String {
        guard var url = URLComponents(string: text) else { return "(unparsable URL)" }
        if url.password != nil { url.password = "********" }
        return url.string ?? "(unparsable URL)"
    }
}

import NIOSSL
