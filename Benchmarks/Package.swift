// swift-tools-version:6.1
import PackageDescription

// Encore's benchmark suites (ordo-one/package-benchmark). A nested package, so `swift test` at the root stays lean.
// Run from this folder: `swift package benchmark` (or `swift package benchmark --target ALSBenchmarks`).
let package = Package(
    name: "EncoreBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Encore", path: ".."),
        .package(url: "https://github.com/ordo-one/package-benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "ALSBenchmarks",
            dependencies: [
                .product(name: "RecCore", package: "Encore"),
                .product(name: "Benchmark", package: "package-benchmark"),
            ],
            path: "Benchmarks/ALSBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "package-benchmark")]
        ),
        .executableTarget(
            name: "CoreBenchmarks",
            dependencies: [
                .product(name: "RecCore", package: "Encore"),
                .product(name: "Benchmark", package: "package-benchmark"),
            ],
            path: "Benchmarks/CoreBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "package-benchmark")]
        ),
        // The audio front-end's side of Benchmarks/compare_audio.py (a plain executable, timed by the script).
        .executableTarget(
            name: "AudioBench",
            dependencies: [.product(name: "RecCore", package: "Encore")],
            path: "Benchmarks/AudioBench"
        ),
    ]
)
