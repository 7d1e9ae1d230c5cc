import Foundation
import EncoreCore

/// Implicit-feedback matrix factorisation by alternating least squares (Hu, Koren and Volinsky 2008).
///
/// The model minimizes `Σᵤᵢ cᵤᵢ (pᵤᵢ − xᵤ·yᵢ)² + λ(Σ‖xᵤ‖² + Σ‖yᵢ‖²)` where `pᵤᵢ = 1` and `cᵤᵢ = alpha · rᵤᵢ` for the
/// observed pairs and `pᵤᵢ = 0`, `cᵤᵢ = 1` for all others, exactly as the Python library `implicit` does.
public struct ImplicitALS: Sendable {
    /// The hyper-parameters.
    public var parameters: ALSParameters
    /// One row per user.
    public internal(set) var userFactors: Matrix {
        didSet { userGram = BLAS.gram(userFactors, threads: parameters.effectiveThreads) }
    }
    /// One row per item.
    public internal(set) var itemFactors: Matrix {
        didSet {
            itemGram = BLAS.gram(itemFactors, threads: parameters.effectiveThreads)
            itemNorms = itemFactors.rowNorms()
        }
    }
    /// `YᵀY` of the item factors, kept current so fold-in and explanations cost O(history · f²), not O(items · f²).
    public private(set) var itemGram: Matrix
    /// `XᵀX` of the user factors (for refitting items).
    public private(set) var userGram: Matrix
    /// The Euclidean norm of every item vector (for cosine similarity).
    public private(set) var itemNorms: [Float]

    /// An unfitted model.
    public init(parameters: ALSParameters = ALSParameters()) {
        self.parameters = parameters
        self.userFactors = Matrix(rows: 0, cols: parameters.factors)
        self.itemFactors = Matrix(rows: 0, cols: parameters.factors)
        self.itemGram = Matrix(rows: parameters.factors, cols: parameters.factors)
        self.userGram = itemGram
        self.itemNorms = []
    }

    /// A model over existing factors (for example read from a bundle).
    public init(parameters: ALSParameters, userFactors: Matrix, itemFactors: Matrix) throws(FactorizationError) {
        guard userFactors.cols == parameters.factors, itemFactors.cols == parameters.factors else {
            throw .shapeMismatch(
                "factors have \(userFactors.cols) and \(itemFactors.cols) columns, parameters say \(parameters.factors)")
        }
        self.parameters = parameters
        self.userFactors = userFactors
        self.itemFactors = itemFactors
        self.userGram = BLAS.gram(userFactors, threads: parameters.effectiveThreads)
        self.itemGram = BLAS.gram(itemFactors, threads: parameters.effectiveThreads)
        self.itemNorms = itemFactors.rowNorms()
    }

    /// The number of users the model knows.
    public var userCount: Int { userFactors.rows }
    /// The number of items the model knows.
    public var itemCount: Int { itemFactors.rows }
}
