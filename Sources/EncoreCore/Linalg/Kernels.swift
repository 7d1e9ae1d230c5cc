internal import CKernels

/// Small dense kernels on raw pointers, used in the hot loops of the solvers and the indexes.
///
/// They call Encore's C kernels, which pick an AVX2+FMA version at run time when the CPU has it (Swift cannot
/// enable those instructions per function), and a portable version otherwise. For vectors of 32 to 256 floats they
/// avoid a BLAS call's overhead, which dominates at that size.
public enum Kernels {
    /// The dot product of two vectors of length `n`.
    @inline(__always)
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        encore_dot(a, b, n)
    }

    /// `y += alpha * x` for vectors of length `n`.
    @inline(__always)
    public static func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        encore_axpy(alpha, x, y, n)
    }

    /// Squared Euclidean distance between two vectors of length `n`.
    @inline(__always)
    public static func squaredDistance(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        encore_squared_distance(a, b, n)
    }

    /// Rows `rows` of `y = A x` for a CSR matrix `A` (`indptr`, `indices`, `values`) and row-major `x` and `y` with
    /// `columns` columns; those rows of `y` are overwritten.
    @inline(__always)
    public static func sparseRows(
        indptr: UnsafePointer<Int>, indices: UnsafePointer<Int32>, values: UnsafePointer<Float>,
        x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, columns: Int, rows: Range<Int>
    ) {
        encore_spmm_rows(indptr, indices, values, x, y, columns, rows.lowerBound, rows.upperBound)
    }

    /// Whether the AVX2+FMA kernels are in use on this CPU.
    public static var usesAVX2: Bool { encore_kernels_use_avx2() != 0 }

    /// The kernels in use: 0 portable, 1 AVX2+FMA loops, 2 AVX2+FMA with the ALS conjugate-gradient update's
    /// accumulators held in registers. The best the CPU has unless `ENCORE_KERNEL_LEVEL` lowers it.
    public static var level: Int { Int(encore_kernels_level()) }

    /// The best level this CPU supports.
    public static var bestLevel: Int { Int(encore_kernels_best_level()) }
}
