internal import CKernels
import EncoreCore

/// The per-vector least-squares solvers of implicit ALS, on raw pointers for speed.
///
/// Both minimize, for one user (or item) with observed items `I` and confidences `c`,
/// `‖x‖²λ + Σᵢ cᵢ(pᵢ − x·yᵢ)²` over all items, where unobserved items have `c = 1, p = 0`. This is the linear system
/// `(YᵀY + λI + Σ_{i∈I} (cᵢ − 1) yᵢyᵢᵀ) x = Σ_{i∈I, cᵢ>0} cᵢ yᵢ`. A negative stored value marks a negative example
/// with confidence `|c|` and `p = 0`, as in `implicit`.
package enum ALSSolvers {
    /// Scratch space for one thread: raw buffers allocated once and reused for every vector.
    package final class Scratch {
        let f: Int
        let r: UnsafeMutablePointer<Float>
        let p: UnsafeMutablePointer<Float>
        let ap: UnsafeMutablePointer<Float>
        package let a: UnsafeMutablePointer<Float>
        package var gathered: [Float] = []

        package init(factors f: Int) {
            self.f = f
            r = .allocate(capacity: f); r.initialize(repeating: 0, count: f)
            p = .allocate(capacity: f); p.initialize(repeating: 0, count: f)
            ap = .allocate(capacity: f); ap.initialize(repeating: 0, count: f)
            a = .allocate(capacity: f * f); a.initialize(repeating: 0, count: f * f)
        }

        deinit {
            r.deallocate(); p.deallocate(); ap.deallocate(); a.deallocate()
        }
    }

    /// Conjugate-gradient update of one vector `x` in place (Takács et al. 2011), warm-started from its value.
    ///
    /// - Parameters:
    ///   - gram: `YᵀY + λI`, `f x f`, full symmetric.
    ///   - y: the fixed side's factors, row-major.
    ///   - cols, vals, count: the row's observed indices and confidences (already scaled by alpha).
    @inline(__always)
    static func conjugateGradient(
        x: UnsafeMutablePointer<Float>, f: Int, gram: UnsafePointer<Float>, y: UnsafePointer<Float>,
        cols: UnsafePointer<Int32>, vals: UnsafePointer<Float>, count: Int, steps: Int,
        r: UnsafeMutablePointer<Float>, p: UnsafeMutablePointer<Float>, ap: UnsafeMutablePointer<Float>
    ) {
        encore_cg_update(x, f, gram, y, cols, vals, count, Int32(steps), r, p, ap)
    }

    /// ``conjugateGradient(x:f:gram:y:cols:vals:count:steps:r:p:ap:)`` with the kernels of at most `level`
    /// (``Kernels/level``), so tests can compare the versions.
    package static func conjugateGradient(
        level: Int, x: UnsafeMutablePointer<Float>, f: Int, gram: UnsafePointer<Float>, y: UnsafePointer<Float>,
        cols: UnsafePointer<Int32>, vals: UnsafePointer<Float>, count: Int, steps: Int,
        r: UnsafeMutablePointer<Float>, p: UnsafeMutablePointer<Float>, ap: UnsafeMutablePointer<Float>
    ) {
        encore_cg_update_at(Int32(level), x, f, gram, y, cols, vals, count, Int32(steps), r, p, ap)
    }

    /// Builds `A = YᵀY + λI + Σ (cᵢ − 1) yᵢyᵢᵀ` (upper triangle) in `a` and `b = Σ_{cᵢ>0} cᵢ yᵢ` in `b`.
    ///
    /// The rank-`n` update is one BLAS `ssyrk` over the gathered rows `√(cᵢ − 1) yᵢ`; rows with `|cᵢ| < 1` are added
    /// one by one since their weight is negative.
    package static func normalEquations(
        a: UnsafeMutablePointer<Float>, b: UnsafeMutablePointer<Float>, f: Int, gram: UnsafePointer<Float>,
        y: UnsafePointer<Float>, cols: UnsafePointer<Int32>, vals: UnsafePointer<Float>, count: Int,
        gathered: inout [Float]
    ) {
        a.update(from: gram, count: f * f)
        for j in 0..<f { b[j] = 0 }
        if gathered.count < count * f { gathered = [Float](repeating: 0, count: count * f) }
        var rowsGathered = 0
        gathered.withUnsafeMutableBufferPointer { g in
            let gp = g.baseAddress!
            for t in 0..<count {
                var c = vals[t]
                let yi = y + Int(cols[t]) * f
                if c > 0 { Kernels.axpy(c, yi, b, f) } else { c = -c }
                let w = c - 1
                if w > 0 {
                    let s = w.squareRoot()
                    let dst = gp + rowsGathered * f
                    for j in 0..<f { dst[j] = s * yi[j] }
                    rowsGathered += 1
                } else if w < 0 {
                    for j in 0..<f {
                        let wyj = w * yi[j]
                        for k in j..<f { a[j * f + k] += wyj * yi[k] }
                    }
                }
            }
            BLAS.syrkUpper(UnsafePointer(gp), m: rowsGathered, n: f, into: a)
        }
    }

    /// Exact solve of one vector by Cholesky factorisation (LAPACK `sposv`); writes the solution into `x`.
    static func cholesky(
        x: UnsafeMutablePointer<Float>, f: Int, gram: UnsafePointer<Float>, y: UnsafePointer<Float>,
        cols: UnsafePointer<Int32>, vals: UnsafePointer<Float>, count: Int, scratch: Scratch
    ) throws(LinalgError) {
        normalEquations(
            a: scratch.a, b: x, f: f, gram: gram, y: y, cols: cols, vals: vals, count: count,
            gathered: &scratch.gathered)
        try BLAS.choleskySolve(scratch.a, n: f, x)
    }
}
