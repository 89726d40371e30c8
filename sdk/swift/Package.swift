// swift-tools-version:6.0
import PackageDescription

/// Swift 6 language mode (strict concurrency) and the upcoming features the server builds with.
let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

/// The SDK for Mercato app developers: sign commands, send them, verify event webhooks.
/// It depends on swift-crypto only; nothing of the server.
let package = Package(
    name: "MercatoSDK",
    platforms: [.macOS(.v13), .iOS(.v16), .tvOS(.v16), .watchOS(.v9)],
    products: [
        .library(name: "MercatoSDK", targets: ["MercatoSDK"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
    ],
    targets: [
        .target(
            name: "MercatoSDK",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MercatoSDKTests",
            dependencies: ["MercatoSDK", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
    ]
)
