import Foundation
import EncoreCore

/// A trainable array of a layer, with its gradient (accumulated by `backward`, cleared by the optimizer's caller).
public final class Parameter {
    /// The name within its layer (`weight`, `bias`, `gamma`, `beta`).
    public let name: String
    /// The dimensions of the value.
    public let shape: [Int]
    /// The values, row-major.
    public var value: [Float]
    /// The gradient of the loss with respect to `value`.
    public var grad: [Float]
    /// Whether AdamW's decoupled weight decay applies (matrices yes; biases and normalization scales no).
    public let decays: Bool

    init(name: String, shape: [Int], value: [Float], decays: Bool) {
        self.name = name
        self.shape = shape
        self.value = value
        self.grad = [Float](repeating: 0, count: value.count)
        self.decays = decays
    }

    /// Sets the gradient to zero.
    public func zeroGrad() {
        grad.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
    }
}

/// One step of the network: a forward pass that caches what its backward pass needs, and a backward pass that
/// accumulates parameter gradients and returns the gradient with respect to the input.
public protocol Layer: AnyObject {
    /// The layer's name in the model file (`conv1`, `bn1`, `dense1`, ...).
    var name: String { get }
    /// The trainable parameters (empty for ReLU and pooling).
    var parameters: [Parameter] { get }
    /// Non-trainable state saved with the model (batch normalization's running statistics).
    var buffers: [Parameter] { get }
    /// The output for `input`; `training` selects batch statistics (and caching for backward).
    func forward(_ input: Tensor, training: Bool) -> Tensor
    /// The gradient with respect to the last forward input, given the gradient with respect to its output.
    func backward(_ gradOutput: Tensor) -> Tensor
}

extension Layer {
    public var parameters: [Parameter] { [] }
    public var buffers: [Parameter] { [] }
}

/// He-normal initial weights (`sqrt(2 / fanIn)` standard deviation) from a seeded generator.
func heNormal(count: Int, fanIn: Int, rng: inout SplitMix64) -> [Float] {
    let sd = (2.0 / Double(max(1, fanIn))).squareRoot()
    return (0..<count).map { _ in Float(rng.nextGaussian() * sd) }
}

/// A 1-D convolution along time with "valid" padding and stride 1: input `[batch, time, inChannels]` (for the first
/// layer the mel bands are the channels), output `[batch, time - width + 1, outChannels]`.
///
/// The weight is `[outChannels, width, inChannels]`. Forward copies every window into an im2col matrix
/// `[batch * outTime, width * inChannels]` (a window is one contiguous run in the batch-major layout) and multiplies
/// it by the weight with one `sgemm`; backward uses two more `sgemm`s (weights, and the columns' gradient, which
/// col2im adds back onto the input frames).
public final class Conv1D: Layer {
    public let name: String
    /// Input channels, output channels and filter width (frames).
    public let inChannels: Int, outChannels: Int, width: Int
    let weight: Parameter
    let bias: Parameter
    /// Whether ``backward(_:)`` computes the gradient with respect to the input (the first layer's is not needed;
    /// it then returns zeros and skips one `sgemm`).
    public var computesInputGradient = true
    private var columns: [Float] = []
    /// The columns' gradient of the last backward pass, kept so the next batch of the same size reuses it.
    private var gradColumns: [Float] = []
    private var inputShape: [Int] = []

    /// A convolution with He-normal weights and zero bias.
    public init(name: String, inChannels: Int, outChannels: Int, width: Int, rng: inout SplitMix64) {
        self.name = name
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.width = width
        let k = width * inChannels
        weight = Parameter(name: "weight", shape: [outChannels, width, inChannels],
                           value: heNormal(count: outChannels * k, fanIn: k, rng: &rng), decays: true)
        bias = Parameter(name: "bias", shape: [outChannels], value: [Float](repeating: 0, count: outChannels),
                         decays: false)
    }

    public var parameters: [Parameter] { [weight, bias] }

    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        let (b, t, c) = (input.shape[0], input.shape[1], input.shape[2])
        precondition(c == inChannels && t >= width, "\(name): input \(input.shape) does not fit")
        let outT = t - width + 1
        let k = width * c
        let rows = b * outT
        // Every entry is overwritten below, so a buffer of the right size from the previous batch is reused.
        if columns.count != rows * k { columns = [Float](repeating: 0, count: rows * k) }
        input.data.withUnsafeBufferPointer { x in
            columns.withUnsafeMutableBufferPointer { col in
                for s in 0..<b {
                    for j in 0..<outT {
                        (col.baseAddress! + (s * outT + j) * k).update(from: x.baseAddress! + (s * t + j) * c, count: k)
                    }
                }
            }
        }
        inputShape = input.shape
        var out = Tensor(zeros: [b, outT, outChannels])
        out.data.withUnsafeMutableBufferPointer { y in
            Self.broadcastRows(bias.value, rows: rows, width: outChannels, into: y.baseAddress!)
            columns.withUnsafeBufferPointer { col in
                weight.value.withUnsafeBufferPointer { w in
                    GEMM.run(transA: false, transB: true, m: rows, n: outChannels, k: k,
                             col.baseAddress!, w.baseAddress!, beta: 1, y.baseAddress!)
                }
            }
        }
        return out
    }

    public func backward(_ gradOutput: Tensor) -> Tensor {
        let (b, t, c) = (inputShape[0], inputShape[1], inputShape[2])
        let outT = t - width + 1
        let k = width * c
        let rows = b * outT
        // Every entry is overwritten by the sgemm below (beta 0), so a buffer of the right size is reused.
        if computesInputGradient && gradColumns.count != rows * k { gradColumns = [Float](repeating: 0, count: rows * k) }
        gradOutput.data.withUnsafeBufferPointer { dy in
            columns.withUnsafeBufferPointer { col in
                weight.grad.withUnsafeMutableBufferPointer { dw in
                    GEMM.run(transA: true, transB: false, m: outChannels, n: k, k: rows,
                             dy.baseAddress!, col.baseAddress!, beta: 1, dw.baseAddress!)
                }
            }
            if computesInputGradient {
              weight.value.withUnsafeBufferPointer { w in
                gradColumns.withUnsafeMutableBufferPointer { dcol in
                    GEMM.run(transA: false, transB: false, m: rows, n: k, k: outChannels,
                             dy.baseAddress!, w.baseAddress!, beta: 0, dcol.baseAddress!)
                }
              }
            }
            bias.grad.withUnsafeMutableBufferPointer { db in Self.addRows(dy.baseAddress!, rows: rows, width: outChannels, into: db.baseAddress!) }
        }
        var gradInput = Tensor(zeros: inputShape)
        guard computesInputGradient else { return gradInput }
        gradInput.data.withUnsafeMutableBufferPointer { dx in
            gradColumns.withUnsafeBufferPointer { dcol in
                for s in 0..<b {
                    for j in 0..<outT {
                        GEMM.axpy(k, 1, dcol.baseAddress! + (s * outT + j) * k, dx.baseAddress! + (s * t + j) * c)
                    }
                }
            }
        }
        return gradInput
    }

    /// `sums[j] += sum over r of x[r * width + j]` (a bias gradient).
    static func addRows(_ x: UnsafePointer<Float>, rows: Int, width: Int, into sums: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let row = x + r * width
            for j in 0..<width { sums[j] += row[j] }
        }
    }

    /// Copies `bias` into every row of `y` (`rows x width`).
    static func broadcastRows(_ bias: [Float], rows: Int, width: Int, into y: UnsafeMutablePointer<Float>) {
        bias.withUnsafeBufferPointer { b in
            for r in 0..<rows { (y + r * width).update(from: b.baseAddress!, count: width) }
        }
    }
}

/// A fully connected layer: `[batch, in]` to `[batch, out]`, `y = x W^T + b`, through `sgemm`.
public final class Dense: Layer {
    public let name: String
    /// Input and output widths.
    public let inFeatures: Int, outFeatures: Int
    let weight: Parameter
    let bias: Parameter
    private var input: Tensor = Tensor(zeros: [0])

    /// A layer with He-normal weights (or Glorot-like `1/sqrt(in)` when `linear`) and zero bias.
    public init(name: String, inFeatures: Int, outFeatures: Int, rng: inout SplitMix64) {
        self.name = name
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        weight = Parameter(name: "weight", shape: [outFeatures, inFeatures],
                           value: heNormal(count: outFeatures * inFeatures, fanIn: inFeatures, rng: &rng), decays: true)
        bias = Parameter(name: "bias", shape: [outFeatures], value: [Float](repeating: 0, count: outFeatures),
                         decays: false)
    }

    public var parameters: [Parameter] { [weight, bias] }

    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        let n = input.shape[0]
        precondition(input.count == n * inFeatures, "\(name): input \(input.shape) does not fit")
        self.input = input
        var out = Tensor(zeros: [n, outFeatures])
        out.data.withUnsafeMutableBufferPointer { y in
            Conv1D.broadcastRows(bias.value, rows: n, width: outFeatures, into: y.baseAddress!)
            input.data.withUnsafeBufferPointer { x in
                weight.value.withUnsafeBufferPointer { w in
                    GEMM.run(transA: false, transB: true, m: n, n: outFeatures, k: inFeatures,
                             x.baseAddress!, w.baseAddress!, beta: 1, y.baseAddress!)
                }
            }
        }
        return out
    }

    public func backward(_ gradOutput: Tensor) -> Tensor {
        let n = input.shape[0]
        var gradInput = Tensor(zeros: input.shape)
        gradOutput.data.withUnsafeBufferPointer { dy in
            input.data.withUnsafeBufferPointer { x in
                weight.grad.withUnsafeMutableBufferPointer { dw in
                    GEMM.run(transA: true, transB: false, m: outFeatures, n: inFeatures, k: n,
                             dy.baseAddress!, x.baseAddress!, beta: 1, dw.baseAddress!)
                }
            }
            weight.value.withUnsafeBufferPointer { w in
                gradInput.data.withUnsafeMutableBufferPointer { dx in
                    GEMM.run(transA: false, transB: false, m: n, n: inFeatures, k: outFeatures,
                             dy.baseAddress!, w.baseAddress!, beta: 0, dx.baseAddress!)
                }
            }
            bias.grad.withUnsafeMutableBufferPointer { db in Conv1D.addRows(dy.baseAddress!, rows: n, width: outFeatures, into: db.baseAddress!) }
        }
        return gradInput
    }
}

/// `max(0, x)` elementwise.
public final class ReLU: Layer {
    public let name: String
    /// The last output (shares its storage with the returned tensor); positive entries are where gradient flows.
    private var output = Tensor(zeros: [0])

    /// A ReLU named `name`.
    public init(name: String) { self.name = name }

    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        var out = input
        out.data.withUnsafeMutableBufferPointer { y in
            for i in 0..<y.count { y[i] = y[i] > 0 ? y[i] : 0 }
        }
        output = out
        return out
    }

    public func backward(_ gradOutput: Tensor) -> Tensor {
        var g = gradOutput
        output.data.withUnsafeBufferPointer { y in
            g.data.withUnsafeMutableBufferPointer { d in
                for i in 0..<d.count { d[i] = y[i] > 0 ? d[i] : 0 }
            }
        }
        return g
    }
}

/// Batch normalization over the last (channel) dimension: statistics over every other position (batch and time).
///
/// Training mode normalizes with the batch's mean and (biased) variance and updates running statistics with
/// `momentum`; evaluation mode uses the running statistics.
public final class BatchNorm: Layer {
    public let name: String
    /// Channel count.
    public let channels: Int
    /// Added to the variance before the square root.
    public let epsilon: Float
    /// The weight of the newest batch in the running statistics.
    public let momentum: Float
    let gamma: Parameter
    let beta: Parameter
    let runningMean: Parameter
    let runningVar: Parameter
    /// The last input and the mean and inverse deviation it was normalized with (backward recomputes the
    /// normalized values from them rather than keeping a second copy).
    private var input = Tensor(zeros: [0])
    private var usedMean: [Float] = []
    private var invStd: [Float] = []
    private var wasTraining = true

    /// A layer with unit scale, zero shift, and running statistics at mean 0 and variance 1.
    public init(name: String, channels: Int, epsilon: Float = 1e-5, momentum: Float = 0.1) {
        self.name = name
        self.channels = channels
        self.epsilon = epsilon
        self.momentum = momentum
        gamma = Parameter(name: "gamma", shape: [channels], value: [Float](repeating: 1, count: channels), decays: false)
        beta = Parameter(name: "beta", shape: [channels], value: [Float](repeating: 0, count: channels), decays: false)
        runningMean = Parameter(name: "running_mean", shape: [channels],
                                value: [Float](repeating: 0, count: channels), decays: false)
        runningVar = Parameter(name: "running_var", shape: [channels],
                               value: [Float](repeating: 1, count: channels), decays: false)
    }

    public var parameters: [Parameter] { [gamma, beta] }
    public var buffers: [Parameter] { [runningMean, runningVar] }

    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        let c = channels
        let rows = input.count / c
        var mean = [Double](repeating: 0, count: c)
        var variance = [Double](repeating: 0, count: c)
        if training {
            // One pass for the sums and the sums of squares, accumulated in Double per channel.
            var sq = [Double](repeating: 0, count: c)
            input.data.withUnsafeBufferPointer { x in
                mean.withUnsafeMutableBufferPointer { s in
                    sq.withUnsafeMutableBufferPointer { q in
                        for r in 0..<rows {
                            let row = x.baseAddress! + r * c
                            for j in 0..<c {
                                let v = Double(row[j])
                                s[j] += v
                                q[j] += v * v
                            }
                        }
                    }
                }
            }
            let n = Double(rows)
            for j in 0..<c {
                mean[j] /= n
                variance[j] = max(0, sq[j] / n - mean[j] * mean[j])
                let unbiased = rows > 1 ? variance[j] * n / (n - 1) : variance[j]
                runningMean.value[j] = (1 - momentum) * runningMean.value[j] + momentum * Float(mean[j])
                runningVar.value[j] = (1 - momentum) * runningVar.value[j] + momentum * Float(unbiased)
            }
        } else {
            for j in 0..<c {
                mean[j] = Double(runningMean.value[j])
                variance[j] = Double(runningVar.value[j])
            }
        }
        wasTraining = training
        self.input = input
        invStd = variance.map { Float(1 / ($0 + Double(epsilon)).squareRoot()) }
        usedMean = mean.map { Float($0) }
        var out = input
        out.data.withUnsafeMutableBufferPointer { y in
            usedMean.withUnsafeBufferPointer { m in
                invStd.withUnsafeBufferPointer { s in
                    gamma.value.withUnsafeBufferPointer { g in
                        beta.value.withUnsafeBufferPointer { b in
                            for r in 0..<rows {
                                let row = y.baseAddress! + r * c
                                for j in 0..<c { row[j] = g[j] * ((row[j] - m[j]) * s[j]) + b[j] }
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    public func backward(_ gradOutput: Tensor) -> Tensor {
        let c = channels
        let rows = gradOutput.count / c
        var sumDy = [Double](repeating: 0, count: c)
        var sumDyXh = [Double](repeating: 0, count: c)
        input.data.withUnsafeBufferPointer { x in
            gradOutput.data.withUnsafeBufferPointer { dy in
                usedMean.withUnsafeBufferPointer { m in
                    invStd.withUnsafeBufferPointer { s in
                        sumDy.withUnsafeMutableBufferPointer { sd in
                            sumDyXh.withUnsafeMutableBufferPointer { sx in
                                for r in 0..<rows {
                                    let xr = x.baseAddress! + r * c, gr = dy.baseAddress! + r * c
                                    for j in 0..<c {
                                        let g = Double(gr[j])
                                        sd[j] += g
                                        sx[j] += g * Double((xr[j] - m[j]) * s[j])
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        for j in 0..<c {
            beta.grad[j] += Float(sumDy[j])
            gamma.grad[j] += Float(sumDyXh[j])
        }
        var gradInput = gradOutput
        // dx = gamma * invStd / m * (m * dy - sum(dy) - xhat * sum(dy * xhat)) in training mode (batch statistics),
        // gamma * invStd * dy in evaluation mode (running statistics are constants).
        let scale = (0..<c).map { gamma.value[$0] * invStd[$0] }
        let meanDy = (0..<c).map { wasTraining ? Float(sumDy[$0] / Double(rows)) : 0 }
        let meanDyXh = (0..<c).map { wasTraining ? Float(sumDyXh[$0] / Double(rows)) : 0 }
        input.data.withUnsafeBufferPointer { x in
            gradInput.data.withUnsafeMutableBufferPointer { dx in
                usedMean.withUnsafeBufferPointer { mu in
                    invStd.withUnsafeBufferPointer { s in
                        scale.withUnsafeBufferPointer { k in
                            meanDy.withUnsafeBufferPointer { md in
                                meanDyXh.withUnsafeBufferPointer { mx in
                                    for r in 0..<rows {
                                        let xr = x.baseAddress! + r * c, gr = dx.baseAddress! + r * c
                                        for j in 0..<c {
                                            let xh = (xr[j] - mu[j]) * s[j]
                                            gr[j] = k[j] * (gr[j] - md[j] - xh * mx[j])
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return gradInput
    }
}

/// Max-pooling along time over non-overlapping windows of `size` frames: `[batch, time, channels]` to
/// `[batch, time / size, channels]` (a remainder of fewer than `size` frames at the end is dropped).
public final class MaxPool1D: Layer {
    public let name: String
    /// The window (and stride), in frames.
    public let size: Int
    /// For each output, the offset (0..<size) of the frame its maximum came from.
    private var argmax: [UInt8] = []
    private var inputShape: [Int] = []

    /// A pooling layer over `size` frames.
    public init(name: String, size: Int) {
        precondition(size >= 1 && size <= 255, "pooling size \(size) is outside 1...255")
        self.name = name
        self.size = size
    }

    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        let (b, t, c) = (input.shape[0], input.shape[1], input.shape[2])
        let outT = t / size
        inputShape = input.shape
        var out = Tensor(zeros: [b, outT, c])
        if argmax.count != out.count { argmax = [UInt8](repeating: 0, count: out.count) }
        let size = self.size
        input.data.withUnsafeBufferPointer { x in
            out.data.withUnsafeMutableBufferPointer { y in
                argmax.withUnsafeMutableBufferPointer { am in
                    for s in 0..<b {
                        for j in 0..<outT {
                            let o = (s * outT + j) * c
                            let first = x.baseAddress! + (s * t + j * size) * c
                            for ch in 0..<c {
                                y[o + ch] = first[ch]
                                am[o + ch] = 0
                            }
                            for u in 1..<max(1, size) {
                                let row = first + u * c
                                for ch in 0..<c where row[ch] > y[o + ch] {
                                    y[o + ch] = row[ch]
                                    am[o + ch] = UInt8(u)
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    public func backward(_ gradOutput: Tensor) -> Tensor {
        let (b, t, c) = (inputShape[0], inputShape[1], inputShape[2])
        let outT = t / size
        var gradInput = Tensor(zeros: inputShape)
        gradOutput.data.withUnsafeBufferPointer { dy in
            gradInput.data.withUnsafeMutableBufferPointer { dx in
                argmax.withUnsafeBufferPointer { am in
                    for s in 0..<b {
                        for j in 0..<outT {
                            let o = (s * outT + j) * c
                            let first = dx.baseAddress! + (s * t + j * size) * c
                            for ch in 0..<c { first[Int(am[o + ch]) * c + ch] = dy[o + ch] }
                        }
                    }
                }
            }
        }
        return gradInput
    }
}

/// Global pooling over time: `[batch, time, channels]` to `[batch, 3 * channels]`, the mean, the maximum and the
/// L2 (root-mean-square, `sqrt(mean(x^2) + epsilon)`) of each channel, concatenated in that order.
public final class GlobalTemporalPool: Layer {
    public let name: String
    /// Added under the square root of the L2 pooling.
    public let epsilon: Float = 1e-6
    private var input = Tensor(zeros: [0])
    /// For each example and channel, the frame of the maximum.
    private var argmax: [Int32] = []
    private var rms: [Float] = []

    /// A pooling layer named `name`.
    public init(name: String) { self.name = name }

    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        let (b, t, c) = (input.shape[0], input.shape[1], input.shape[2])
        self.input = input
        var out = Tensor(zeros: [b, 3 * c])
        argmax = [Int32](repeating: 0, count: b * c)
        rms = [Float](repeating: 0, count: b * c)
        var sum = [Double](repeating: 0, count: c), sq = [Double](repeating: 0, count: c)
        input.data.withUnsafeBufferPointer { x in
            out.data.withUnsafeMutableBufferPointer { y in
                argmax.withUnsafeMutableBufferPointer { am in
                    rms.withUnsafeMutableBufferPointer { rm in
                        sum.withUnsafeMutableBufferPointer { su in
                            sq.withUnsafeMutableBufferPointer { q in
                                for s in 0..<b {
                                    let mx = y.baseAddress! + s * 3 * c + c
                                    let ams = am.baseAddress! + s * c
                                    for ch in 0..<c {
                                        su[ch] = 0
                                        q[ch] = 0
                                        mx[ch] = -Float.infinity
                                    }
                                    for j in 0..<t {
                                        let row = x.baseAddress! + (s * t + j) * c
                                        for ch in 0..<c {
                                            let v = row[ch]
                                            su[ch] += Double(v)
                                            q[ch] += Double(v) * Double(v)
                                            if v > mx[ch] {
                                                mx[ch] = v
                                                ams[ch] = Int32(j)
                                            }
                                        }
                                    }
                                    for ch in 0..<c {
                                        let r = Float((q[ch] / Double(t) + Double(epsilon)).squareRoot())
                                        y[s * 3 * c + ch] = Float(su[ch] / Double(t))
                                        y[s * 3 * c + 2 * c + ch] = r
                                        rm[s * c + ch] = r
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    public func backward(_ gradOutput: Tensor) -> Tensor {
        let (b, t, c) = (input.shape[0], input.shape[1], input.shape[2])
        var gradInput = Tensor(zeros: input.shape)
        let gMean = UnsafeMutablePointer<Float>.allocate(capacity: c)
        let gRMS = UnsafeMutablePointer<Float>.allocate(capacity: c)
        defer {
            gMean.deallocate()
            gRMS.deallocate()
        }
        let argmax = self.argmax, rms = self.rms
        input.data.withUnsafeBufferPointer { x in
            gradOutput.data.withUnsafeBufferPointer { dy in
                gradInput.data.withUnsafeMutableBufferPointer { dx in
                    for s in 0..<b {
                        for ch in 0..<c {
                            gMean[ch] = dy[s * 3 * c + ch] / Float(t)
                            gRMS[ch] = dy[s * 3 * c + 2 * c + ch] / (Float(t) * rms[s * c + ch])
                        }
                        for j in 0..<t {
                            let xr = x.baseAddress! + (s * t + j) * c, gr = dx.baseAddress! + (s * t + j) * c
                            for ch in 0..<c { gr[ch] = gMean[ch] + gRMS[ch] * xr[ch] }
                        }
                        for ch in 0..<c {
                            dx[(s * t + Int(argmax[s * c + ch])) * c + ch] += dy[s * 3 * c + c + ch]
                        }
                    }
                }
            }
        }
        return gradInput
    }
}

/// Scales each row of `[batch, dim]` to unit Euclidean length: `y = x / sqrt(|x|^2 + epsilon)`.
public final class L2Normalize: Layer {
    public let name: String
    /// Added to the squared norm.
    public let epsilon: Float = 1e-12
    private var output = Tensor(zeros: [0])
    private var norms: [Float] = []

    /// A normalization named `name`.
    public init(name: String) { self.name = name }

    public func forward(_ input: Tensor, training: Bool) -> Tensor {
        let n = input.shape[0]
        let d = input.count / max(1, n)
        var out = input
        norms = [Float](repeating: 0, count: n)
        for r in 0..<n {
            var sq = 0.0
            for j in 0..<d { sq += Double(input.data[r * d + j]) * Double(input.data[r * d + j]) }
            let norm = Float((sq + Double(epsilon)).squareRoot())
            norms[r] = norm
            for j in 0..<d { out.data[r * d + j] /= norm }
        }
        output = out
        return out
    }

    public func backward(_ gradOutput: Tensor) -> Tensor {
        let n = output.shape[0]
        let d = output.count / max(1, n)
        var g = gradOutput
        for r in 0..<n {
            var dot = 0.0
            for j in 0..<d { dot += Double(output.data[r * d + j]) * Double(gradOutput.data[r * d + j]) }
            for j in 0..<d {
                let i = r * d + j
                g.data[i] = (gradOutput.data[i] - Float(dot) * output.data[i]) / norms[r]
            }
        }
        return g
    }
}
