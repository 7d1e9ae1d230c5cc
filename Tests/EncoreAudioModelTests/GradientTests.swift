import EncoreCore
import Testing
@testable import EncoreAudioModel

/// Gradients of every layer and loss against central finite differences.
///
/// The layers compute in Float32, so the differences use a step of `1e-2` (`1e-3` around ReLU and max kinks) and a
/// loss accumulated in Double: `L = sum(r * layer(x))` for a fixed random `r`. Tolerance: every analytic gradient
/// value `a` and numeric value `n` agree to `|a - n| <= 2e-3 + 2e-2 * |n|`.
@Suite("AudioModel gradients")
struct GradientTests {
    static func random(_ count: Int, seed: UInt64, scale: Double = 1) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<count).map { _ in Float(rng.nextGaussian() * scale) }
    }

    /// `sum(r * y)` in Double.
    static func project(_ y: Tensor, _ r: [Float]) -> Double {
        zip(y.data, r).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
    }

    static func close(_ a: Float, _ n: Double) -> Bool {
        abs(Double(a) - n) <= 2e-3 + 2e-2 * abs(n)
    }

    /// Checks the input gradient and every parameter gradient of `layer` at `x`.
    static func check(_ layer: any Layer, input x: Tensor, step: Float = 1e-2, training: Bool = true,
                      checkInput: Bool = true) {
        let y = layer.forward(x, training: training)
        let r = random(y.count, seed: 99)
        for p in layer.parameters { p.zeroGrad() }
        let dx = layer.backward(Tensor(uncheckedShape: y.shape, data: r))
        func loss(_ input: Tensor) -> Double { project(layer.forward(input, training: training), r) }
        if checkInput {
            var failures = 0
            for i in 0..<x.count {
                var plus = x, minus = x
                plus.data[i] += step
                minus.data[i] -= step
                let n = (loss(plus) - loss(minus)) / (2 * Double(step))
                if !close(dx.data[i], n) {
                    failures += 1
                    if failures <= 3 { Issue.record("\(layer.name) input[\(i)]: analytic \(dx.data[i]), numeric \(n)") }
                }
            }
            #expect(failures == 0, "\(layer.name): \(failures) of \(x.count) input gradients off")
        }
        for p in layer.parameters {
            let analytic = p.grad
            var failures = 0
            for i in 0..<p.value.count {
                let v = p.value[i]
                p.value[i] = v + step
                let lp = loss(x)
                p.value[i] = v - step
                let lm = loss(x)
                p.value[i] = v
                let n = (lp - lm) / (2 * Double(step))
                if !close(analytic[i], n) {
                    failures += 1
                    if failures <= 3 { Issue.record("\(layer.name)/\(p.name)[\(i)]: analytic \(analytic[i]), numeric \(n)") }
                }
            }
            #expect(failures == 0, "\(layer.name)/\(p.name): \(failures) of \(p.value.count) gradients off")
        }
    }

    @Test("the convolution equals the direct sum over filter taps and input channels")
    func convolutionMatchesDefinition() throws {
        var rng = SplitMix64(seed: 1)
        let conv = Conv1D(name: "c", inChannels: 3, outChannels: 4, width: 4, rng: &rng)
        conv.bias.value = [0.5, -0.25, 0, 1]
        let x = try Tensor(shape: [2, 9, 3], data: Self.random(54, seed: 2))
        let y = conv.forward(x, training: true)
        #expect(y.shape == [2, 6, 4])
        for b in 0..<2 {
            for t in 0..<6 {
                for o in 0..<4 {
                    var s = Double(conv.bias.value[o])
                    for k in 0..<4 {
                        for c in 0..<3 {
                            s += Double(conv.weight.value[(o * 4 + k) * 3 + c]) * Double(x.data[(b * 9 + t + k) * 3 + c])
                        }
                    }
                    #expect(abs(Double(y.data[(b * 6 + t) * 4 + o]) - s) < 1e-5)
                }
            }
        }
    }

    @Test("Conv1D: data, weight and bias gradients")
    func convolution() throws {
        var rng = SplitMix64(seed: 3)
        let conv = Conv1D(name: "conv", inChannels: 3, outChannels: 5, width: 4, rng: &rng)
        Self.check(conv, input: try Tensor(shape: [2, 8, 3], data: Self.random(48, seed: 4)))
    }

    @Test("Dense: data, weight and bias gradients")
    func dense() throws {
        var rng = SplitMix64(seed: 5)
        let dense = Dense(name: "dense", inFeatures: 6, outFeatures: 4, rng: &rng)
        Self.check(dense, input: try Tensor(shape: [3, 6], data: Self.random(18, seed: 6)))
    }

    @Test("BatchNorm: gradients in training mode (batch statistics) and evaluation mode (running statistics)")
    func batchNorm() throws {
        let bn = BatchNorm(name: "bn", channels: 3)
        bn.gamma.value = [1.5, 0.5, -1]
        bn.beta.value = [0.1, -0.2, 0.3]
        let x = try Tensor(shape: [2, 4, 3], data: Self.random(24, seed: 7, scale: 2))
        Self.check(bn, input: x, training: true)
        bn.runningMean.value = [0.3, -0.1, 0.2]
        bn.runningVar.value = [2, 0.5, 1.5]
        Self.check(bn, input: x, training: false)
    }

    @Test("BatchNorm normalizes each channel to mean 0 and variance 1 over batch and time in training mode")
    func batchNormStatistics() throws {
        let bn = BatchNorm(name: "bn", channels: 2)
        let x = try Tensor(shape: [3, 5, 2], data: Self.random(30, seed: 8, scale: 3).map { $0 + 4 })
        let y = bn.forward(x, training: true)
        for c in 0..<2 {
            let v = stride(from: c, to: 30, by: 2).map { Double(y.data[$0]) }
            let mean = v.reduce(0, +) / 15
            let variance = v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 15
            #expect(abs(mean) < 1e-5)
            #expect(abs(variance - 1) < 1e-3)
        }
        // The running mean moved 10% of the way from 0 toward the batch mean (about 4).
        #expect(bn.runningMean.value.allSatisfy { $0 > 0.2 && $0 < 0.6 })
    }

    @Test("ReLU: gradient is the mask of positive inputs")
    func relu() throws {
        // Inputs kept away from the kink at 0 so a step of 1e-3 does not cross it.
        let data = Self.random(20, seed: 9).map { $0 >= 0 ? $0 + 0.05 : $0 - 0.05 }
        Self.check(ReLU(name: "relu"), input: try Tensor(shape: [2, 10], data: data), step: 1e-3)
    }

    @Test("MaxPool1D: gradient flows to each window's maximum; a remainder frame is dropped")
    func maxPool() throws {
        let pool = MaxPool1D(name: "pool", size: 2)
        let x = try Tensor(shape: [2, 7, 3], data: Self.random(42, seed: 10))
        #expect(pool.forward(x, training: true).shape == [2, 3, 3])
        Self.check(pool, input: x, step: 1e-3)
    }

    @Test("GlobalTemporalPool: mean, max and L2 pooling, values and gradients")
    func globalPool() throws {
        let pool = GlobalTemporalPool(name: "gp")
        let x = try Tensor(shape: [1, 4, 2], data: [1, -2, 3, 0, -1, 4, 1, 2])
        let y = pool.forward(x, training: true)
        // Channel 0: 1, 3, -1, 1; channel 1: -2, 0, 4, 2.
        #expect(y.shape == [1, 6])
        #expect(abs(y.data[0] - 1) < 1e-6 && abs(y.data[1] - 1) < 1e-6)
        #expect(y.data[2] == 3 && y.data[3] == 4)
        #expect(abs(y.data[4] - Float((12.0 / 4).squareRoot())) < 1e-5)
        #expect(abs(y.data[5] - Float((24.0 / 4).squareRoot())) < 1e-5)
        Self.check(pool, input: try Tensor(shape: [2, 5, 3], data: Self.random(30, seed: 11)), step: 1e-3)
    }

    @Test("L2Normalize: unit rows and their gradient")
    func l2() throws {
        let norm = L2Normalize(name: "l2")
        let x = try Tensor(shape: [3, 4], data: Self.random(12, seed: 12))
        let y = norm.forward(x, training: true)
        for r in 0..<3 {
            let sq = (0..<4).reduce(0.0) { $0 + Double(y.data[r * 4 + $1]) * Double(y.data[r * 4 + $1]) }
            #expect(abs(sq - 1) < 1e-5)
        }
        Self.check(norm, input: x)
    }

    /// Checks a loss's gradient against central differences of the loss itself.
    static func checkLoss(_ x: Tensor, step: Float = 1e-2, _ loss: (Tensor) -> LossResult) {
        let analytic = loss(x).gradient
        var failures = 0
        for i in 0..<x.count {
            var plus = x, minus = x
            plus.data[i] += step
            minus.data[i] -= step
            let n = (loss(plus).value - loss(minus).value) / (2 * Double(step))
            if !close(analytic.data[i], n) {
                failures += 1
                if failures <= 3 { Issue.record("loss input[\(i)]: analytic \(analytic.data[i]), numeric \(n)") }
            }
        }
        #expect(failures == 0)
    }

    @Test("cosine regression loss: value by hand, gradient, and rows without a target are ignored")
    func cosineLoss() throws {
        let p = try Tensor(shape: [2, 2], data: [1, 0, 3, 4])
        // Row 0 against (0, 1): cos 0, loss 1. Row 1 has no target.
        let r = Losses.cosine(prediction: p, targets: [0, 1, 9, 9], hasTarget: [true, false])
        #expect(abs(r.value - 1) < 1e-9)
        #expect(r.gradient.data[2] == 0 && r.gradient.data[3] == 0)
        let x = try Tensor(shape: [3, 4], data: Self.random(12, seed: 13))
        let t = Self.random(12, seed: 14)
        Self.checkLoss(x) { Losses.cosine(prediction: $0, targets: t, hasTarget: [true, true, false]) }
    }

    @Test("NT-Xent: value by hand for two pairs, and its gradient")
    func ntXent() throws {
        // Four unit rows: pairs (0, 2) and (1, 3). Rows 0 and 2 are equal, 1 and 3 equal, the pairs orthogonal.
        let z = try Tensor(shape: [4, 2], data: [1, 0, 0, 1, 1, 0, 0, 1])
        let t: Float = 0.5
        let r = Losses.ntXent(embeddings: z, temperature: t)
        // Each row: partner at cos 1, two others at cos 0: -log(e^2 / (e^2 + 2)).
        let expected = -Foundation.log(Foundation.exp(2.0) / (Foundation.exp(2.0) + 2))
        #expect(abs(r.value - expected) < 1e-6)
        let x = try Tensor(shape: [6, 3], data: Self.random(18, seed: 15, scale: 0.5))
        Self.checkLoss(x) { Losses.ntXent(embeddings: $0, temperature: t) }
    }

    @Test("the whole network: parameter gradients of the combined loss against finite differences")
    func wholeModel() throws {
        let config = AudioModelConfiguration(bands: 4, convChannels: [3, 4], convWidth: 2, poolSizes: [2, 1],
                                             hidden: 5, dim: 3, cfFactors: 2, seed: 16)
        let model = try AudioEmbeddingModel(configuration: config)
        let x = try Tensor(shape: [4, 7, 4], data: Self.random(112, seed: 17))
        let targets = Self.random(8, seed: 18)
        func loss() throws -> (Double, AudioModelOutput) {
            let out = try model.forward(x, training: true)
            let c = Losses.ntXent(embeddings: out.embeddings, temperature: 0.5)
            let f = Losses.cosine(prediction: out.cf!, targets: targets, hasTarget: [true, true, false, true])
            return (c.value + 0.5 * f.value, out)
        }
        let (_, out) = try loss()
        model.zeroGrad()
        let c = Losses.ntXent(embeddings: out.embeddings, temperature: 0.5)
        var f = Losses.cosine(prediction: out.cf!, targets: targets, hasTarget: [true, true, false, true])
        for i in f.gradient.data.indices { f.gradient.data[i] *= 0.5 }
        model.backward(embeddingGrad: c.gradient, cfGrad: f.gradient)
        // Relative error over all parameters: |a - n| / |n| in the Euclidean norm (ReLU and max kinks make a few
        // single values noisy; the vector must agree to 5%).
        var diff = 0.0, norm = 0.0
        let step: Float = 1e-3
        for (_, p) in model.namedParameters {
            let analytic = p.grad
            for i in 0..<p.value.count {
                let v = p.value[i]
                p.value[i] = v + step
                let lp = try loss().0
                p.value[i] = v - step
                let lm = try loss().0
                p.value[i] = v
                let n = (lp - lm) / (2 * Double(step))
                diff += (Double(analytic[i]) - n) * (Double(analytic[i]) - n)
                norm += n * n
            }
        }
        #expect(norm > 0)
        #expect((diff / norm).squareRoot() < 5e-2, "relative gradient error \((diff / norm).squareRoot())")
    }
}

import Foundation
