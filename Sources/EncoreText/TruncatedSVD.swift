internal import CBLAS
internal import CLAPACKE
import EncoreCore

/// A truncated singular value decomposition of a sparse matrix `A` (documents x terms): its largest singular values
/// and right singular vectors (the components).
///
/// ``randomized(_:rank:oversamples:powerIterations:seed:threads:)`` is Halko, Martinsson and Tropp's algorithm as
/// scikit-learn's `randomized_svd` runs it (a Gaussian test matrix with `rank + oversamples` columns, power iterations
/// kept well scaled by LU and orthonormalised by QR after the last, the SVD of the small projected matrix);
/// ``exact(_:rank:)`` decomposes the dense matrix.
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
        // The sparse products run on `threads` threads of their own; LAPACK's calls in between are small.
        return try BLAS.withOneThread { () throws(TextError) -> TruncatedSVD in
            try randomizedProducts(a, transposed: transposed, rank: rank, oversamples: oversamples,
                                   powerIterations: powerIterations, seed: seed, threads: threads, progress: progress)
        }
    }

    private static func randomizedProducts(
        _ a: CSRMatrix, transposed: CSRMatrix?, rank: Int, oversamples: Int, powerIterations: Int, seed: UInt64,
        threads: Int, progress: ((Int, Int) -> Void)?
    ) throws(TextError) -> TruncatedSVD {
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
        // Between power iterations, LU (P L of the pivoted factorization) keeps the basis well scaled with a quarter of
        // QR's arithmetic, as scikit-learn's `power_iteration_normalizer="auto"` does for more than two iterations.
        var scratch: [Float] = []
        for iteration in 0..<powerIterations {
            try normalizeLU(&q, rows: r, cols: l, scratch: &scratch)
            SparseProducts.multiply(mt, q, columns: l, into: &z, threads: threads)
            try normalizeLU(&z, rows: c, cols: l, scratch: &scratch)
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

    /// Replaces the `rows x cols` row-major matrix (rows >= cols) by the Q of its QR factorization (LAPACK
    /// `sgeqrf`/`sorgqr` on a column-major copy: the row-major wrapper transposes element by element, and LQ on the
    /// transposed layout works along strided rows, both several times slower).
    static func orthonormalize(_ a: inout [Float], rows: Int, cols: Int) throws(TextError) {
        var c = [Float](repeating: 0, count: rows * cols)
        transpose(a, rows: rows, cols: cols, into: &c)
        var tau = [Float](repeating: 0, count: cols)
        var info = LAPACKE_sgeqrf(LAPACK_COL_MAJOR, Int32(rows), Int32(cols), &c, Int32(rows), &tau)
        guard info == 0 else { throw .lapackFailure(routine: "sgeqrf", info: info) }
        info = LAPACKE_sorgqr(LAPACK_COL_MAJOR, Int32(rows), Int32(cols), Int32(cols), &c, Int32(rows), &tau)
        guard info == 0 else { throw .lapackFailure(routine: "sorgqr", info: info) }
        transpose(c, rows: cols, cols: rows, into: &a)
    }

    /// Replaces the `rows x cols` row-major matrix (rows >= cols) by `P L` of its partially pivoted LU factorization
    /// `A = P L U` (scipy's `lu(permute_l=True)`): the same column space when `A` has full rank, entries at most 1 in
    /// magnitude. `scratch` holds the column-major copy LAPACK's `sgetrf` factors.
    static func normalizeLU(_ a: inout [Float], rows: Int, cols: Int, scratch: inout [Float]) throws(TextError) {
        if scratch.count != rows * cols { scratch = [Float](repeating: 0, count: rows * cols) }
        transpose(a, rows: rows, cols: cols, into: &scratch)
        var pivots = [Int32](repeating: 0, count: cols)
        // info > 0 is an exactly zero pivot of U; L (all that is kept) is still complete, as in scipy.
        let info = LAPACKE_sgetrf_work(LAPACK_COL_MAJOR, Int32(rows), Int32(cols), &scratch, Int32(rows), &pivots)
        guard info >= 0 else { throw .lapackFailure(routine: "sgetrf", info: info) }
        // sgetrf factors P^T A, whose row k is A's row order[k]; so row order[k] of P L is row k of L.
        var order = [Int32](repeating: 0, count: rows)
        for i in 0..<rows { order[i] = Int32(i) }
        for i in 0..<cols { order.swapAt(i, Int(pivots[i]) - 1) }
        // Row k of L goes to row order[k], in tiles (the column-major reads and row-major writes both stay in cache);
        // then the unit diagonal and the zeros above it.
        let tile = 32
        scratch.withUnsafeBufferPointer { lp in
            a.withUnsafeMutableBufferPointer { op in
                let l = lp.baseAddress!, out = op.baseAddress!
                for k0 in stride(from: 0, to: rows, by: tile) {
                    let k1 = min(rows, k0 + tile)
                    for j0 in stride(from: 0, to: cols, by: tile) {
                        let j1 = min(cols, j0 + tile)
                        for k in k0..<k1 {
                            let row = out + Int(order[k]) * cols
                            for j in j0..<j1 { row[j] = l[j * rows + k] }
                        }
                    }
                }
                for k in 0..<min(rows, cols) {
                    let row = out + Int(order[k]) * cols
                    row[k] = 1
                    for j in (k + 1)..<cols { row[j] = 0 }
                }
            }
        }
    }

    /// Writes the `rows x cols` row-major `a` as its column-major copy (`rows x cols` with leading dimension `rows`)
    /// into `out`, in cache-sized tiles.
    static func transpose(_ a: [Float], rows: Int, cols: Int, into out: inout [Float]) {
        let tile = 32
        a.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for i0 in stride(from: 0, to: rows, by: tile) {
                    let i1 = min(rows, i0 + tile)
                    for j0 in stride(from: 0, to: cols, by: tile) {
                        let j1 = min(cols, j0 + tile)
                        for j in j0..<j1 { for i in i0..<i1 { dst[j * rows + i] = src[i * cols + j] } }
                    }
                }
            }
        }
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
                            let block = 64
                            Parallel.forEach((m.rows + block - 1) / block, threads: threads, grain: 4) { b in
                                Kernels.sparseRows(indptr: ps.value, indices: ix.value, values: vs.value, x: xs.value,
                                                   y: ys.value, columns: l,
                                                   rows: (b * block)..<min(m.rows, (b + 1) * block))
                            }
                        }
                    }
                }
            }
        }
    }
}
