// swift-tools-version:6.0
import PackageDescription

let swift6: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "Encore",
    platforms: [.macOS(.v15)],
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
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.34.1"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
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
        // Audio: decoding and encoding (WAV, FLAC, OGG Vorbis, Opus, MP3), resampling, FFT, loudness, MIDI rendering.
        .systemLibrary(
            name: "CSndFile", path: "Sources/CSndFile", pkgConfig: "sndfile", providers: [.apt(["libsndfile1-dev"])]),
        .systemLibrary(name: "CSoxr", path: "Sources/CSoxr", pkgConfig: "soxr", providers: [.apt(["libsoxr-dev"])]),
        .systemLibrary(
            name: "CKissFFT", path: "Sources/CKissFFT", pkgConfig: "kissfft-float", providers: [.apt(["libkissfft-dev"])]),
        .systemLibrary(
            name: "CEbur128", path: "Sources/CEbur128", pkgConfig: "libebur128", providers: [.apt(["libebur128-dev"])]),
        // No pkgConfig: fluidsynth.pc pulls in glib and SDL2 flags that the import does not need.
        .systemLibrary(name: "CFluidSynth", path: "Sources/CFluidSynth", providers: [.apt(["libfluidsynth-dev"])]),
        // Zip archives (NumPy's .npz files, e.g. implicit's saved models).
        .systemLibrary(name: "CZip", path: "Sources/CZip", pkgConfig: "libzip", providers: [.apt(["libzip-dev"])]),
        // Small SIMD kernels (AVX2+FMA chosen at run time, portable fallback) for the solvers' and indexes' hot loops.
        .target(name: "CKernels", path: "Sources/CKernels"),
        // The library, in layers: a target may import only the targets listed above it (docs/architecture.md).
        .target(
            name: "EncoreCore",
            dependencies: ["CBLAS", "CLAPACKE", "CKernels", .product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: swift6),
        .target(
            name: "EncoreData", dependencies: ["EncoreCore", .product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: swift6),
        .target(name: "EncoreFactorization", dependencies: ["EncoreCore", "EncoreData", "CKernels"], swiftSettings: swift6),
        .target(name: "EncoreIndex", dependencies: ["EncoreCore", "CKernels", "CZip"], swiftSettings: swift6),
        // Audio front-end: decoding, resampling, spectrograms and descriptors (beside Factorization and Index).
        .target(
            name: "EncoreAudio", dependencies: ["EncoreCore", "CSndFile", "CSoxr", "CKissFFT", "CEbur128", "CBLAS"],
            swiftSettings: swift6),
        // Text and sequence vectors: tokenizer, TF-IDF/BM25, randomized truncated SVD (LSA), skip-gram (beside Audio).
        .target(
            name: "EncoreText", dependencies: ["EncoreCore", "EncoreData", "CBLAS", "CLAPACKE", "CKernels"],
            swiftSettings: swift6),
        // The audio embedding CNN: layers (im2col + sgemm), losses, AdamW, training and inference over log-mel
        // arrays in memory. Beside Audio; its files (features in, model out) are read and written by Storage.
        .target(name: "EncoreAudioModel", dependencies: ["EncoreCore", "CBLAS"], swiftSettings: swift6),
        // Cold-start vectors: ridge regressions from content vectors to CF item vectors, the artist prior, fitted
        // combination weights, the evidence blend, and the item spaces for search (above Factorization, on plain
        // Matrix inputs so it imports neither Text nor AudioModel).
        .target(
            name: "EncoreHybrid", dependencies: ["EncoreCore", "EncoreData", "EncoreFactorization"], swiftSettings: swift6),
        .target(
            name: "EncorePlaylists", dependencies: ["EncoreCore", "EncoreData", "EncoreFactorization", "EncoreIndex"],
            swiftSettings: swift6),
        .target(
            name: "EncoreStorage",
            dependencies: [
                "EncoreCore", "EncoreData", "EncoreFactorization", "EncoreIndex", "EncorePlaylists", "EncoreText",
                "EncoreAudioModel", "EncoreHybrid", "CHDF5",
            ],
            swiftSettings: swift6),
        // Batch audio analysis into a features file (above Storage, which writes the file; beside the serving path).
        .target(name: "EncoreAnalysis", dependencies: ["EncoreCore", "EncoreAudio", "EncoreStorage"], swiftSettings: swift6),
        .target(
            name: "EncoreEventLog",
            dependencies: [
                "EncoreCore", "EncoreData", .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: swift6),
        .target(
            name: "EncoreServing",
            dependencies: [
                "EncoreCore", "EncoreData", "EncoreFactorization", "EncoreIndex", "EncorePlaylists", "EncoreStorage",
                "EncoreEventLog", "EncoreHybrid", .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swift6),
        // Leaves: nothing on the serving path imports them.
        .target(
            name: "EncoreEvaluation",
            dependencies: [
                "EncoreCore", "EncoreData", "EncoreFactorization", "EncoreIndex", "EncorePlaylists", "EncoreHybrid",
                "EncoreText",
            ],
            swiftSettings: swift6),
        // The synthetic world; its audible side composes MIDI and renders it with FluidSynth through EncoreAudio.
        .target(
            name: "EncoreSynth",
            dependencies: ["EncoreCore", "EncoreData", "EncorePlaylists", "EncoreAudio", "CFluidSynth"],
            swiftSettings: swift6),
        // The weekly job as a library type: above Evaluation (its offline evaluation) and the content targets (audio
        // analysis and embedding, text and sequence vectors), beside the serving path.
        .target(
            name: "EncoreWeekly",
            dependencies: [
                "EncoreCore", "EncoreData", "EncoreFactorization", "EncoreIndex", "EncorePlaylists", "EncoreStorage",
                "EncoreEventLog", "EncoreEvaluation", "EncoreAudio", "EncoreAnalysis", "EncoreText", "EncoreAudioModel",
                "EncoreHybrid", .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swift6),
        // The one product library users depend on: re-exports every layer, so `import RecCore` is all it takes.
        .target(
            name: "RecCore",
            dependencies: [
                "EncoreCore", "EncoreData", "EncoreFactorization", "EncoreIndex", "EncorePlaylists", "EncoreStorage",
                "EncoreEventLog", "EncoreServing", "EncoreEvaluation", "EncoreSynth", "EncoreWeekly", "EncoreAudio",
                "EncoreText", "EncoreAudioModel", "EncoreAnalysis", "EncoreHybrid",
            ],
            swiftSettings: swift6),
        .executableTarget(
            name: "Trainer",
            dependencies: [
                "RecCore", "EncoreWeekly",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swift6),
        // The HTTP server: maps requests to RecCore's real-time engine. The library target holds the routes so the
        // tests drive them in process; the executable parses the command line.
        .target(
            name: "ServeKit",
            dependencies: [
                "EncoreCore", "EncoreData", "EncoreFactorization", "EncoreIndex", "EncorePlaylists", "EncoreStorage",
                "EncoreEventLog", "EncoreServing",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swift6),
        .executableTarget(
            name: "Serve",
            dependencies: [
                "ServeKit", "EncoreData", "EncoreEventLog", "EncoreServing",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swift6),
        .testTarget(
            name: "ServeTests",
            dependencies: [
                "ServeKit", "RecCore", "EncoreTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swift6),
        // Helpers shared by the test targets (never part of a product).
        .target(name: "EncoreTestSupport", path: "Tests/TestSupport", swiftSettings: swift6),
        .testTarget(
            name: "EncoreCoreTests",
            dependencies: ["EncoreCore", "EncoreData", "EncoreIndex", "EncoreTestSupport"],
            swiftSettings: swift6),
        .testTarget(
            name: "EncoreDataTests",
            dependencies: ["EncoreCore", "EncoreData", "EncoreEventLog"],
            swiftSettings: swift6),
        .testTarget(
            name: "EncoreFactorizationTests",
            dependencies: ["EncoreCore", "EncoreFactorization"],
            swiftSettings: swift6),
        .testTarget(
            name: "EncoreIndexTests",
            dependencies: ["EncoreCore", "EncoreFactorization", "EncoreIndex", "EncoreTestSupport"],
            swiftSettings: swift6),
        .testTarget(
            name: "EncorePlaylistsTests",
            dependencies: ["EncoreCore", "EncoreData", "EncoreFactorization", "EncoreIndex", "EncorePlaylists", "EncoreEvaluation", "EncoreSynth"],
            swiftSettings: swift6),
        .testTarget(
            name: "EncoreStorageTests",
            dependencies: [
                "EncoreCore", "EncoreData", "EncoreFactorization", "EncoreIndex", "EncorePlaylists", "EncoreStorage", "EncoreHybrid",
                "EncoreTestSupport",
            ],
            swiftSettings: swift6),
        .testTarget(
            name: "EncoreEventLogTests",
            dependencies: ["EncoreCore", "EncoreData", "EncoreEventLog", "EncoreTestSupport"],
            swiftSettings: swift6),
        .testTarget(
            name: "EncoreEvaluationTests",
            dependencies: [
                "EncoreCore", "EncoreData", "EncoreFactorization", "EncorePlaylists", "EncoreEvaluation", "EncoreSynth",
                "EncoreHybrid", "EncoreText", "EncoreTestSupport",
            ],
            swiftSettings: swift6),
        .testTarget(
            name: "EncoreHybridTests", dependencies: ["EncoreCore", "EncoreHybrid", "EncoreTestSupport"],
            swiftSettings: swift6),
        .testTarget(
            name: "EncoreAudioTests",
            dependencies: ["EncoreCore", "EncoreAudio", "EncoreStorage", "EncoreAnalysis", "EncoreTestSupport"],
            swiftSettings: swift6),
        .testTarget(
            name: "EncoreTextTests", dependencies: ["EncoreCore", "EncoreData", "EncoreText", "EncoreStorage", "EncoreTestSupport"],
            swiftSettings: swift6),
        .testTarget(
            name: "EncoreAudioModelTests",
            dependencies: ["EncoreCore", "EncoreAudioModel", "EncoreStorage", "EncoreTestSupport"],
            swiftSettings: swift6),
        .testTarget(
            name: "EncoreSynthTests",
            dependencies: ["EncoreCore", "EncoreData", "EncoreSynth", "EncoreAudio", "EncoreTestSupport"],
            swiftSettings: swift6),
        // The README's library example, compiled and run against the one product.
        .testTarget(name: "RecCoreTests", dependencies: ["RecCore"], swiftSettings: swift6),
        .testTarget(
            name: "TrainerTests", dependencies: ["Trainer", "RecCore", "EncoreServing", "EncoreWeekly", "EncoreTestSupport"],
            swiftSettings: swift6),
    ]
)
