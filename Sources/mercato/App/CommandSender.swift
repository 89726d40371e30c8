import ArgumentParser
import AsyncHTTPClient
import Foundation
import MercatoHooks
import NIOCore
import NIOHTTP1

/// Posts signed commands to a server's gateway and reads the answer.
struct CommandSender {
    struct Answer {
        var status: Int
        var headers: HTTPHeaders
        var body: Data

        var isSuccess: Bool { (200 ..< 300).contains(status) }

        /// `code: detail` of a Problem Details answer, or the status alone.
        var problem: String {
            guard let value = try? JSONDecoder().decode(JSONValue.self, from: body), case .object(let fields) = value,
                  case .string(let code)? = fields["code"] else { return "HTTP \(status)" }
            if case .string(let detail)? = fields["detail"] { return "\(code): \(detail)" }
            return code
        }
    }

    /// The gateway's URL: `url` as given when it has a path, else `url` + `/api/v1/apps/commands`.
    static func gatewayURL(_ url: String) -> String {
        guard let parsed = URL(string: url), parsed.path.isEmpty || parsed.path == "/" else { return url }
        return url.hasSuffix("/") ? url + "api/v1/apps/commands" : url + "/api/v1/apps/commands"
    }

    static func post(_ command: SignedCommand, to url: String, timeout: Duration = .seconds(30)) async throws -> Answer {
        var request = HTTPClientRequest(url: gatewayURL(url))
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        for (name, value) in command.headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: command.body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(Int64(timeout.components.seconds)))
        let body = try await response.body.collect(upTo: 4 << 20)
        return Answer(status: Int(response.status.code), headers: response.headers, body: Data(body.readableBytesView))
    }

    /// Prints the answer (status line, then the body) and fails with exit 1 unless it is a 2xx.
    static func report(_ answer: Answer) throws {
        print("HTTP \(answer.status)\(answer.headers.first(name: "Idempotent-Replayed") == "true" ? " (replayed)" : "")")
        print(String(decoding: answer.body, as: UTF8.self))
        guard answer.isSuccess else {
            FileHandle.standardError.write(Data("error: \(answer.problem)\n".utf8))
            throw ExitCode(1)
        }
    }
}
