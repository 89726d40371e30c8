import ArgumentParser
import Foundation

/// `mercato app sign`: the three Standard Webhooks headers and the body of a command.
struct AppSign: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign",
        abstract: "Sign a command: print its webhook-id, webhook-timestamp and webhook-signature headers, then the body.",
        discussion: """
            Offline unless --send is given. With --send URL it posts the command once (to URL, or to
            URL/api/v1/apps/commands when URL has no path) and prints the answer; exit 0 on 2xx,
            else 1 with the problem's code. `mercato app send` adds retries.

            Examples:
              mercato app sign --secret whsec_… --install ins_… --command ping
              mercato app sign --secret whsec_… --install ins_… --command kv.set \\
                --args '{"key": "greeting", "value": "hello"}' --send http://127.0.0.1:8080
              mercato app sign --key-file app.ed25519 --install ins_… --command install.info
            """
    )

    @OptionGroup var signer: SignerOptions
    @OptionGroup var command: CommandOptions

    @Option(name: .customLong("send"), help: "Post the signed command to this server and print the answer.")
    var sendURL: String?

    func run() async throws {
        let signed = try SignedCommand(id: command.webhookID(), body: try command.body(), signer: signer)
        guard let sendURL else {
            for (name, value) in signed.headers { print("\(name): \(value)") }
            print(String(decoding: signed.body, as: UTF8.self))
            return
        }
        let answer: CommandSender.Answer
        do { answer = try await CommandSender.post(signed, to: sendURL) } catch {
            throw ValidationError("could not reach \(CommandSender.gatewayURL(sendURL)): \(error)")
        }
        try CommandSender.report(answer)
    }
}
