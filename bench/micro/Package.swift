// swift-tools-version:6.2
import PackageDescription

// Micro benchmarks of Mercato's hot-path building blocks with ordo-one/benchmark:
//   cd bench/micro && swift package --scratch-path .build-micro benchmark
// Its own package so the main build stays lean. It uses the main package by path, which must
// export the library products MercatoCrypto, MercatoStorage and MercatoCore (and MercatoHooks).
let package = Package(
    name: "mercato-bench-micro",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(name: "mercato", path: "../.."),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        // Only to make an Ed25519 key pair and signature for the verification benchmark
        // (MercatoCrypto verifies but never signs).
        .systemLibrary(name: "CSodiumMicro", pkgConfig: "libsodium", providers: [.apt(["libsodium-dev"])]),
        .executableTarget(
            name: "MercatoMicro",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "MercatoCrypto", package: "mercato"),
                .product(name: "MercatoStorage", package: "mercato"),
                .product(name: "MercatoCore", package: "mercato"),
                .product(name: "MercatoHooks", package: "mercato"),
                .product(name: "Logging", package: "swift-log"),
                "CSodiumMicro",
            ],
            path: "Benchmarks/MercatoMicro",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
