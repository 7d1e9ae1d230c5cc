import Foundation

/// The learning rate over training: a linear warm-up from 0 to `peak` over `warmupSteps`, then a half cosine down to
/// `peak * finalFraction` at `totalSteps` (held there after).
public struct LearningRateSchedule: Sendable, Equatable, Codable {
    /// The rate at the end of the warm-up.
    public var peak: Float
    /// Steps of linear warm-up.
    public var warmupSteps: Int
    /// The step at which the cosine reaches its floor.
    public var totalSteps: Int
    /// The floor, as a fraction of `peak`.
    public var finalFraction: Float

    /// A schedule; see the type's description.
    public init(peak: Float, warmupSteps: Int, totalSteps: Int, finalFraction: Float = 0.01) {
        self.peak = peak
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
        self.finalFraction = finalFraction
    }

    /// The rate for 0-based `step`.
    public func rate(at step: Int) -> Float {
        if step < warmupSteps { return peak * Float(step + 1) / Float(warmupSteps) }
        let span = max(1, totalSteps - warmupSteps)
        let progress = min(1, Double(step - warmupSteps) / Double(span))
        let floor = Double(peak * finalFraction)
        return Float(floor + (Double(peak) - floor) * 0.5 * (1 + Foundation.cos(Double.pi * progress)))
    }
}

/// AdamW (Loshchilov and Hutter): Adam moments with bias correction and decoupled weight decay applied to the
/// parameters marked as decaying, with optional clipping of the global gradient norm.
public final class AdamW {
    /// Moment decay rates and the denominator's epsilon.
    public let beta1: Float, beta2: Float, epsilon: Float
    /// Decoupled weight decay (multiplied by the learning rate).
    public let weightDecay: Float
    /// The largest global gradient norm, or `nil` for no clipping.
    public let clipNorm: Float?
    /// Steps taken so far.
    public internal(set) var step: Int = 0
    /// First and second moments, one array per parameter (in the order of the parameter list).
    public internal(set) var firstMoments: [[Float]]
    public internal(set) var secondMoments: [[Float]]

    /// An optimizer for parameters of the given sizes.
    public init(parameterSizes: [Int], beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8,
                weightDecay: Float = 1e-4, clipNorm: Float? = 5) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.clipNorm = clipNorm
        firstMoments = parameterSizes.map { [Float](repeating: 0, count: $0) }
        secondMoments = firstMoments
    }

    /// Restores moments and the step count (from a checkpoint); sizes must match.
    public func restore(step: Int, first: [[Float]], second: [[Float]]) throws(AudioModelError) {
        guard first.map(\.count) == firstMoments.map(\.count), second.map(\.count) == secondMoments.map(\.count) else {
            throw .invalidParameter(name: "optimizer state", reason: "moment sizes do not match the model's parameters")
        }
        self.step = step
        firstMoments = first
        secondMoments = second
    }

    /// The global Euclidean norm of the gradients.
    public static func gradientNorm(_ parameters: [Parameter]) -> Double {
        var sq = 0.0
        for p in parameters {
            p.grad.withUnsafeBufferPointer { g in
                for v in g { sq += Double(v) * Double(v) }
            }
        }
        return sq.squareRoot()
    }

    /// One update of `parameters` at `learningRate`; returns the gradient norm before clipping.
    @discardableResult
    public func update(_ parameters: [Parameter], learningRate: Float) -> Double {
        precondition(parameters.count == firstMoments.count, "AdamW: parameter list changed")
        let norm = Self.gradientNorm(parameters)
        var scale: Float = 1
        if let clipNorm, norm > Double(clipNorm) { scale = Float(Double(clipNorm) / norm) }
        step += 1
        let c1 = 1 - Float(Foundation.pow(Double(beta1), Double(step)))
        let c2 = 1 - Float(Foundation.pow(Double(beta2), Double(step)))
        for (pi, p) in parameters.enumerated() {
            let decay: Float = p.decays ? 1 - learningRate * weightDecay : 1
            let (beta1, beta2, epsilon) = (self.beta1, self.beta2, self.epsilon)
            firstMoments[pi].withUnsafeMutableBufferPointer { m in
                secondMoments[pi].withUnsafeMutableBufferPointer { v in
                    p.grad.withUnsafeBufferPointer { gp in
                        p.value.withUnsafeMutableBufferPointer { w in
                            for i in 0..<w.count {
                                let g = gp[i] * scale
                                m[i] = beta1 * m[i] + (1 - beta1) * g
                                v[i] = beta2 * v[i] + (1 - beta2) * g * g
                                let mh = m[i] / c1, vh = v[i] / c2
                                w[i] = w[i] * decay - learningRate * mh / (vh.squareRoot() + epsilon)
                            }
                        }
                    }
                }
            }
        }
        return norm
    }
}
