import Foundation
import Logging
public import MercatoHooks
public import Synchronization

/// A plugin for tests of the host: commands that count their calls, sleep, crash, hang or fail.
public struct ProbePlugin: MercatoPlugin {
    /// Calls of `probe.count`, by the `tag` argument.
    public static let calls = Mutex<[String: Int]>([:])

    public init() {}

    public static let manifest = PluginManifest(
        id: "probe",
        version: "1.0.0",
        scopes: [ScopeDefinition("probe:use", summary: "Test commands.")],
        commands: [
            CommandDefinition("probe.count", summary: "Counts its calls per tag, after sleeping `ms`.", requiredScopes: ["probe:use"],
                              args: [ArgField("tag", .string(maxLength: 100), required: true), ArgField("ms", .number)]),
            CommandDefinition("probe.crash", summary: "Throws an error that is not a CommandError.", requiredScopes: ["probe:use"]),
            CommandDefinition("probe.hang", summary: "Never answers and ignores cancellation.", requiredScopes: ["probe:use"]),
            CommandDefinition("probe.fail", summary: "Answers 404 not_found.", requiredScopes: ["probe:use"]),
        ]
    )

    struct Boom: Error {}

    public func handle(_ command: CommandRequest, _ context: HookContext) async throws -> JSONValue {
        switch command.command {
        case "probe.count":
            let tag = command.args["tag"]?.stringValue ?? ""
            if let ms = command.args["ms"]?.numberValue { try await Task.sleep(for: .milliseconds(Int(ms))) }
            let n = Self.calls.withLock { c -> Int in c[tag, default: 0] += 1; return c[tag]! }
            return .object(["tag": .string(tag), "call": .number(Double(n))])
        case "probe.crash":
            // A plugin's own line carries the request id (`HookContext.logger`).
            context.logger.warning("probe crashing")
            throw Boom()
        case "probe.hang":
            // Ignores cancellation without spinning: waits on a detached task the host's
            // cancellation does not reach.
            await Task.detached { try? await Task.sleep(for: .seconds(3600)) }.value
            return .null
        case "probe.fail":
            throw CommandError.notFound("The probe found nothing.")
        default:
            throw CommandError.unknownCommand(command.command)
        }
    }
}
