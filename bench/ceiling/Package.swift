// swift-tools-version:6.2
import PackageDescription

// The ceiling: the least a Hummingbird 2 server can do for a signed command on this machine.
// It verifies the same Standard Webhooks HMAC-SHA256 signature as Mercato, with the same
// library (libsodium, through a system library module like the main package's CSodium), so
// `mercato / ceiling` measures Mercato's own work, not a difference between crypto libraries.
let package = Package(
    name: "mercato-bench-ceiling",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        .systemLibrary(name: "CSodium", pkgConfig: "libsodium", providers: [.apt(["libsodium-dev"])]),
        // The durable floor's storage (Floor.swift): SQLite's C API, as Mercato's own binding.
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .executableTarget(
            name: "ceiling",
            dependencies: [
                "CSodium",
                "CSQLite",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
