// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Encore",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "RecCore", targets: ["RecCore"]),
        .executable(name: "encore-train", targets: ["Trainer"]),
        .executable(name: "encore-serve", targets: ["Serve"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(
            name: "CLAPACKE", path: "Sources/CLAPACKE", pkgConfig: "lapacke",
            providers: [.apt(["liblapacke-dev"])]),
        .systemLibrary(
            name: "CHDF5", path: "Sources/CHDF5", pkgConfig: "hdf5-serial",
            providers: [.apt(["libhdf5-dev"])]),
        // Small SIMD kernels (AVX2+FMA chosen at run time, portable fallback) for the solvers' and indexes' hot loops.
        .target(name: "CKernels", path: "Sources/CKernels"),
        .target(
            name: "RecCore",
            dependencies: [
                "CBLAS", "CLAPACKE", "CHDF5", "CKernels",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]),
        .executableTarget(
            name: "Trainer",
            dependencies: [
                "RecCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]),
        // The HTTP server: maps requests to RecCore's real-time engine. The library target holds the routes so the
        // tests drive them in process; the executable parses the command line.
        .target(
            name: "ServeKit",
            dependencies: [
                "RecCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]),
        .executableTarget(
            name: "Serve",
            dependencies: [
                "ServeKit", "RecCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]),
        .testTarget(
            name: "ServeTests",
            dependencies: [
                "ServeKit", "RecCore", "Trainer",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]),
        .testTarget(
            name: "RecCoreTests", dependencies: ["RecCore"],
            swiftSettings: [.swiftLanguageMode(.v6)]),
        .testTarget(
            name: "TrainerTests", dependencies: ["Trainer", "RecCore"],
            swiftSettings: [.swiftLanguageMode(.v6)]),
    ]
)
