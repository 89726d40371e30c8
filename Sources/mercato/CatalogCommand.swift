import ArgumentParser
import Foundation
import MercatoCore

/// `mercato catalog import [dir]`: loads provider definitions and apps from a catalog folder.
struct CatalogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "catalog", abstract: "Manage the seed catalog.", subcommands: [Import.self])

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Import apps and OAuth providers from a catalog folder (idempotent).")
        @Argument(help: "The catalog folder (with apps/ and providers/).") var directory: String = "catalog"

        func run() async throws {
            let settings = Bootstrap.settings()
            let logger = Bootstrap.logging(settings: settings)
            let runtime = try await MercatoRuntime.open(settings: settings, plugins: BuiltInPlugins.all, logger: logger)
            let report: CatalogImporter.Report
            do {
                report = try await CatalogImporter(runtime: runtime).importDirectory(URL(fileURLWithPath: directory, isDirectory: true))
            } catch {
                await runtime.close()
                throw error
            }
            await runtime.close()
            print("catalog: \(report.providers) providers; apps: \(report.appsCreated.count) created, \(report.appsUpdated.count) updated, \(report.appsUnchanged.count) unchanged")
            for problem in report.problems { print("not imported: \(problem)") }
            if !report.problems.isEmpty { throw ExitCode(1) }
        }
    }
}
