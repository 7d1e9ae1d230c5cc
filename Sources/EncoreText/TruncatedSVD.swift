internal import CBLAS
internal import CKernels
internal import CLAPACKE
import EncoreCore
import Foundation

/// A truncated singular value decomposition of a sparse matrix `A` (documents x terms): its largest singular values
/// and right singular vectors (the components).
///
/// ``randomized(_:rank:oversamples:powerIterations:seed:threads:progress:)`` is Halko, Martinsson and Tropp's algorithm
/// as scikit-learn's `randomized_svd` runs it (a Gaussian test matrix with `rank + oversamples` columns, power
/// iterations kept well scaled between products and orthonormalised after the last, the SVD of the small projected
/// matrix); the normalizations are CholeskyQR rounds (BLAS-3, in parallel) where the basis is well enough conditioned,
/// scikit-learn's LU and Householder QR otherwise;
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
    /// Products with `a` and with its transpose both run over `a`'s own rows (no transposed copy is made).
    public static func randomized(
        _ a: CSRMatrix, rank: Int, oversamples: Int = 10, powerIterations: Int = 5,
        seed: UInt64 = 0, threads: Int = 1, progress: ((Int, Int) -> Void)? = nil
    ) throws(TextError) -> TruncatedSVD {
        try checkRank(rank, a)
        guard oversamples >= 0 else { throw .invalidParameter("oversamples must be >= 0, got \(oversamples)") }
        guard powerIterations >= 0 else { throw .invalidParameter("power iterations must be >= 0, got \(powerIterations)") }
        // The sparse products run on `threads` threads of their own; LAPACK's calls in between are small.
        return try BLAS.withOneThread { () throws(TextError) -> TruncatedSVD in
            try randomizedProducts(a, rank: rank, oversamples: oversamples,
                                   powerIterations: powerIterations, seed: seed, threads: threads, progress: progress)
        }
    }

    private static func randomizedProducts(
        _ a: CSRMatrix, rank: Int, oversamples: Int, powerIterations: Int, seed: UInt64,
        threads: Int, progress: ((Int, Int) -> Void)?
    ) throws(TextError) -> TruncatedSVD {
        // Work on the taller of A and A^T, as scikit-learn does: M x and M^T x are A's gathered product and its
        // transposed (scattered) one, in one order or the other.
        let flip = a.rows < a.cols
        let l = min(rank + oversamples, min(a.rows, a.cols))
        let r = flip ? a.cols : a.rows, c = flip ? a.rows : a.cols
        func product(_ x: [Float], into y: inout [Float]) {
            if flip {
                SparseProducts.multiplyTransposed(a, x, columns: l, into: &y, threads: threads)
            } else {
                SparseProducts.multiply(a, x, columns: l, into: &y, threads: threads)
            }
        }
        func transposedProduct(_ x: [Float], into y: inout [Float]) {
            if flip {
                SparseProducts.multiply(a, x, columns: l, into: &y, threads: threads)
            } else {
                SparseProducts.multiplyTransposed(a, x, columns: l, into: &y, threads: threads)
            }
        }

        // Q = M * Omega, Omega a c x l standard normal matrix.
        let omega = gaussianMatrix(count: c * l, seed: seed, threads: threads)
        var q = [Float](repeating: 0, count: r * l)
        var z = [Float](repeating: 0, count: c * l)
        let steps = 2 * powerIterations + 3
        product(omega, into: &q)
        progress?(1, steps)
        // Between power iterations the basis is kept well scaled (scikit-learn's `power_iteration_normalizer="auto"`
        // uses LU here): one CholeskyQR round, LU when it declines. Either spans the same space, so only rounding
        // differs.
        var scratch: [Float] = []
        for iteration in 0..<powerIterations {
            try normalizeBasis(&q, rows: r, cols: l, scratch: &scratch, threads: threads)
            transposedProduct(q, into: &z)
            try normalizeBasis(&z, rows: c, cols: l, scratch: &scratch, threads: threads)
            progress?(2 + 2 * iteration, steps)
            product(z, into: &q)
            progress?(3 + 2 * iteration, steps)
        }
        try orthonormalize(&q, rows: r, cols: l, threads: threads)
        // B = Q^T M = (M^T Q)^T; decompose C = M^T Q (c x l) = W S Z^T, so B = Z S W^T.
        transposedProduct(q, into: &z)
        let (s, w, vt) = try tallSVD(&z, rows: c, cols: l, threads: threads)
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
    ///
    /// CholeskyQR2 (two rounds of `A <- A R^-1` with `R^T R = A^T A`, Fukaya et al.) is tried first: two Gram matrices
    /// and triangular solves in BLAS-3 instead of Householder's column sweeps. Its result is orthonormal to working
    /// precision when `A`'s condition number is below about `1 / sqrt(eps)`; when the first Cholesky factor fails or
    /// shows a larger condition, Householder QR runs on the original matrix instead.
    static func orthonormalize(_ a: inout [Float], rows: Int, cols: Int, threads: Int = 1) throws(TextError) {
        if let (q, _, _) = choleskyQR2(a, rows: rows, cols: cols, threads: threads) {
            a = q
            return
        }
        try householderQ(&a, rows: rows, cols: cols)
    }

    /// CholeskyQR2 of the `rows x cols` row-major `a`: `Q` and the two rounds' factors (`A = Q R2 R1`), or `nil` when
    /// `a` is not tall, or a round declines (its Cholesky factor fails or shows too large a condition).
    static func choleskyQR2(_ a: [Float], rows: Int, cols: Int, threads: Int)
        -> (q: [Float], r1: [Float], r2: [Float])? {
        guard rows >= cols, cols > 0 else { return nil }
        var q = a
        var r1 = [Float](), r2 = [Float]()
        guard choleskyQRStep(&q, rows: rows, cols: cols, r: &r1, conditionLimit: 1e3, threads: threads),
              choleskyQRStep(&q, rows: rows, cols: cols, r: &r2, conditionLimit: 10, threads: threads) else { return nil }
        return (q, r1, r2)
    }

    /// One CholeskyQR round on the `rows x cols` row-major `a`: `R = chol(A^T A)` (upper; the Gram matrix summed in
    /// Double, or in Float when `floatGram`, enough to keep a power iteration's basis scaled), then `A <- A R^-1`; `r`
    /// receives `R` (row-major `cols x cols`). Returns false, leaving `a` unchanged, when the factorization fails or
    /// `R`'s diagonal spans more than `conditionLimit` (a lower bound of its condition).
    static func choleskyQRStep(_ a: inout [Float], rows: Int, cols: Int, r: inout [Float], conditionLimit: Float,
                               threads: Int, floatGram: Bool = false) -> Bool {
        let n = cols
        let g = floatGram ? gramFloat(a, rows: rows, cols: cols, threads: threads)
            : gramDouble(a, rows: rows, cols: cols, threads: threads)
        var gd = g
        let info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "U")), Int32(n), &gd, Int32(n))
        guard info == 0 else { return false }
        var lo = Double.infinity, hi = 0.0
        for i in 0..<n { lo = min(lo, gd[i * n + i]); hi = max(hi, gd[i * n + i]) }
        guard lo > 0, hi / lo <= Double(conditionLimit) else { return false }
        r = [Float](repeating: 0, count: n * n)
        for i in 0..<n { for j in i..<n { r[i * n + j] = Float(gd[i * n + j]) } }
        // A <- A R^-1 (row blocks in parallel).
        let block = 4096
        a.withUnsafeMutableBufferPointer { ap in
            r.withUnsafeBufferPointer { rp in
                let base = UncheckedSendable(ap.baseAddress!), rb = UncheckedSendable(rp.baseAddress!)
                Parallel.forEach((rows + block - 1) / block, threads: threads) { b in
                    let lo = b * block, m = min(rows, lo + block) - lo
                    cblas_strsm(CblasRowMajor, CblasRight, CblasUpper, CblasNoTrans, CblasNonUnit, Int32(m), Int32(n), 1,
                                rb.value, Int32(n), base.value + lo * n, Int32(n))
                }
            }
        }
        return true
    }

    /// `A^T A` of the `rows x cols` row-major `a` by Float `ssyrk` on row blocks in parallel, the blocks' sums added in
    /// Double (`cols x cols`, upper triangle).
    static func gramFloat(_ a: [Float], rows: Int, cols: Int, threads: Int) -> [Double] {
        let n = cols
        let parts = max(1, min(threads, rows / max(1, n)))
        let per = (rows + parts - 1) / parts
        let slots = OrderedSlots<[Float]>(count: parts)
        a.withUnsafeBufferPointer { ap in
            let base = UncheckedSendable(ap.baseAddress!)
            Parallel.forEach(parts, threads: parts) { t in
                var acc = [Float](repeating: 0, count: n * n)
                let lo = t * per, m = min(rows, lo + per) - lo
                if m > 0 {
                    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, Int32(n), Int32(m), 1, base.value + lo * n,
                                Int32(n), 0, &acc, Int32(n))
                }
                slots.set(t, acc)
            }
        }
        var g = [Double](repeating: 0, count: n * n)
        for part in slots.take() { for i in 0..<(n * n) { g[i] += Double(part[i]) } }
        return g
    }

    /// `A^T A` of the `rows x cols` row-major `a`, accumulated in Double (row blocks in parallel; `cols x cols`).
    static func gramDouble(_ a: [Float], rows: Int, cols: Int, threads: Int) -> [Double] {
        let n = cols
        let block = 2048
        let blocks = (rows + block - 1) / block
        let parts = max(1, min(threads, blocks))
        let slots = OrderedSlots<[Double]>(count: parts)
        a.withUnsafeBufferPointer { ap in
            let base = UncheckedSendable(ap.baseAddress!)
            Parallel.forEach(parts, threads: parts) { t in
                var acc = [Double](repeating: 0, count: n * n)
                var tile = [Double](repeating: 0, count: block * n)
                var b = t
                while b < blocks {
                    let lo = b * block, m = min(rows, lo + block) - lo
                    let src = base.value + lo * n
                    tile.withUnsafeMutableBufferPointer { t in for i in 0..<(m * n) { t[i] = Double(src[i]) } }
                    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, Int32(n), Int32(m), 1, tile, Int32(n), 1, &acc,
                                Int32(n))
                    b += parts
                }
                slots.set(t, acc)
            }
        }
        var g = [Double](repeating: 0, count: n * n)
        for part in slots.take() { for i in 0..<(n * n) { g[i] += part[i] } }
        return g
    }

    /// The thin SVD of the tall `rows x cols` row-major `a` (destroyed; rows >= cols): CholeskyQR2 `A = Q R`, the SVD
    /// `R = U_r S V^T` of the small factor, `U = Q U_r`. Falls back to ``thinSVD(_:rows:cols:)`` when CholeskyQR
    /// declines (see ``orthonormalize(_:rows:cols:threads:)``).
    static func tallSVD(_ a: inout [Float], rows: Int, cols: Int, threads: Int) throws(TextError)
        -> (s: [Float], u: [Float], vt: [Float]) {
        let n = cols
        guard let (q, r1, r2) = choleskyQR2(a, rows: rows, cols: cols, threads: threads) else {
            return try thinSVD(&a, rows: rows, cols: cols)
        }
        // R = R2 R1.
        var r = [Float](repeating: 0, count: n * n)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n), 1, r2, Int32(n), r1,
                    Int32(n), 0, &r, Int32(n))
        let (s, ur, vt) = try thinSVD(&r, rows: n, cols: n)
        var u = [Float](repeating: 0, count: rows * n)
        let block = 4096
        q.withUnsafeBufferPointer { qp in
            u.withUnsafeMutableBufferPointer { up in
                ur.withUnsafeBufferPointer { urp in
                    let qb = UncheckedSendable(qp.baseAddress!), ub = UncheckedSendable(up.baseAddress!)
                    let rb = UncheckedSendable(urp.baseAddress!)
                    Parallel.forEach((rows + block - 1) / block, threads: threads) { b in
                        let lo = b * block, m = min(rows, lo + block) - lo
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(n), 1,
                                    qb.value + lo * n, Int32(n), rb.value, Int32(n), 0, ub.value + lo * n, Int32(n))
                    }
                }
            }
        }
        return (s, u, vt)
    }

    /// Householder QR's Q of the `rows x cols` row-major `a` (rows >= cols), in place.
    static func householderQ(_ a: inout [Float], rows: Int, cols: Int) throws(TextError) {
        var c = [Float](repeating: 0, count: rows * cols)
        transpose(a, rows: rows, cols: cols, into: &c)
        var tau = [Float](repeating: 0, count: cols)
        var info = LAPACKE_sgeqrf(LAPACK_COL_MAJOR, Int32(rows), Int32(cols), &c, Int32(rows), &tau)
        guard info == 0 else { throw .lapackFailure(routine: "sgeqrf", info: info) }
        info = LAPACKE_sorgqr(LAPACK_COL_MAJOR, Int32(rows), Int32(cols), Int32(cols), &c, Int32(rows), &tau)
        guard info == 0 else { throw .lapackFailure(routine: "sorgqr", info: info) }
        transpose(c, rows: cols, cols: rows, into: &a)
    }

    /// Keeps a power iteration's basis well scaled without changing the space its columns span: one CholeskyQR round
    /// (`A <- A R^-1` with `R^T R = A^T A`, the Gram matrix in Float, row blocks in parallel), whose columns are
    /// orthonormal up to rounding; ``normalizeLU(_:rows:cols:scratch:threads:)`` (scikit-learn's normalizer) when the
    /// Cholesky factor fails or shows a condition above 10^3.
    static func normalizeBasis(_ a: inout [Float], rows: Int, cols: Int, scratch: inout [Float],
                               threads: Int) throws(TextError) {
        var r: [Float] = []
        if rows >= cols, cols > 0,
           choleskyQRStep(&a, rows: rows, cols: cols, r: &r, conditionLimit: 1e3, threads: threads, floatGram: true) {
            return
        }
        try normalizeLU(&a, rows: rows, cols: cols, scratch: &scratch, threads: threads)
    }

    /// Replaces the `rows x cols` row-major matrix (rows >= cols) by `P L` of its partially pivoted LU factorization
    /// `A = P L U` (scipy's `lu(permute_l=True)`): the same column space when `A` has full rank, entries at most 1 in
    /// magnitude. `scratch` holds the column-major copy LAPACK's `sgetrf` factors.
    static func normalizeLU(_ a: inout [Float], rows: Int, cols: Int, scratch: inout [Float],
                            threads: Int = 1) throws(TextError) {
        if scratch.count != rows * cols { scratch = [Float](repeating: 0, count: rows * cols) }
        transpose(a, rows: rows, cols: cols, into: &scratch, threads: threads)
        var pivots = [Int32](repeating: 0, count: cols)
        // info > 0 is an exactly zero pivot of U; L (all that is kept) is still complete, as in scipy.
        let info = LAPACKE_sgetrf_work(LAPACK_COL_MAJOR, Int32(rows), Int32(cols), &scratch, Int32(rows), &pivots)
        guard info >= 0 else { throw .lapackFailure(routine: "sgetrf", info: info) }
        // L, row-major: the transpose of the column-major factor, with its unit diagonal and zeros above it.
        scratch.withUnsafeBufferPointer { lp in
            a.withUnsafeMutableBufferPointer { op in
                transpose(lp.baseAddress!, rows: cols, cols: rows, into: op.baseAddress!, threads: threads)
                let out = op.baseAddress!
                for k in 0..<min(rows, cols) {
                    let row = out + k * cols
                    row[k] = 1
                    for j in (k + 1)..<cols { row[j] = 0 }
                }
                // P L: sgetrf's P is the product S_0 S_1 ... S_{n-1} of its row swaps (row i with row pivots[i]), so
                // the swaps apply to L last one first.
                for i in stride(from: min(rows, cols) - 1, through: 0, by: -1) {
                    let p = Int(pivots[i]) - 1
                    if p != i {
                        let x = out + i * cols, y = out + p * cols
                        for j in 0..<cols { let t = x[j]; x[j] = y[j]; y[j] = t }
                    }
                }
            }
        }
    }

    /// Writes the `rows x cols` row-major `a` as its column-major copy (`rows x cols` with leading dimension `rows`)
    /// into `out`, in cache-sized tiles.
    static func transpose(_ a: [Float], rows: Int, cols: Int, into out: inout [Float], threads: Int = 1) {
        a.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                transpose(src.baseAddress!, rows: rows, cols: cols, into: dst.baseAddress!, threads: threads)
            }
        }
    }

    /// ``transpose(_:rows:cols:into:threads:)`` over pointers: row blocks of `src` in parallel.
    static func transpose(_ src: UnsafePointer<Float>, rows: Int, cols: Int, into dst: UnsafeMutablePointer<Float>,
                          threads: Int) {
        let block = max(16, min(1024, (rows + 2 * max(1, threads) - 1) / (2 * max(1, threads))))
        let sb = UncheckedSendable(src), db = UncheckedSendable(dst)
        Parallel.forEach((rows + block - 1) / block, threads: threads) { b in
            encore_transpose_rows(sb.value, rows, cols, db.value, b * block, min(rows, (b + 1) * block))
        }
    }

    /// `count` standard normal values from `seed`: blocks of 4096 values, each from its own generator seeded by a
    /// draw of a generator seeded with `seed` (so the values do not depend on `threads`), Box-Muller using both of a
    /// pair's values.
    static func gaussianMatrix(count: Int, seed: UInt64, threads: Int) -> [Float] {
        let block = 4096
        let blocks = (count + block - 1) / block
        var seeder = SplitMix64(seed: seed)
        let seeds = (0..<blocks).map { _ in seeder.next() }
        var out = [Float](repeating: 0, count: count)
        out.withUnsafeMutableBufferPointer { op in
            let ob = UncheckedSendable(op.baseAddress!)
            Parallel.forEach(blocks, threads: threads, grain: 4) { b in
                var rng = SplitMix64(seed: seeds[b])
                let lo = b * block, hi = min(count, lo + block)
                var i = lo
                while i < hi {
                    // u in (0, 1]: 24 random bits, never zero.
                    let u = Float((rng.next() >> 40) + 1) * (1.0 / Float(1 << 24))
                    let v = Float(rng.next() >> 40) * (1.0 / Float(1 << 24))
                    let radius = (-2 * Foundation.log(u)).squareRoot(), angle = 2 * Float.pi * v
                    ob.value[i] = radius * Foundation.cos(angle)
                    if i + 1 < hi { ob.value[i + 1] = radius * Foundation.sin(angle) }
                    i += 2
                }
            }
        }
        return out
    }
}

/// Sparse x dense products over CSR rows, in parallel.
public enum SparseProducts {
    /// `y = m^T * x` from `m`'s own rows, where `x` is `m.rows x columns` and `y` is `m.cols x columns`, both row-major:
    /// each thread adds the entries of one range of columns (ranges balanced by their entries) into its rows of `y`.
    public static func multiplyTransposed(_ m: CSRMatrix, _ x: [Float], columns l: Int, into y: inout [Float],
                                          threads: Int) {
        precondition(x.count >= m.rows * l, "x has \(x.count) values, needs \(m.rows * l)")
        if y.count != m.cols * l {
            y = [Float](repeating: 0, count: m.cols * l)
        } else {
            y.withUnsafeMutableBufferPointer { p in p.update(repeating: 0) }
        }
        let parts = max(1, min(threads, m.cols))
        var bounds: [Int32] = [0]
        if parts > 1 {
            var perColumn = [Int](repeating: 0, count: m.cols)
            for c in m.indices { perColumn[Int(c)] += 1 }
            var seen = 0
            for c in 0..<m.cols {
                seen += perColumn[c]
                while bounds.count < parts && seen * parts >= bounds.count * m.nnz { bounds.append(Int32(c + 1)) }
            }
            while bounds.count < parts { bounds.append(Int32(m.cols)) }
        }
        bounds.append(Int32(m.cols))
        let ranges = bounds
        withPointers(m, x, &y) { p in
            Parallel.forEach(parts, threads: parts) { t in
                encore_spmm_t_rows(p.indptr, p.indices, p.values, p.x, p.y, l, 0, m.rows, ranges[t], ranges[t + 1])
            }
        }
    }

    /// `y = m * x`, where `x` is `m.cols x columns` and `y` is `m.rows x columns`, both row-major.
    public static func multiply(_ m: CSRMatrix, _ x: [Float], columns l: Int, into y: inout [Float], threads: Int) {
        precondition(x.count >= m.cols * l, "x has \(x.count) values, needs \(m.cols * l)")
        if y.count != m.rows * l { y = [Float](repeating: 0, count: m.rows * l) }
        withPointers(m, x, &y) { p in
            let block = 64
            Parallel.forEach((m.rows + block - 1) / block, threads: threads, grain: 4) { b in
                Kernels.sparseRows(indptr: p.indptr, indices: p.indices, values: p.values, x: p.x, y: p.y, columns: l,
                                   rows: (b * block)..<min(m.rows, (b + 1) * block))
            }
        }
    }

    /// The raw pointers of a product's operands, shared read-only (`y` written in disjoint parts) by its threads.
    private struct Operands: @unchecked Sendable {
        let indptr: UnsafePointer<Int>, indices: UnsafePointer<Int32>, values: UnsafePointer<Float>
        let x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>
    }

    /// Runs `body` with the pointers of `m`'s arrays, `x` and `y`.
    private static func withPointers(_ m: CSRMatrix, _ x: [Float], _ y: inout [Float], _ body: (Operands) -> Void) {
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                m.indptr.withUnsafeBufferPointer { ptr in
                    m.indices.withUnsafeBufferPointer { idx in
                        m.values.withUnsafeBufferPointer { val in
                            body(Operands(indptr: ptr.baseAddress!, indices: idx.baseAddress!, values: val.baseAddress!,
                                          x: xp.baseAddress!, y: yp.baseAddress!))
                        }
                    }
                }
            }
        }
    }
}
