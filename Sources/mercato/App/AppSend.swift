import ArgumentParser
import AsyncHTTPClient
import NIOHTTP1
import Foundation

/// `mercato app send`: sign and post a command, retrying with the same webhook-id and body.
struct AppSend: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Sign and send a command, retrying (same webhook-id, same body) on 429, 5xx and lost connections.",
        discussion: """
            A retry is re-signed with a fresh timestamp but keeps the webhook-id and the body bytes, so
            the server runs the handler at most once and answers a retry of a finished command with the
            stored answer (Idempotent-Replayed: true). Retry-After is honoured (up to 30 s a wait).

            Example:
              mercato app send --url http://127.0.0.1:8080 --secret whsec_… --install ins_… \\
                --command kv.set --args '{"key": "greeting", "value": "hello"}'
            """
    )

    @Option(help: "The server (its base URL, or the gateway's full URL).")
    var url: String

    @OptionGroup var signer: SignerOptions
    @OptionGroup var command: CommandOptions

    @Option(help: "Retries after the first attempt.")
    var retries: Int = 3

    func run() async throws {
        let id = command.webhookID()
        let body = try command.body()
        var attempt = 0
        while true {
            let signed = try SignedCommand(id: id, body: body, signer: signer)
            var wait = Duration.milliseconds(500 << min(attempt, 5))
            do {
                let answer = try await CommandSender.post(signed, to: url)
                let retriable = answer.status == 429 || answer.status == 503 || answer.status == 502 || answer.status == 504
                if !retriable || attempt >= retries { return try CommandSender.report(answer) }
                if let seconds = answer.headers.first(name: "Retry-After").flatMap(Int.init) { wait = .seconds(min(max(seconds, 0), 30)) }
                FileHandle.standardError.write(Data("attempt \(attempt + 1): HTTP \(answer.status) \(answer.problem); retrying webhook-id \(id)\n".utf8))
            } catch let error as HTTPClientError {
                guard attempt < retries else { throw ValidationError("could not reach \(CommandSender.gatewayURL(url)): \(error)") }
                FileHandle.standardError.write(Data("attempt \(attempt + 1): \(error); retrying webhook-id \(id)\n".utf8))
            } catch let error as ExitCode {
                throw error
            } catch {
                guard attempt < retries else { throw ValidationError("could not reach \(CommandSender.gatewayURL(url)): \(error)") }
                FileHandle.standardError.write(Data("attempt \(attempt + 1): \(error); retrying webhook-id \(id)\n".utf8))
            }
            attempt += 1
            try await Task.sleep(for: wait)
        }
    }
}
