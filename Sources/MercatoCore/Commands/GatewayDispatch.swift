import Foundation
import Logging
import MercatoHooks
import MercatoStorage

/// The gateway's fourth stage (CONTRACT §4): command known, scopes granted, args valid, then the
/// plugin's handler, whose outcome becomes the answer.
extension CommandGateway {
    /// Runs an admitted command; answers what to send and keep.
    func dispatch(_ command: AuthenticatedCommand) async -> Verdict {
        let target = command.target
        func refuse(_ error: APIError, headers: [(String, String)] = [], keep: Keep = .bodyHash) -> Verdict {
            Verdict(answer: problem(error, requestID: command.requestID, headers: headers), keep: keep)
        }
        guard let definition = host.capabilities.commands[command.name]?.definition else {
            return refuse(APIError(status: 404, code: "unknown_command", title: "Unknown command",
                                   detail: command.name.isEmpty ? "The body names no `command`." : "No plugin serves `\(command.loggedName)`."))
        }
        let missing = definition.requiredScopes.filter { !target.scopes.contains($0) }
        guard missing.isEmpty else {
            return refuse(APIError(status: 403, code: "scope_missing", title: "Scope missing",
                                   detail: "`\(command.name)` needs the scope\(missing.count == 1 ? "" : "s") \(missing.joined(separator: ", ")), which this install was not granted."))
        }
        if let error = ArgsValidator.validate(command.args, against: definition) {
            return refuse(APIError(status: error.status, code: error.code, title: "Invalid args", detail: error.message))
        }
        let request = CommandRequest(
            id: command.id, command: command.name, args: command.args?.objectValue ?? [:],
            install: InstallInfo(installID: target.install.id, orgID: target.install.orgId, orgName: target.orgName, appKey: target.install.appKey,
                                 appVersion: target.install.version, grantedScopes: target.scopes, status: target.install.status.rawValue)
        )
        let answer: Answer
        switch await host.run(request, requestID: command.requestID, logger: logger, api: api) {
        case .result(let result):
            let json: JSONValue = .object(["id": .string(command.id), "command": .string(command.name), "status": .string("succeeded"), "result": result])
            answer = Answer(status: 200, body: (try? Data(json.jsonBytes())) ?? Data(), isProblem: false, headers: [], outcome: "succeeded")
        case .failed(let error) where error.status >= 500:
            // The plugin says "not now" (e.g. a provider is down): not kept, so a retry with the
            // same webhook-id runs again.
            let headers: [(String, String)] = error.status == 503 ? [("Retry-After", "5")] : []
            return refuse(APIError(status: error.status, code: error.code, title: "Command failed", detail: error.message), headers: headers)
        case .failed(let error):
            answer = problem(APIError(status: error.status, code: error.code, title: "Command failed", detail: error.message), requestID: command.requestID)
        case .crashed:
            answer = problem(APIError(status: 500, code: "handler_failed", title: "Handler failed",
                                      detail: "The command's handler failed; it has been logged with the request id."), requestID: command.requestID)
        case .timedOut:
            answer = problem(APIError(status: 504, code: "handler_timeout", title: "Handler timeout",
                                      detail: "The command's handler did not answer in time."), requestID: command.requestID)
        case .disabled:
            // Not run, so not kept for idempotency: the same webhook-id runs once it is enabled.
            let plugin = host.plugin(serving: command.name) ?? "?"
            return refuse(APIError(status: 503, code: "plugin_disabled", title: "Plugin disabled",
                                   detail: "The `\(plugin)` plugin that serves `\(command.name)` is disabled after repeated failures; retry later."),
                          headers: [("Retry-After", "60")])
        }
        return Verdict(answer: answer, keep: .answer, sealed: definition.answerHoldsSecrets && answer.status < 400)
    }
}
