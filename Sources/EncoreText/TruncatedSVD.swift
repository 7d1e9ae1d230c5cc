internal import CBLAS
internal import CLAPACKE
import EncoreCore

/// A truncated singular value decomposition of a sparse matrix `A` (documents x terms): its largest singular values
/// and right singular vectors (the components).
///
/// ``randomized(_:rank:oversamples:powerIterations:seed:threads:)`` is Halko, Martinsson and Tropp's algorithm as
/// scikit-learn's `randomized_svd` runs it (a Gaussian test matrix with `rank + oversamples` columns, power iterations
/// re-orthonormalised by QR, the SVD of the small projected matrix); ``exact(_:rank:)`` decomposes the dense matrix.
/// Signs are fixed as scikit-learn's `TruncatedSVD` fixes them: each component's entry of largest magnitude is
/// positive.
public struct TruncatedSVD: Sendable, Equatable {
    /// The singular values, largest first.
    public let singularValues: [Float]
    /// The components: row `i` is the `i`-th right singular vector (`rank x columns`).
    public let components: Matrix

    /// The number of components.
    public var rank: Int { singularValues.count }

    /// A decomposition from its parts (rows of `components` are the right singular vectors).
    public init(singularValues: [Float], components: Matrix) throws(TextError) {
        guard components.rows == singularValues.count else {
            throw .invalidParameter("\(singularValues.count) singular values but \(components.rows) components")
        }
        self.singularValues = singularValues
        self.components = components
    }

    private init(unchecked singularValues: [Float], components: Matrix) {
        self.singularValues = singularValues
        self.components = components
    }

    static func checkRank(_ rank: Int, _ a: CSRMatrix) throws(TextError) {
        let bound = min(a.rows, a.cols)
        guard rank >= 1 else { throw .invalidParameter("the number of dimensions must be positive, got \(rank)") }
        guard rank <= bound else {
            throw .invalidParameter("\(rank) dimensions exceed min(documents \(a.rows), terms \(a.cols)) = \(bound)")
        }
    }

    /// The randomized truncated SVD of `a` to `rank` components.
    ///
    /// `transposed` is `a`'s transpose when the caller has it (computed otherwise).
    public static func randomized(
        _ a: CSRMatrix, transposed: CSRMatrix? = nil, rank: Int, oversamples: Int = 10, powerIterations: Int = 5,
        seed: UInt64 = 0, threads: Int = 1, progress: ((Int, Int) -> Void)? = nil
    ) throws(TextError) -> TruncatedSVD {
        try checkRank(rank, a)
        guard oversamples >= 0 else { throw .invalidParameter("oversamples must be >= 0, got \(oversamples)") }
        guard powerIterations >= 0 else { throw .invalidParameter("power iterations must be >= 0, got \(powerIterations)") }
        let at = transposed ?? a.transposed()
        // Work on the taller of A and A^T, as scikit-learn does.
        let flip = a.rows < a.cols
        let m = flip ? at : a, mt = flip ? a : at
        let l = min(rank + oversamples, min(a.rows, a.cols))
        let r = m.rows, c = m.cols

        // Q = M * Omega, Omega a c x l standard normal matrix.
        var rng = SplitMix64(seed: seed)
        var omega = [Float](repeating: 0, count: c * l)
        for i in 0..<omega.count { omega[i] = Float(rng.nextGaussian()) }
        var q = [Float](repeating: 0, count: r * l)
        var z = [Float](repeating: 0, count: c * l)
        let steps = 2 * powerIterations + 3
        SparseProducts.multiply(m, omega, columns: l, into: &q, threads: threads)
        progress?(1, steps)
        for iteration in 0..<powerIterations {
            try orthonormalize(&q, rows: r, cols: l)
            SparseProducts.multiply(mt, q, columns: l, into: &z, threads: threads)
            try orthonormalize(&z, rows: c, cols: l)
            progress?(2 + 2 * iteration, steps)
            SparseProducts.multiply(m, z, columns: l, into: &q, threads: threads)
            progress?(3 + 2 * iteration, steps)
        }
        try orthonormalize(&q, rows: r, cols: l)
        // B = Q^T M = (M^T Q)^T; decompose C = M^T Q (c x l) = W S Z^T, so B = Z S W^T.
        SparseProducts.multiply(mt, q, columns: l, into: &z, threads: threads)
        let (s, w, vt) = try thinSVD(&z, rows: c, cols: l)
        progress?(steps - 1, steps)
        // A's right singular vectors: W when M = A; Q Z (M's left ones) when M = A^T.
        var comps = Matrix(rows: rank, cols: a.cols)
        if !flip {
            for i in 0..<rank { for j in 0..<a.cols { comps[i, j] = w[j * l + i] } }
        } else {
            var qz = [Float](repeating: 0, count: r * l)
            q.withUnsafeBufferPointer { qp in
                vt.withUnsafeBufferPointer { vp in
                    qz.withUnsafeMutableBufferPointer { o in
                        BLAS.gemmABt(qp.baseAddress!, vp.baseAddress!, o.baseAddress!, m: r, n: l, k: l)
                    }
                }
            }
            for i in 0..<rank { for j in 0..<a.cols { comps[i, j] = qz[j * l + i] } }
        }
        progress?(steps, steps)
        return TruncatedSVD(unchecked: Array(s.prefix(rank)), components: flipSigns(comps))
    }

    /// The exact truncated SVD of `a` (a dense LAPACK `sgesdd`; for small corpora).
    ///
    /// - Throws: ``TextError/invalidParameter(_:)`` when the dense matrix would exceed 200 million values.
    public static func exact(_ a: CSRMatrix, rank: Int) throws(TextError) -> TruncatedSVD {
        try checkRank(rank, a)
        let n = a.rows, d = a.cols
        guard n * d <= 200_000_000 else {
            throw .invalidParameter("exact SVD of \(n) x \(d) needs a dense matrix of \(n * d) values; use the randomized one")
        }
        var dense = [Float](repeating: 0, count: n * d)
        for row in 0..<n {
            for p in a.indptr[row]..<a.indptr[row + 1] { dense[row * d + Int(a.indices[p])] = a.values[p] }
        }
        let (s, _, vt) = try thinSVD(&dense, rows: n, cols: d)
        let comps: Matrix
        do { comps = try Matrix(rows: rank, cols: d, storage: Array(vt.prefix(rank * d))) } catch {
            throw .internalError("the \(rank) x \(d) components of the exact SVD: \(error)")
        }
        return TruncatedSVD(unchecked: Array(s.prefix(rank)), components: flipSigns(comps))
    }

    /// The thin SVD `A = U S V^T` of the `rows x cols` row-major `a` (destroyed) by LAPACK `sgesdd`: with
    /// `k = min(rows, cols)`, `s` has `k` values (largest first), `u` is `rows x k` and `vt` is `k x cols`.
    static func thinSVD(_ a: inout [Float], rows: Int, cols: Int) throws(TextError) -> (s: [Float], u: [Float], vt: [Float]) {
        let k = min(rows, cols)
        var s = [Float](repeating: 0, count: k)
        var u = [Float](repeating: 0, count: rows * k)
        var vt = [Float](repeating: 0, count: k * cols)
        let info = LAPACKE_sgesdd(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "S")), Int32(rows), Int32(cols), &a, Int32(cols),
                                  &s, &u, Int32(k), &vt, Int32(cols))
        guard info == 0 else { throw .lapackFailure(routine: "sgesdd", info: info) }
        return (s, u, vt)
    }

    /// Makes each row's entry of largest magnitude positive (scikit-learn's `svd_flip(u_based_decision=False)`).
    static func flipSigns(_ m: Matrix) -> Matrix {
        var out = m
        for i in 0..<m.rows {
            var best = 0
            for j in 0..<m.cols where abs(m[i, j]) > abs(m[i, best]) { best = j }
            if m.cols > 0 && m[i, best] < 0 { for j in 0..<m.cols { out[i, j] = -m[i, j] } }
        }
        return out
    }

    /// Replaces the `rows x cols` row-major matrix (rows >= cols) by the Q of its QR factorization.
    static func orthonormalize(_ a: inout [Float], rows: Int, cols: Int) throws(TextError) {
        var tau = [Float](repeating: 0, count: cols)
        var info = LAPACKE_sgeqrf(LAPACK_ROW_MAJOR, Int32(rows), Int32(cols), &a, Int32(cols), &tau)
        guard info == 0 else { throw .lapackFailure(routine: "sgeqrf", info: info) }
        info = LAPACKE_sorgqr(LAPACK_ROW_MAJOR, Int32(rows), Int32(cols), Int32(cols), &a, Int32(cols), &tau)
        guard info == 0 else { throw .lapackFailure(routine: "sorgqr", info: info) }
    }
}

/// Sparse x dense products over CSR rows, in parallel.
public enum SparseProducts {
    /// `y = m * x`, where `x` is `m.cols x columns` and `y` is `m.rows x columns`, both row-major.
    public static func multiply(_ m: CSRMatrix, _ x: [Float], columns l: Int, into y: inout [Float], threads: Int) {
        precondition(x.count >= m.cols * l, "x has \(x.count) values, needs \(m.cols * l)")
        if y.count != m.rows * l { y = [Float](repeating: 0, count: m.rows * l) }
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                m.indptr.withUnsafeBufferPointer { ptr in
                    m.indices.withUnsafeBufferPointer { idx in
                        m.values.withUnsafeBufferPointer { val in
                            let xs = UncheckedSendable(xp.baseAddress!), ys = UncheckedSendable(yp.baseAddress!)
                            let ps = UncheckedSendable(ptr.baseAddress!), ix = UncheckedSendable(idx.baseAddress!)
                            let vs = UncheckedSendable(val.baseAddress!)
                            Parallel.forEach(m.rows, threads: threads, grain: 64) { r in
                                let out = ys.value + r * l
                                out.initialize(repeating: 0, count: l)
                                for p in ps.value[r]..<ps.value[r + 1] {
                                    Kernels.axpy(vs.value[p], xs.value + Int(ix.value[p]) * l, out, l)
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
