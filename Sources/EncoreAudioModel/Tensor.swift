internal import CBLAS

/// A dense Float32 array with a shape, row-major (the last dimension varies fastest).
///
/// Activations are batch-major: a sequence batch is `[batch, time, channels]` (channels innermost, so one frame of
/// one example is contiguous and a window of frames is one contiguous run), a vector batch is `[batch, features]`.
public struct Tensor: Sendable, Equatable {
    /// The dimensions.
    public var shape: [Int]
    /// The values, row-major; `data.count` is the product of `shape`.
    public var data: [Float]

    /// A tensor of zeros.
    public init(zeros shape: [Int]) {
        self.shape = shape
        self.data = [Float](repeating: 0, count: shape.reduce(1, *))
    }

    /// A tensor over `data`; the count must equal the product of `shape`.
    public init(shape: [Int], data: [Float]) throws(AudioModelError) {
        guard shape.reduce(1, *) == data.count else {
            throw .invalidParameter(name: "tensor", reason: "\(data.count) values do not fill shape \(shape)")
        }
        self.shape = shape
        self.data = data
    }

    init(uncheckedShape shape: [Int], data: [Float]) {
        self.shape = shape
        self.data = data
    }

    /// The number of values.
    public var count: Int { data.count }
}

/// The single-precision BLAS calls the layers make (row-major).
enum GEMM {
    /// `C = alpha * op(A) * op(B) + beta * C` with `op(A)` `m x k`, `op(B)` `k x n`, `C` `m x n`, all row-major with
    /// their natural leading dimensions.
    static func run(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, beta: Float, _ c: UnsafeMutablePointer<Float>
    ) {
        guard m > 0, n > 0 else { return }
        if k == 0 {
            for i in 0..<(m * n) { c[i] *= beta }
            return
        }
        let lda = transA ? m : k
        let ldb = transB ? k : n
        cblas_sgemm(
            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(n))
    }

    /// `y += alpha * x` over `n` values.
    static func axpy(_ n: Int, _ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
        cblas_saxpy(Int32(n), alpha, x, 1, y, 1)
    }
}
