import ArgumentParser
import Foundation
import MercatoCore
import MercatoHooks

/// `mercato provider set|list`: OAuth providers from the command line, as
/// `PUT /api/v1/providers/{key}` and `GET /api/v1/providers` do. A client secret is read from a
/// file or standard input, never from the command line (where `ps` and shell history see it).
struct ProviderCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "provider", abstract: "Manage OAuth providers.", subcommands: [Set.self, List.self])

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create or update a provider: its definition and client credentials.",
            discussion: """
                Fields not given keep their stored value, so `mercato provider set github --client-id ID --client-secret-file F`
                sets the credentials of the catalog's GitHub provider. Register {MERCATO_PUBLIC_URL}/api/v1/oauth/callback as
                the redirect URI at the provider.
                """
        )
        @Argument(help: "The provider's key (e.g. github).") var key: String
        @Option(help: "A provider definition file (YAML or JSON, the format of catalog/providers/*.yaml).") var definition: String?
        @Option(help: "The OAuth client id.") var clientID: String?
        @Option(help: "A file holding the client secret (its whole content, without a trailing newline).") var clientSecretFile: String?
        @Flag(help: "Read the client secret from standard input.") var clientSecretStdin = false

        func run() async throws {
            var body: [String: JSONValue] = [:]
            if let definition {
                let url = URL(fileURLWithPath: definition)
                guard let data = try? Data(contentsOf: url) else { throw ValidationError("cannot read \(definition)") }
                do {
                    guard let object = try ManifestDocument.parse(data, format: url.pathExtension == "json" ? .json : .yaml).objectValue else {
                        throw ValidationError("\(definition) must hold a provider definition (a map)")
                    }
                    body = object
                } catch let error as APIError {
                    throw ValidationError("\(definition): \(error.detail)")
                }
            }
            if let clientID { body["client_id"] = .string(clientID) }
            if clientSecretFile != nil && clientSecretStdin { throw ValidationError("use one of --client-secret-file and --client-secret-stdin") }
            var secretData: Data?
            if let clientSecretFile {
                guard let data = FileManager.default.contents(atPath: clientSecretFile) else { throw ValidationError("cannot read \(clientSecretFile)") }
                secretData = data
            } else if clientSecretStdin {
                secretData = FileHandle.standardInput.readDataToEndOfFile()
            }
            if let secretData {
                body["client_secret"] = .string(String(decoding: secretData, as: UTF8.self).trimmingCharacters(in: .newlines))
            }
            guard !body.isEmpty else { throw ValidationError("nothing to set: give --definition, --client-id or a client secret") }
            let settings = Bootstrap.settings()
            let logger = Bootstrap.logging(settings: settings)
            let runtime = try await MercatoRuntime.open(settings: settings, plugins: BuiltInPlugins.all, logger: logger)
            do {
                let (view, created) = try await runtime.providers.put(key, body: body, by: .operator(tokenID: "cli"))
                await runtime.close()
                print("\(view.definition.key): \(created ? "created" : "updated"); \(view.configured ? "configured" : "not configured yet (needs a client id and secret)")")
            } catch let error as APIError {
                await runtime.close()
                throw ValidationError(error.detail)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List providers and whether each is configured (never a secret).")

        func run() async throws {
            let settings = Bootstrap.settings()
            let logger = Bootstrap.logging(settings: settings)
            let runtime = try await MercatoRuntime.open(settings: settings, plugins: BuiltInPlugins.all, logger: logger)
            let views = try await runtime.providers.list(by: .operator(tokenID: "cli"))
            await runtime.close()
            for view in views {
                print("\(view.definition.key)\t\(view.configured ? "configured" : "not configured")\t\(view.source)\tclient_id=\(view.clientID ?? "-")")
            }
        }
    }
}
