import ArgumentParser
import Foundation
import MercatoCore
import MercatoCrypto
import MercatoStorage

/// `mercato keys ...`: master key versions.
struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Rotate, inspect and retire master key versions.",
        subcommands: [Rotate.self, Reseal.self, Retire.self, Status.self]
    )

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a master key version and re-seal every secret under it while servers keep serving.",
            discussion: """
            With the key file (the default), the new version is written to the file, servers pick it up \
            within a few seconds, and every sealed value is re-sealed. With MERCATO_MASTER_KEY, the new \
            value is printed for you to deploy to every node; run `mercato keys reseal` afterwards.
            """
        )
        @Option(help: "Seconds to wait for running servers to load the new version before re-sealing.")
        var grace: Int = 5

        func run() async throws {
            let settings = Bootstrap.settings()
            let source = KeyringSource(settings: settings)
            let ring = try source.load()
            let next = ring.addingVersion()
            switch source {
            case .environment:
                print("""
                New MERCATO_MASTER_KEY value (version \(next.current) is current; deploy it to every node, then run `mercato keys reseal`):
                \(next.environmentValue)
                """)
                return
            case .file(let url):
                try next.write(to: url)
                print("keys: added version \(next.current) to \(url.path); waiting \(grace)s for running servers to load it")
                try await Task.sleep(for: .seconds(grace))
                try await Reseal.reseal(settings: settings)
            }
        }
    }

    struct Reseal: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Re-seal every secret under the current key version.")

        func run() async throws {
            try await Self.reseal(settings: Bootstrap.settings())
        }

        static func reseal(settings: Settings) async throws {
            let logger = Bootstrap.logging(settings: settings)
            let runtime = try await MercatoRuntime.open(settings: settings, plugins: BuiltInPlugins.all, logger: logger)
            let report: KeyRotation.Report
            do {
                report = try await KeyRotation(database: runtime.database, vault: runtime.vault, logger: logger).resealAll()
            } catch {
                await runtime.close()
                throw error
            }
            await runtime.close()
            print("keys: re-sealed \(report.resealed) values under version \(runtime.vault.currentKeyVersion) in \(report.passes) passes")
            if !report.unopenable.isEmpty {
                print("keys: \(report.unopenable.count) values do not open and were left as they are: \(report.unopenable.joined(separator: ", "))")
                throw ExitCode(1)
            }
        }
    }

    struct Retire: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove an old key version once nothing is sealed under it.")
        @Argument(help: "The version to retire.") var version: UInt32

        func run() async throws {
            let settings = Bootstrap.settings()
            let logger = Bootstrap.logging(settings: settings)
            let source = KeyringSource(settings: settings)
            let ring = try source.load(createIfMissing: false)
            let runtime = try await MercatoRuntime.open(settings: settings, plugins: BuiltInPlugins.all, logger: logger)
            let counts = try await runtime.database.read { try await SealedValueStore.countByKeyVersion(on: $0) }
            await runtime.close()
            if let n = counts[Int(version)], n > 0 {
                print("keys: \(n) values are still sealed under version \(version); run `mercato keys reseal` first")
                throw ExitCode(1)
            }
            let smaller = try ring.removingVersion(version)
            switch source {
            case .environment:
                print("New MERCATO_MASTER_KEY value without version \(version):\n\(smaller.environmentValue)")
            case .file(let url):
                try smaller.write(to: url)
                print("keys: retired version \(version); \(url.path) now holds \(smaller.keys.keys.sorted().map(String.init).joined(separator: ", "))")
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show key versions and how many values each seals.")

        func run() async throws {
            let settings = Bootstrap.settings()
            let logger = Bootstrap.logging(settings: settings)
            let ring = try KeyringSource(settings: settings).load(createIfMissing: false)
            let runtime = try await MercatoRuntime.open(settings: settings, plugins: BuiltInPlugins.all, logger: logger)
            let counts = try await runtime.database.read { try await SealedValueStore.countByKeyVersion(on: $0) }
            await runtime.close()
            for version in Set(ring.keys.keys.map(Int.init)).union(counts.keys).sorted() {
                let held = ring.keys[UInt32(version)] != nil
                print("version \(version)\(version == Int(ring.current) ? " (current)" : ""): \(counts[version] ?? 0) sealed values\(held ? "" : " — KEY MISSING from the ring")")
            }
        }
    }
}
