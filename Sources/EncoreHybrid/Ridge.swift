import EncoreCore

/// Multi-output ridge regression with an intercept: `y ≈ ȳ + (x - x̄) B`.
///
/// With `X` the `m x d` inputs and `Y` the `m x f` targets of the training rows, both centred on their column means
/// `x̄` and `ȳ`, the coefficients are `B = (XᵀX + λI)⁻¹ XᵀY` (`d x f`); the intercept is not penalised. The Gram
/// matrix is one `ssyrk`, `XᵀY` one `sgemm`, and the system is solved by one Cholesky factorisation (`spotrf`) and a
/// triangular solve per output column (`spotrs`).
public struct RidgeRegression: Sendable, Equatable {
    /// The input column means `x̄` (`d`).
    public let inputMean: [Float]
    /// The output column means `ȳ` (`f`).
    public let outputMean: [Float]
    /// The coefficients `B`, `d x f`.
    public let coefficients: Matrix
    /// The penalty `λ` used.
    public let lambda: Float

    /// A model from its parts.
    public init(inputMean: [Float], outputMean: [Float], coefficients: Matrix, lambda: Float) throws(HybridError) {
        guard coefficients.rows == inputMean.count, coefficients.cols == outputMean.count else {
            throw .shapeMismatch(
                "ridge coefficients are \(coefficients.rows) x \(coefficients.cols), means \(inputMean.count) and \(outputMean.count)")
        }
        self.inputMean = inputMean
        self.outputMean = outputMean
        self.coefficients = coefficients
        self.lambda = lambda
    }

    /// Fits the regression of `y`'s rows on `x`'s rows over the training rows `rows` (all rows when `nil`).
    /// - Throws: ``HybridError/invalidParameter(name:value:expected:)`` for a negative or non-finite `lambda` or
    ///   fewer than one training row, ``HybridError/shapeMismatch(_:)`` when `x` and `y` differ in rows,
    ///   ``HybridError/solveFailed(_:)`` when the system is singular (`λ = 0` with collinear inputs).
    public static func fit(x: Matrix, y: Matrix, rows: [Int]? = nil, lambda: Float) throws(HybridError) -> RidgeRegression {
        let system = try RidgeSystem(x: x, y: y, rows: rows ?? Array(0..<x.rows))
        return try system.solve(lambda: lambda)
    }

    /// The predictions `ȳ + (x - x̄) B` for every row of `x` (`x.rows x f`).
    /// - Throws: ``HybridError/shapeMismatch(_:)`` when `x` has another number of columns than the model's inputs.
    public func predict(_ x: Matrix) throws(HybridError) -> Matrix {
        let d = inputMean.count, f = outputMean.count
        guard x.cols == d else { throw .shapeMismatch("ridge inputs have \(d) columns, the matrix \(x.cols)") }
        var centred = x
        for r in 0..<x.rows { for c in 0..<d { centred.storage[r * d + c] -= inputMean[c] } }
        var out = Matrix(rows: x.rows, cols: f)
        for r in 0..<x.rows { for c in 0..<f { out.storage[r * f + c] = outputMean[c] } }
        guard x.rows > 0, d > 0, f > 0 else { return out }
        centred.storage.withUnsafeBufferPointer { a in
            coefficients.storage.withUnsafeBufferPointer { b in
                out.storage.withUnsafeMutableBufferPointer { c in
                    BLAS.gemmAB(a.baseAddress!, b.baseAddress!, c.baseAddress!, m: x.rows, n: f, k: d, beta: 1)
                }
            }
        }
        return out
    }

    /// The prediction for one input vector.
    public func predict(vector: [Float]) throws(HybridError) -> [Float] {
        try predict(try Matrix.checked(rows: 1, cols: vector.count, storage: vector)).row(0)
    }
}

extension Matrix {
    /// `Matrix(rows:cols:storage:)` as a result, so hybrid code can rethrow it as its own error.
    static func checked(rows: Int, cols: Int, storage: [Float]) throws(HybridError) -> Matrix {
        do { return try Matrix(rows: rows, cols: cols, storage: storage) } catch { throw .shapeMismatch(error.description) }
    }
}

/// The centred normal equations of one ridge problem, computed once and solved for several penalties.
struct RidgeSystem: Sendable {
    let d: Int
    let f: Int
    let rows: Int
    let inputMean: [Float]
    let outputMean: [Float]
    /// `XᵀX` of the centred inputs, `d x d`.
    let gram: [Float]
    /// `XᵀY` of the centred inputs and outputs, `d x f`.
    let cross: [Float]

    init(x: Matrix, y: Matrix, rows: [Int]) throws(HybridError) {
        guard x.rows == y.rows else { throw .shapeMismatch("ridge inputs have \(x.rows) rows, targets \(y.rows)") }
        guard !rows.isEmpty else {
            throw .invalidParameter(name: "rows", value: "0", expected: "at least one training row")
        }
        for r in rows where r < 0 || r >= x.rows {
            throw .shapeMismatch("training row \(r) outside 0..<\(x.rows)")
        }
        let d = x.cols, f = y.cols, m = rows.count
        self.d = d
        self.f = f
        self.rows = m
        let xm = Self.columnMeans(x, rows: rows), ym = Self.columnMeans(y, rows: rows)
        var xc = [Float](repeating: 0, count: m * d), yc = [Float](repeating: 0, count: m * f)
        for (j, r) in rows.enumerated() {
            for c in 0..<d { xc[j * d + c] = x.storage[r * d + c] - xm[c] }
            for c in 0..<f { yc[j * f + c] = y.storage[r * f + c] - ym[c] }
        }
        var gram = [Float](repeating: 0, count: d * d), cross = [Float](repeating: 0, count: d * f)
        if d > 0 {
            xc.withUnsafeBufferPointer { a in
                gram.withUnsafeMutableBufferPointer { g in BLAS.gram(a.baseAddress!, m: m, k: d, into: g.baseAddress!) }
                if f > 0 {
                    yc.withUnsafeBufferPointer { b in
                        cross.withUnsafeMutableBufferPointer { c in
                            BLAS.gemmAtB(a.baseAddress!, b.baseAddress!, c.baseAddress!, m: m, n: f, k: d)
                        }
                    }
                }
            }
        }
        self.inputMean = xm
        self.outputMean = ym
        self.gram = gram
        self.cross = cross
    }

    /// The mean of the trace of `XᵀX` over its `d` diagonal entries: the scale the penalty grid is relative to.
    var meanDiagonal: Float {
        guard d > 0 else { return 0 }
        var s = 0.0
        for i in 0..<d { s += Double(gram[i * d + i]) }
        return Float(s / Double(d))
    }

    /// Solves `(XᵀX + λI) B = XᵀY`.
    func solve(lambda: Float) throws(HybridError) -> RidgeRegression {
        guard lambda >= 0, lambda.isFinite else {
            throw .invalidParameter(name: "lambda", value: "\(lambda)", expected: "a finite value >= 0")
        }
        var a = gram
        for i in 0..<d { a[i * d + i] += lambda }
        var b = [Float](repeating: 0, count: d * f)
        if d > 0 {
            do throws(LinalgError) {
                try a.withUnsafeMutableBufferPointer { (p) throws(LinalgError) in try BLAS.choleskyFactor(p.baseAddress!, n: d) }
                var column = [Float](repeating: 0, count: d)
                for j in 0..<f {
                    for i in 0..<d { column[i] = cross[i * f + j] }
                    try a.withUnsafeBufferPointer { (fa) throws(LinalgError) in
                        try column.withUnsafeMutableBufferPointer { (col) throws(LinalgError) in
                            try BLAS.choleskySolveFactored(fa.baseAddress!, n: d, col.baseAddress!)
                        }
                    }
                    for i in 0..<d { b[i * f + j] = column[i] }
                }
            } catch {
                throw .solveFailed("ridge system of \(d) inputs over \(rows) rows with lambda \(lambda): \(error)")
            }
        }
        return try RidgeRegression(
            inputMean: inputMean, outputMean: outputMean, coefficients: try Matrix.checked(rows: d, cols: f, storage: b),
            lambda: lambda)
    }

    static func columnMeans(_ m: Matrix, rows: [Int]) -> [Float] {
        var s = [Double](repeating: 0, count: m.cols)
        for r in rows { for c in 0..<m.cols { s[c] += Double(m.storage[r * m.cols + c]) } }
        return s.map { Float($0 / Double(max(1, rows.count))) }
    }
}
