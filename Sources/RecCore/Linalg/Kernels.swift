internal import CBLAS

/// Small dense kernels on raw pointers, used in the hot loops of the solvers and the indexes.
///
/// They are written with SIMD types so the compiler emits vector instructions (AVX2/FMA where the target allows)
/// without a BLAS call's overhead, which dominates for vectors of 32 to 256 floats.
public enum Kernels {
    /// The dot product of two vectors of length `n`.
    @inlinable
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>()
        var i = 0
        let rawA = UnsafeRawPointer(a), rawB = UnsafeRawPointer(b)
        while i + 16 <= n {
            let x0 = rawA.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            let y0 = rawB.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            let x1 = rawA.loadUnaligned(fromByteOffset: (i + 8) * 4, as: SIMD8<Float>.self)
            let y1 = rawB.loadUnaligned(fromByteOffset: (i + 8) * 4, as: SIMD8<Float>.self)
            acc0.addProduct(x0, y0)
            acc1.addProduct(x1, y1)
            i += 16
        }
        if i + 8 <= n {
            let x0 = rawA.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            let y0 = rawB.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            acc0.addProduct(x0, y0)
            i += 8
        }
        var s = (acc0 + acc1).sum()
        while i < n { s += a[i] * b[i]; i += 1 }
        return s
    }

    /// `y += alpha * x` for vectors of length `n`.
    @inlinable
    public static func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        let rawX = UnsafeRawPointer(x), rawY = UnsafeMutableRawPointer(y)
        let a = SIMD8<Float>(repeating: alpha)
        while i + 8 <= n {
            var v = rawY.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            v.addProduct(a, rawX.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self))
            rawY.storeBytes(of: v, toByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
        while i < n { y[i] += alpha * x[i]; i += 1 }
    }

    /// Squared Euclidean distance between two vectors of length `n`.
    @inlinable
    public static func squaredDistance(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = SIMD8<Float>()
        var i = 0
        let rawA = UnsafeRawPointer(a), rawB = UnsafeRawPointer(b)
        while i + 8 <= n {
            let d = rawA.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
                - rawB.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            acc.addProduct(d, d)
            i += 8
        }
        var s = acc.sum()
        while i < n { let d = a[i] - b[i]; s += d * d; i += 1 }
        return s
    }
}
