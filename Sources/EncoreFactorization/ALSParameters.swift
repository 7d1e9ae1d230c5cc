import EncoreCore

/// The solver ``ImplicitALS`` uses for each least-squares step.
public enum ALSSolver: String, Sendable, Codable, CaseIterable {
    /// Conjugate gradient (Takács et al. 2011), a few steps warm-started from the previous vector.
    case cg
    /// Exact solve by Cholesky factorisation of `YᵀCᵤY + λI` (LAPACK `sposv`).
    case cholesky
}

/// Hyper-parameters of ``ImplicitALS``, with the meanings and defaults of the Python library `implicit` 0.7.
public struct ALSParameters: Sendable, Equatable, Codable {
    /// The number of latent factors.
    public var factors: Int
    /// The L2 regularization weight λ.
    public var regularization: Float
    /// Confidence scale: the confidence of an observed pair is `alpha * value` (see ``confidenceFloor``); unobserved
    /// pairs have confidence 1.
    public var alpha: Float
    /// The number of ALS sweeps (users, then items).
    public var iterations: Int
    /// The least-squares solver.
    public var solver: ALSSolver
    /// Conjugate-gradient steps per vector and sweep (`cg` solver only).
    public var cgSteps: Int
    /// Seed of the random initial factors.
    public var seed: UInt64
    /// Worker threads; 0 uses every core.
    public var threads: Int
    /// Whether to compute the training loss after each iteration (costs about one extra half-sweep).
    public var calculateLoss: Bool
    /// The least confidence of an observed pair: a stored value `r` has confidence `max(alpha * |r|, floor)`.
    ///
    /// `implicit` takes `alpha * r` as it is (the default 0 here), so a weight below 1 (BM25 gives many, mostly to
    /// popular tracks and heavy listeners) makes a played track count for less than one never played. In Hu, Koren
    /// and Volinsky's model, and in Spark's ALS, the confidence `1 + alpha * r` is never below 1: a floor of 1 gives
    /// that rule, so every observed pair is at least as certain as an unobserved one.
    public var confidenceFloor: Float

    /// Parameters with `implicit`'s defaults unless given.
    public init(
        factors: Int = 100, regularization: Float = 0.01, alpha: Float = 1.0, iterations: Int = 15,
        solver: ALSSolver = .cg, cgSteps: Int = 3, seed: UInt64 = 0, threads: Int = 0, calculateLoss: Bool = false,
        confidenceFloor: Float = 0
    ) {
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.solver = solver
        self.cgSteps = cgSteps
        self.seed = seed
        self.threads = threads
        self.calculateLoss = calculateLoss
        self.confidenceFloor = confidenceFloor
    }

    private enum CodingKeys: String, CodingKey {
        case factors, regularization, alpha, iterations, solver, cgSteps, seed, threads, calculateLoss, confidenceFloor
    }

    /// Decodes parameters; a record from before ``confidenceFloor`` existed has `implicit`'s rule (0).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            factors: try c.decode(Int.self, forKey: .factors),
            regularization: try c.decode(Float.self, forKey: .regularization),
            alpha: try c.decode(Float.self, forKey: .alpha),
            iterations: try c.decode(Int.self, forKey: .iterations),
            solver: try c.decode(ALSSolver.self, forKey: .solver),
            cgSteps: try c.decode(Int.self, forKey: .cgSteps),
            seed: try c.decode(UInt64.self, forKey: .seed),
            threads: try c.decode(Int.self, forKey: .threads),
            calculateLoss: try c.decode(Bool.self, forKey: .calculateLoss),
            confidenceFloor: try c.decodeIfPresent(Float.self, forKey: .confidenceFloor) ?? 0)
    }

    /// The confidence of a stored value `r`: `alpha * r`, its magnitude raised to ``confidenceFloor`` when below it.
    /// The sign is kept: a negative value (or zero) is a negative example (preference 0).
    @inline(__always)
    public func confidence(_ value: Float) -> Float {
        let c = alpha * value
        if c > 0 { return Swift.max(c, confidenceFloor) }
        return Swift.min(c, -confidenceFloor)
    }

    /// Checks every field is in range.
    public func validate() throws(FactorizationError) {
        guard factors > 0 else { throw .invalidParameter("factors must be positive, got \(factors)") }
        guard regularization >= 0, regularization.isFinite else {
            throw .invalidParameter("regularization must be >= 0, got \(regularization)")
        }
        guard alpha > 0, alpha.isFinite else { throw .invalidParameter("alpha must be > 0, got \(alpha)") }
        guard iterations >= 0 else { throw .invalidParameter("iterations must be >= 0, got \(iterations)") }
        guard cgSteps > 0 else { throw .invalidParameter("cgSteps must be positive, got \(cgSteps)") }
        guard threads >= 0 else { throw .invalidParameter("threads must be >= 0, got \(threads)") }
        guard confidenceFloor >= 0, confidenceFloor.isFinite else {
            throw .invalidParameter("confidence floor must be >= 0, got \(confidenceFloor)")
        }
    }

    /// The number of threads to run on.
    public var effectiveThreads: Int { threads == 0 ? Parallel.coreCount : threads }
}

/// Errors from fitting and querying factor models.
public enum FactorizationError: Error, Equatable, CustomStringConvertible {
    /// A hyper-parameter is out of range.
    case invalidParameter(String)
    /// The data does not match the model's shape.
    case shapeMismatch(String)
    /// A user or item index is outside the model.
    case unknownIndex(String)
    /// A linear solve failed.
    case solveFailed(String)

    public var description: String {
        switch self {
        case .invalidParameter(let s): return "invalid parameter: \(s)"
        case .shapeMismatch(let s): return "shape mismatch: \(s)"
        case .unknownIndex(let s): return "unknown index: \(s)"
        case .solveFailed(let s): return "solve failed: \(s)"
        }
    }
}
