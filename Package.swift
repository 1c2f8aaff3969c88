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
        .executableTarget(
            name: "langtune",
            dependencies: [
                "LangTune",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "LangTuneTests",
            dependencies: ["LangTune"],
            exclude: []
        ),
    ],
    swiftLanguageModes: [.v6]
)
