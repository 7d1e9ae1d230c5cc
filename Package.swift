// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Encore",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "RecCore", targets: ["RecCore"]),
        .executable(name: "encore-train", targets: ["Trainer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
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
        .testTarget(
            name: "RecCoreTests", dependencies: ["RecCore"],
            swiftSettings: [.swiftLanguageMode(.v6)]),
        .testTarget(
            name: "TrainerTests", dependencies: ["Trainer", "RecCore"],
            swiftSettings: [.swiftLanguageMode(.v6)]),
    ]
)
