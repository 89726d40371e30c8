import ArgumentParser

/// The `mercato` command: the server and the operator's tools.
@main
struct Mercato: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mercato",
        abstract: "A self-hosted, multi-tenant app marketplace runtime: the server, the operator's tools and the app developer's tools.",
        discussion: "Settings come from MERCATO_* environment variables and DATABASE_URL; see README.md.",
        subcommands: [Serve.self, Migrate.self, Keys.self, TokenCommand.self, OrgCommand.self, CatalogCommand.self, ProviderCommand.self,
                      AppCommand.self],
        defaultSubcommand: Serve.self
    )
}
