internal import CBLAS
internal import CLAPACKE

/// Thin, typed wrappers over the OpenBLAS and LAPACKE calls Encore uses.
///
/// All matrices are row-major ``Matrix`` values. Heavy work (Gram matrices, batched scoring) goes through here.
public enum BLAS {
    /// Sets the number of threads OpenBLAS uses for its own calls.
    ///
    /// Encore parallelizes its solvers itself, so it keeps OpenBLAS at one thread while any ``Parallel`` region runs;
    /// a count set then takes effect when the last region ends.
    public static func setThreads(_ n: Int) { BLASThreadRegions.shared.setThreads(n) }

    /// Runs `body` with OpenBLAS on one thread, as inside a ``Parallel`` region: for work that interleaves its own
    /// parallel loops with LAPACK calls, where OpenBLAS's waiting threads would spin against those loops.
    package static func withOneThread<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        BLASThreadRegions.shared.enter()
        defer { BLASThreadRegions.shared.leave() }
        return try body()
    }

    /// The number of threads OpenBLAS currently uses.
    public static var threads: Int { openBLASThreads }

    /// OpenBLAS's thread count, read directly.
    static var openBLASThreads: Int { Int(openblas_get_num_threads()) }

    /// Sets OpenBLAS's thread count directly (``BLASThreadRegions`` alone calls it).
    static func setOpenBLASThreads(_ n: Int) { openblas_set_num_threads(Int32(max(1, n))) }

    /// `C = alpha * A * B^T + beta * C` where `A` is `m x k`, `B` is `n x k`, and `C` is `m x n`.
    public static func gemmABt(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>,
        m: Int, n: Int, k: Int, alpha: Float = 1, beta: Float = 0
    ) {
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k),
            alpha, a, Int32(k), b, Int32(k), beta, c, Int32(n))
    }

    /// `C = alpha * A * B + beta * C` where `A` is `m x k`, `B` is `k x n`, and `C` is `m x n`.
    public static func gemmAB(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>,
        m: Int, n: Int, k: Int, alpha: Float = 1, beta: Float = 0
    ) {
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k),
            alpha, a, Int32(k), b, Int32(n), beta, c, Int32(n))
    }

    /// `C = alpha * A^T * B + beta * C` where `A` is `m x k`, `B` is `m x n`, and `C` is `k x n` (a cross product
    /// of two row-major blocks with the same rows, without transposing either).
    public static func gemmAtB(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>,
        m: Int, n: Int, k: Int, alpha: Float = 1, beta: Float = 0
    ) {
        cblas_sgemm(
            CblasRowMajor, CblasTrans, CblasNoTrans, Int32(k), Int32(n), Int32(m),
            alpha, a, Int32(k), b, Int32(n), beta, c, Int32(n))
    }

    /// The Gram matrix `A^T A` (`k x k`, full, symmetric) of the `m x k` row-major block at `a`, accumulated into `out`
    /// with `out = A^T A + beta * out`.
    public static func gram(_ a: UnsafePointer<Float>, m: Int, k: Int, into out: UnsafeMutablePointer<Float>, beta: Float = 0) {
        guard m > 0 else {
            if beta != 1 { for i in 0..<(k * k) { out[i] *= beta } }
            return
        }
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, Int32(k), Int32(m), 1, a, Int32(k), beta, out, Int32(k))
        // Mirror the upper triangle into the lower one.
        for i in 0..<k { for j in 0..<i { out[i * k + j] = out[j * k + i] } }
    }

    /// `A^T A` for a whole matrix, computed in parallel row blocks on `threads` threads.
    public static func gram(_ m: Matrix, threads: Int = 1) -> Matrix {
        let k = m.cols
        var out = Matrix(rows: k, cols: k)
        let blocks = max(1, min(threads, m.rows / 1024))
        if blocks == 1 {
            m.storage.withUnsafeBufferPointer { a in
                out.storage.withUnsafeMutableBufferPointer { o in gram(a.baseAddress!, m: m.rows, k: k, into: o.baseAddress!) }
            }
            return out
        }
        var partials = [[Float]](repeating: [Float](repeating: 0, count: k * k), count: blocks)
        let chunk = (m.rows + blocks - 1) / blocks
        partials.withUnsafeMutableBufferPointer { parts in
            let partsBase = UncheckedSendable(parts.baseAddress!)
            m.storage.withUnsafeBufferPointer { a in
                let aBase = UncheckedSendable(a.baseAddress!)
                Parallel.forEach(blocks, threads: blocks) { b in
                    let lo = b * chunk, hi = min(m.rows, lo + chunk)
                    guard hi > lo else { return }
                    partsBase.value[b].withUnsafeMutableBufferPointer { o in
                        gram(aBase.value + lo * k, m: hi - lo, k: k, into: o.baseAddress!)
                    }
                }
            }
        }
        for p in partials { for i in 0..<(k * k) { out.storage[i] += p[i] } }
        return out
    }

    /// `y = alpha * A x + beta * y` for a row-major `m x n` matrix `A`.
    public static func gemv(
        _ a: UnsafePointer<Float>, m: Int, n: Int, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
        alpha: Float = 1, beta: Float = 0
    ) {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(m), Int32(n), alpha, a, Int32(n), x, 1, beta, y, 1)
    }

    /// Rank-k update `C += alpha * A^T A` (upper triangle only) where `A` is `m x n` row-major and `C` is `n x n`.
    public static func syrkUpper(
        _ a: UnsafePointer<Float>, m: Int, n: Int, into c: UnsafeMutablePointer<Float>, alpha: Float = 1
    ) {
        guard m > 0 else { return }
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, Int32(n), Int32(m), alpha, a, Int32(n), 1, c, Int32(n))
    }

    /// Solves `A x = b` in place for a symmetric positive-definite `n x n` matrix `A` (upper triangle used;
    /// `A` is overwritten by its Cholesky factor, `b` by the solution).
    public static func choleskySolve(
        _ a: UnsafeMutablePointer<Float>, n: Int, _ b: UnsafeMutablePointer<Float>
    ) throws(LinalgError) {
        let info = LAPACKE_sposv(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "U")), Int32(n), 1, a, Int32(n), b, 1)
        if info != 0 { throw .lapackFailure(routine: "sposv", info: info) }
    }

    /// Factorises a symmetric positive-definite `n x n` matrix in place (upper Cholesky factor).
    public static func choleskyFactor(_ a: UnsafeMutablePointer<Float>, n: Int) throws(LinalgError) {
        let info = LAPACKE_spotrf(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "U")), Int32(n), a, Int32(n))
        if info != 0 { throw .lapackFailure(routine: "spotrf", info: info) }
    }

    /// Solves `A x = b` in place given the upper Cholesky factor from ``choleskyFactor(_:n:)``.
    public static func choleskySolveFactored(
        _ a: UnsafePointer<Float>, n: Int, _ b: UnsafeMutablePointer<Float>
    ) throws(LinalgError) {
        let info = LAPACKE_spotrs(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "U")), Int32(n), 1, a, Int32(n), b, 1)
        if info != 0 { throw .lapackFailure(routine: "spotrs", info: info) }
    }
}

/// Wraps a value that is not `Sendable` (a raw pointer into a buffer whose disjoint parts threads write) so it can
/// cross into a parallel loop. Each use must guarantee the threads touch disjoint memory.
public struct UncheckedSendable<T>: @unchecked Sendable {
    /// The wrapped value.
    public let value: T
    /// Wraps `value`.
    public init(_ value: T) { self.value = value }
}
