import ArgumentParser
import Foundation
import RecCore

/// Options that choose and shape the confidence weighting.
struct WeightingOptions: ParsableArguments {
    @Option(help: "Confidence weighting of the summed interaction strengths: none, linear (1 + a*r), log (1 + a*ln(1 + r/eps)) or bm25 (as implicit's bm25_weight on the items x users matrix).")
    var weighting: String = "bm25"

    @Option(help: "The a of linear and log weighting.")
    var weightAlpha: Float?

    @Option(help: "The eps of log weighting.")
    var logEpsilon: Float?

    @Option(help: "BM25 K1 (default 100).")
    var bm25K1: Float?

    @Option(help: "BM25 B (default 0.8).")
    var bm25B: Float?

    func confidenceWeighting() throws -> ConfidenceWeighting {
        try ConfidenceWeighting(name: weighting, alpha: weightAlpha, epsilon: logEpsilon, k1: bm25K1, b: bm25B)
    }
}

/// `encore-train fit`: interactions in, model bundle out.
struct FitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fit",
        abstract: "Fit an implicit-feedback ALS model to an interaction log and write a model bundle (HDF5).",
        discussion: """
            Rows of the same (user, item) are summed, weighted (--weighting), and factorised with the \
            Hu-Koren-Volinsky objective; parameters have implicit's meanings and defaults. The bundle holds the ids, \
            factors, parameters, the weighted training matrix and the library version, and opens in h5py.
            """)

    @Option(help: "The interaction log (see --format).")
    var input: String

    @Option(help: "Where to write the bundle (.h5). Written to a temporary file and renamed into place.")
    var output: String

    @OptionGroup var inputFormat: InputFormatOptions
    @OptionGroup var weightingOptions: WeightingOptions

    @Option(help: "Latent factors.")
    var factors: Int = 100

    @Option(help: "L2 regularization.")
    var regularization: Float = 0.01

    @Option(help: "Confidence scale: an observed pair has confidence alpha * weight.")
    var alpha: Float = 1.0

    @Option(help: ArgumentHelp(
        "The least confidence of an observed pair: max(alpha * weight, floor). 0 is implicit's rule; 1 keeps a "
            + "played track at least as certain as one never played (Hu, Koren and Volinsky's and Spark's 1 + alpha * r)."))
    var confidenceFloor: Float = 0

    @Option(help: "ALS iterations.")
    var iterations: Int = 15

    @Option(help: "Least-squares solver: cg (conjugate gradient) or cholesky (exact).")
    var solver: ALSSolver = .cg

    @Option(help: "Conjugate-gradient steps per vector and iteration.")
    var cgSteps: Int = 3

    @Option(help: "Threads (0 = every core).")
    var threads: Int = 0

    @Option(help: "Seed of the initial factors.")
    var seed: UInt64 = 0

    @Flag(help: "Compute and log the training loss after each iteration (slower).")
    var loss = false

    @Option(help: "Write load and per-iteration timings, sizes and peak memory as JSON to this file.")
    var timings: String?

    func validate() throws {
        try Self.validateALSOptions(
            factors: factors, regularization: regularization, alpha: alpha, iterations: iterations, cgSteps: cgSteps,
            threads: threads, confidenceFloor: confidenceFloor)
    }

    /// Refuses ALS options out of range with a message naming the flag (``ALSParameters/validate()`` checks the
    /// same ranges for library users).
    static func validateALSOptions(
        factors: Int, regularization: Float, alpha: Float, iterations: Int, cgSteps: Int = 3, threads: Int,
        confidenceFloor: Float = 0
    ) throws {
        guard factors > 0 else { throw ValidationError("--factors must be positive, got \(factors)") }
        guard regularization >= 0, regularization.isFinite else {
            throw ValidationError("--regularization must be >= 0, got \(regularization)")
        }
        guard alpha > 0, alpha.isFinite else { throw ValidationError("--alpha must be > 0, got \(alpha)") }
        guard iterations >= 0 else { throw ValidationError("--iterations must be >= 0, got \(iterations)") }
        guard cgSteps > 0 else { throw ValidationError("--cg-steps must be positive, got \(cgSteps)") }
        guard threads >= 0 else { throw ValidationError("--threads must be >= 0, got \(threads)") }
        guard confidenceFloor >= 0, confidenceFloor.isFinite else {
            throw ValidationError("--confidence-floor must be >= 0, got \(confidenceFloor)")
        }
    }

    func run() throws {
        let logger = TrainerLogging.logger()
        let params = ALSParameters(
            factors: factors, regularization: regularization, alpha: alpha, iterations: iterations, solver: solver,
            cgSteps: cgSteps, seed: seed, threads: threads, calculateLoss: loss, confidenceFloor: confidenceFloor)
        try params.validate()
        let weighting = try weightingOptions.confidenceWeighting()

        let loadStart = Date()
        let log = try inputFormat.load(input, logger: logger)
        let raw = log.matrix()
        let userItems = weighting.apply(toUserItems: raw)
        let loadSeconds = Date().timeIntervalSince(loadStart)
        logger.info("training matrix", metadata: [
            "users": "\(userItems.rows)", "items": "\(userItems.cols)", "nnz": "\(userItems.nnz)",
            "weighting": .string("\(weighting)"),
        ])

        var model = ImplicitALS(parameters: params)
        let progress = ProgressReporter(stage: "fit", total: iterations, logger: logger)
        progress.update(0)
        let reports = try model.fit(userItems) { report in
            var fields = [("s/iter", String(format: "%.2f", report.seconds))]
            if let l = report.loss { fields.append(("loss", String(format: "%.6f", l))) }
            progress.update(report.iteration, fields: fields)
        }
        let fitSeconds = reports.last?.elapsed ?? 0

        let iso = ISO8601DateFormatter().string(from: Date())
        let bundle = ModelBundle(
            userIDs: log.userIDs, itemIDs: log.itemIDs, model: model, userItems: userItems,
            metadata: [
                "input": input, "weighting": "\(weighting)", "created_at": iso, "command": "fit",
                "fit_seconds": String(format: "%.3f", fitSeconds),
            ])
        try bundle.write(to: output)
        logger.info("bundle written", metadata: [
            "path": .string(output), "users": "\(model.userCount)", "items": "\(model.itemCount)",
            "fit_seconds": .string(String(format: "%.2f", fitSeconds)),
            "peak_rss_mib": .string(String(format: "%.0f", peakResidentMiB())),
        ])

        if let timings {
            let json: [String: Any] = [
                "users": userItems.rows, "items": userItems.cols, "nnz": userItems.nnz, "factors": factors,
                "threads": params.effectiveThreads, "solver": solver.rawValue, "load_seconds": loadSeconds,
                "fit_seconds": fitSeconds, "iteration_seconds": reports.map(\.seconds),
                "losses": reports.compactMap(\.loss), "peak_rss_mib": peakResidentMiB(),
                "avx2_kernels": Kernels.usesAVX2,
            ]
            let data = try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys])
            try data.write(to: URL(fileURLWithPath: timings))
        }
    }
}

extension ALSSolver: ExpressibleByArgument {}
