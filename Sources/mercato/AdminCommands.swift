import ArgumentParser
import Foundation
import MercatoCore
import MercatoHooks
import MercatoStorage

/// `mercato token create`: an API token from the command line (shown once).
struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "token", abstract: "Manage API tokens.", subcommands: [Create.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an API token; its text is printed once.")
        @Option(help: "The org the token acts in (omit with --operator).") var org: String?
        @Option(help: "A name for the token's service account.") var name: String = "cli"
        @Option(help: "owner, admin, developer or member.") var role: String = "owner"
        @Flag(help: "Create an operator (platform owner) token instead.") var `operator` = false

        func run() async throws {
            let settings = Bootstrap.settings()
            let logger = Bootstrap.logging(settings: settings)
            let runtime = try await MercatoRuntime.open(settings: settings, plugins: BuiltInPlugins.all, logger: logger)
            do {
                if `operator` {
                    let (record, text) = try await runtime.tenancy.createOperatorToken(name: name)
                    print("\(record.id) operator\n\(text)")
                } else {
                    guard let org else { throw ValidationError("--org is required (or pass --operator)") }
                    guard let role = MemberRole(rawValue: role) else { throw ValidationError("--role must be owner, admin, developer or member") }
                    let (record, text) = try await runtime.tenancy.createToken(in: org, name: name, role: role, by: .operator(tokenID: "cli"))
                    print("\(record.id) \(record.role) \(org)\n\(text)")
                }
            } catch let error as APIError {
                await runtime.close()
                throw ValidationError(error.detail)
            }
            await runtime.close()
        }
    }
}

/// `mercato org create`: an org from the command line.
struct OrgCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "org", abstract: "Manage orgs.", subcommands: [Create.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an org and print its id.")
        @Option(help: "The org's name.") var name: String
        @Option(help: "free, pro or enterprise.") var plan: String = "free"

        func run() async throws {
            guard let plan = Plan(rawValue: plan) else { throw ValidationError("--plan must be free, pro or enterprise") }
            let settings = Bootstrap.settings()
            let logger = Bootstrap.logging(settings: settings)
            let runtime = try await MercatoRuntime.open(settings: settings, plugins: BuiltInPlugins.all, logger: logger)
            let org = try await runtime.tenancy.createOrg(name: name, plan: plan, by: .operator(tokenID: "cli"))
            await runtime.close()
            print(org.id)
        }
    }
}
