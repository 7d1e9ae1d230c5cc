import Foundation

/// Implicit-feedback matrix factorisation by alternating least squares (Hu, Koren and Volinsky 2008).
///
/// The model minimises `Σᵤᵢ cᵤᵢ (pᵤᵢ − xᵤ·yᵢ)² + λ(Σ‖xᵤ‖² + Σ‖yᵢ‖²)` where `pᵤᵢ = 1` and `cᵤᵢ = alpha · rᵤᵢ` for the
/// observed pairs and `pᵤᵢ = 0`, `cᵤᵢ = 1` for all others, exactly as the Python library `implicit` does.
public struct ImplicitALS: Sendable {
    /// The hyper-parameters.
    public var parameters: ALSParameters
    /// One row per user.
    public var userFactors: Matrix
    /// One row per item.
    public var itemFactors: Matrix

    /// An unfitted model.
    public init(parameters: ALSParameters = ALSParameters()) {
        self.parameters = parameters
        self.userFactors = Matrix(rows: 0, cols: parameters.factors)
        self.itemFactors = Matrix(rows: 0, cols: parameters.factors)
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
    }

    /// The number of users the model knows.
    public var userCount: Int { userFactors.rows }
    /// The number of items the model knows.
    public var itemCount: Int { itemFactors.rows }
}
