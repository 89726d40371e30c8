import ArgumentParser
import AsyncHTTPClient
import Foundation
import MercatoHooks
import NIOCore
import NIOHTTP1

/// `mercato app tail`: the app's deliveries and commands as they happen.
struct AppTail: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tail",
        abstract: "Follow an app's event deliveries and commands live, one line each, with a status column.",
        discussion: """
            Reads GET /api/v1/developer/apps/{key}/deliveries and /commands with a token of the app's
            developer org (--token or MERCATO_TOKEN) every --interval seconds and prints what is new, and
            a delivery again when its status changes. Stop with Ctrl-C; --once prints the current rows
            and exits.

            Example:
              MERCATO_TOKEN=mct_… mercato app tail --app hello-app --url http://127.0.0.1:8080
              # 10:02:11  delivery  delivered  app.installed      msg_01jd…  ins_01jd…  1 attempt, HTTP 204
              # 10:02:14  command   succeeded  kv.set             cmd_01jd…  ins_01jd…  HTTP 200, 3.1 ms
            """
    )

    @Option(help: "The app's key.")
    var app: String

    @Option(help: "The server's base URL (default: MERCATO_URL or http://127.0.0.1:8080).")
    var url: String?

    @Option(help: "An API token of the app's developer org (default: MERCATO_TOKEN).")
    var token: String?

    @Option(help: "Seconds between two reads.")
    var interval: Double = 1

    @Flag(help: "Print the current rows once and exit.")
    var once = false

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        guard let token = token ?? environment["MERCATO_TOKEN"], !token.isEmpty else { throw ValidationError("give --token or set MERCATO_TOKEN") }
        let base = (url ?? environment["MERCATO_URL"] ?? "http://127.0.0.1:8080").trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        var shown: [String: String] = [:]
        print(Self.columns("TIME", "KIND", "STATUS", "WHAT", "ID", "INSTALL", "DETAIL"))
        while true {
            var rows: [(time: String, line: String, key: String, state: String)] = []
            for row in try await list(base + "/api/v1/developer/apps/\(app)/deliveries?limit=50", token: token) {
                let status = row.text("status")
                let code = row.int("last_status_code").map { ", HTTP \($0)" } ?? ""
                let attempts = row.int("attempts") ?? 0
                let detail = "\(attempts) attempt\(attempts == 1 ? "" : "s")\(code)" + (row.text("last_error").isEmpty ? "" : ", \(row.text("last_error"))")
                rows.append((row.text("created_at"), Self.columns(Self.clock(row.text("created_at")), "delivery", status, row.text("type"), row.text("id"),
                                                                  row.text("install_id"), detail), "d" + row.text("id"), status + detail))
            }
            for row in try await list(base + "/api/v1/developer/apps/\(app)/commands?limit=50", token: token) {
                let duration = row.double("duration_ms").map { String(format: "%.1f ms", $0) } ?? ""
                rows.append((row.text("created_at"), Self.columns(Self.clock(row.text("created_at")), "command", row.text("outcome"), row.text("command"),
                                                                  row.text("id"), row.text("install_id"), "HTTP \(row.int("http_status") ?? 0), \(duration)"),
                             "c" + row.text("id"), row.text("outcome")))
            }
            for row in rows.sorted(by: { ($0.time, $0.key) < ($1.time, $1.key) }) where shown[row.key] != row.state {
                shown[row.key] = row.state
                print(row.line)
            }
            if once { return }
            try await Task.sleep(for: .milliseconds(Int(max(interval, 0.2) * 1000)))
        }
    }

    /// The `data` rows of a list answer; a refusal stops with its problem.
    func list(_ url: String, token: String) async throws -> [[String: JSONValue]] {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        let response: HTTPClientResponse
        do { response = try await HTTPClient.shared.execute(request, timeout: .seconds(30)) } catch {
            throw ValidationError("could not reach \(url): \(error)")
        }
        let body = Data(try await response.body.collect(upTo: 8 << 20).readableBytesView)
        let answer = CommandSender.Answer(status: Int(response.status.code), headers: response.headers, body: body)
        guard answer.isSuccess else { throw ValidationError("\(url) answered \(answer.status) \(answer.problem)") }
        guard case .object(let page)? = try? JSONDecoder().decode(JSONValue.self, from: body), case .array(let data)? = page["data"] else { return [] }
        return data.compactMap { if case .object(let row) = $0 { return row } else { return nil } }
    }

    static func columns(_ values: String...) -> String {
        let widths = [8, 8, 10, 24, 30, 30]
        return values.enumerated().map { i, v in i < widths.count ? v.padding(toLength: max(widths[i], v.count), withPad: " ", startingAt: 0) : v }
            .joined(separator: "  ")
    }

    /// `HH:MM:SS` of an RFC 3339 time.
    static func clock(_ time: String) -> String {
        guard let t = time.firstIndex(of: "T") else { return time }
        return String(time[time.index(after: t)...].prefix(8))
    }
}

extension Dictionary where Key == String, Value == JSONValue {
    func text(_ key: String) -> String {
        if case .string(let s)? = self[key] { return s }
        return ""
    }

    func int(_ key: String) -> Int? {
        if case .number(let n)? = self[key] { return Int(n) }
        return nil
    }

    func double(_ key: String) -> Double? {
        if case .number(let n)? = self[key] { return n }
        return nil
    }
}
