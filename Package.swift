// swift-tools-version:6.2
import PackageDescription

/// Settings every Mercato target shares: Swift 6 language mode plus the upcoming features
/// Hummingbird itself builds with (see docs/ARCHITECTURE.md).
let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

/// The built-in plugins: `Plugins/<Name>/`, module `<Name>Plugin`, importing only MercatoHooks.
let pluginNames = ["Install", "KV", "Notifications", "Tasks", "Connections", "Audit", "Inbound"]
let pluginTargets: [Target] = pluginNames.map { name in
    .target(name: "\(name)Plugin", dependencies: ["MercatoHooks"], path: "Plugins/\(name)", swiftSettings: swiftSettings)
}
let pluginDependencies: [Target.Dependency] = pluginNames.map { .target(name: "\($0)Plugin") }

let package = Package(
    name: "mercato",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "mercato", targets: ["mercato"]),
        .library(name: "MercatoHooks", targets: ["MercatoHooks"]),
        .library(name: "MercatoHooksTesting", targets: ["MercatoHooksTesting"]),
        // For bench/micro, which measures the host's parts one by one.
        .library(name: "MercatoCrypto", targets: ["MercatoCrypto"]),
        .library(name: "MercatoStorage", targets: ["MercatoStorage"]),
        .library(name: "MercatoCore", targets: ["MercatoCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/vapor/sql-kit.git", from: "3.36.0"),
        .package(url: "https://github.com/vapor/postgres-kit.git", from: "2.17.0"),
        .package(url: "https://github.com/vapor/sqlite-kit.git", from: "4.5.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-atomics.git", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/vapor/sqlite-nio.git", from: "1.13.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.7.1"),
    ],
    targets: [
        // libsodium from Debian's libsodium-dev (1.0.18).
        .systemLibrary(
            name: "CSodium",
            pkgConfig: "libsodium",
            providers: [.apt(["libsodium-dev"])]
        ),
        // SQLite's C API from Debian's libsqlite3-dev: MercatoStorage prepares and caches its
        // statements itself and runs them without a thread pool.
        .systemLibrary(
            name: "CMercatoSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        // Sealing, signatures, random, password hashing. Knows nothing of storage or HTTP.
        .target(
            name: "MercatoCrypto",
            dependencies: ["CSodium"],
            swiftSettings: swiftSettings
        ),
        // One storage API over SQLite and PostgreSQL, with migrations.
        .target(
            name: "MercatoStorage",
            dependencies: [
                "CMercatoSQLite",
                "MercatoCrypto",
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "PostgresKit", package: "postgres-kit"),
                .product(name: "SQLiteKit", package: "sqlite-kit"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The hook protocol: the only Mercato module a plugin may import.
        .target(
            name: "MercatoHooks",
            dependencies: [
                "MercatoCrypto",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Fakes of the host, so a plugin is tested without a server: storage, outbox, config.
        .target(
            name: "MercatoHooksTesting",
            dependencies: [
                "MercatoHooks",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The host: tenancy, tokens, vault use, settings. Never imports a plugin.
        .target(
            name: "MercatoCore",
            dependencies: [
                "MercatoHooks",
                "MercatoCrypto",
                "MercatoStorage",
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        // Routes, middleware, Problem Details, the OpenAPI document.
        .target(
            name: "MercatoHTTP",
            dependencies: [
                "MercatoCore",
                "MercatoHooks",
                "MercatoCrypto",
                "MercatoStorage",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: [.copy("Resources/openapi.json")],
            swiftSettings: swiftSettings
        ),
        // The browser pages (CONTRACT §8): sessions, CSRF, security headers, Mustache templates.
        .target(
            name: "MercatoWeb",
            dependencies: [
                "MercatoCore",
                "MercatoHTTP",
                "MercatoHooks",
                "MercatoCrypto",
                "MercatoStorage",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [.copy("Resources/templates"), .copy("Resources/static")],
            swiftSettings: swiftSettings
        ),
        // The one place that names every plugin.
        .executableTarget(
            name: "mercato",
            dependencies: [
                "MercatoCore",
                "MercatoCrypto",
                "MercatoStorage",
                "MercatoHTTP",
                "MercatoWeb",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Atomics", package: "swift-atomics"),
                "MercatoHooks",
            ] + pluginDependencies,
            swiftSettings: swiftSettings
        ),

        // Shared by the test targets: a fresh database per test on either engine.
        .target(
            name: "MercatoTestSupport",
            dependencies: pluginDependencies + [
                "MercatoHooks",
                "MercatoCore",
                "MercatoCrypto",
                "MercatoStorage",
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/MercatoTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MercatoCryptoTests",
            dependencies: ["MercatoCrypto"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MercatoCoreTests",
            dependencies: [
                "MercatoTestSupport",
                "MercatoCore",
                "MercatoHooks",
                "MercatoStorage",
                .product(name: "SQLKit", package: "sql-kit"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MercatoStorageTests",
            dependencies: [
                "MercatoTestSupport",
                "MercatoStorage",
                "MercatoCore",
                "MercatoCrypto",
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MercatoHTTPTests",
            dependencies: [
                "MercatoTestSupport",
                "MercatoHooksTesting",
                "MercatoHTTP",
                "MercatoWeb",
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                "MercatoHooks",
                "MercatoCore",
                "MercatoCrypto",
                "MercatoStorage",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        // Each built-in plugin tested on its own, against the fakes of MercatoHooksTesting.
        .testTarget(
            name: "PluginTests",
            dependencies: ["MercatoHooks", "MercatoHooksTesting"] + pluginDependencies,
            swiftSettings: swiftSettings
        ),
        // The example plugin of the MercatoHooks DocC catalog, compiled and tested
        // (scripts/check_docs.py checks the articles show these files as they are).
        .testTarget(
            name: "ExamplePluginTests",
            dependencies: ["MercatoHooks", "MercatoHooksTesting"],
            swiftSettings: swiftSettings
        ),
    ] + pluginTargets
)
