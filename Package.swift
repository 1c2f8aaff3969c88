// swift-tools-version: 6.1
import PackageDescription

// Release builds: the kernels are plain loops that rely on the optimizer and on
// AVX-512 code paths chosen at run time (see Sources/CLangTuneKernels).
let package = Package(
    name: "LangTune",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "LangTune", targets: ["LangTune"]),
        .executable(name: "langtune", targets: ["langtune"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // `langtune serve` (issue 14): HTTP server, structured logs, Prometheus metrics.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
    ],
    targets: [
        // Hot loops in C: SIMD dot products, quantized matrix-vector products,
        // and the run-time binding to oneDNN (dlopen, so a machine without it
        // still builds and runs on the portable fallback).
        .target(
            name: "CLangTuneKernels",
            cSettings: [.unsafeFlags(["-O3", "-fno-math-errno"])],
            linkerSettings: [.linkedLibrary("dl", .when(platforms: [.linux])), .linkedLibrary("m")]
        ),
        .target(
            name: "LangTune",
            dependencies: ["CLangTuneKernels"],
            swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]
        ),
        // The OpenAI-compatible HTTP front of `langtune serve`: routes, JSON types, auth, limits,
        // metrics. Kept apart so the core library does not depend on NIO.
        .target(
            name: "LangTuneServer",
            dependencies: [
                "LangTune",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ]
        ),
        .executableTarget(
            name: "langtune",
            dependencies: [
                "LangTune",
                "LangTuneServer",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "LangTuneTests",
            dependencies: ["LangTune", "LangTuneServer"],
            exclude: []
        ),
    ],
    swiftLanguageModes: [.v6]
)
