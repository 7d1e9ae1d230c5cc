import EncoreCore

/// The shape of an audio embedding network (stored in the model file; a model loads only into the same shape).
public struct AudioModelConfiguration: Sendable, Equatable, Codable {
    /// Mel bands of the input (the first convolution's input channels).
    public var bands: Int = 128
    /// Output channels of each convolution block.
    public var convChannels: [Int] = [256, 256, 512]
    /// Filter width of every convolution, in frames.
    public var convWidth: Int = 4
    /// Max-pooling size after each convolution block (one per block).
    public var poolSizes: [Int] = [4, 2, 2]
    /// Width of the hidden dense layer after global pooling.
    public var hidden: Int = 1024
    /// Embedding dimension (`--dim`).
    public var dim: Int = 64
    /// Width of the CF regression head (the ALS factor count), or 0 for no CF head.
    public var cfFactors: Int = 0
    /// Seed of the initial weights.
    public var seed: UInt64 = 42

    /// The default configuration (about 2.5 M parameters at 64 dimensions).
    public init() {}

    /// A configuration with every field given.
    public init(bands: Int, convChannels: [Int], convWidth: Int, poolSizes: [Int], hidden: Int, dim: Int,
                cfFactors: Int, seed: UInt64 = 42) {
        self.bands = bands
        self.convChannels = convChannels
        self.convWidth = convWidth
        self.poolSizes = poolSizes
        self.hidden = hidden
        self.dim = dim
        self.cfFactors = cfFactors
        self.seed = seed
    }

    /// Checks every size is positive and the lists agree.
    public func validate() throws(AudioModelError) {
        for (name, v) in [("bands", bands), ("convWidth", convWidth), ("hidden", hidden), ("dim", dim)] where v < 1 {
            throw .invalidParameter(name: name, reason: "must be at least 1 (got \(v))")
        }
        guard cfFactors >= 0 else { throw .invalidParameter(name: "cfFactors", reason: "must be 0 or more (got \(cfFactors))") }
        guard !convChannels.isEmpty, convChannels.allSatisfy({ $0 >= 1 }) else {
            throw .invalidParameter(name: "convChannels", reason: "needs at least one block, each with at least 1 channel (got \(convChannels))")
        }
        guard poolSizes.count == convChannels.count, poolSizes.allSatisfy({ $0 >= 1 }) else {
            throw .invalidParameter(name: "poolSizes", reason: "needs one size of at least 1 per convolution block (got \(poolSizes) for \(convChannels.count) blocks)")
        }
    }

    /// The fewest input frames the network accepts (each block needs a full filter and a full pooling window).
    public var minimumFrames: Int {
        var t = 1
        for p in poolSizes.reversed() { t = t * p + convWidth - 1 }
        return t
    }
}

/// What one forward pass produces for a batch.
public struct AudioModelOutput: Sendable {
    /// `[batch, dim]`, each row L2-normalized.
    public var embeddings: Tensor
    /// `[batch, cfFactors]`, the CF head's raw prediction (its direction is what the loss scores), when there is a head.
    public var cf: Tensor?
}

/// The audio embedding CNN: per-band standardization, convolution blocks (conv, batch norm, ReLU, max-pool) along
/// time over log-mel input `[batch, frames, bands]`, global temporal pooling (mean, max, L2), a hidden dense layer
/// with ReLU, then an L2-normalized embedding head and an optional CF regression head.
///
/// Not thread-safe: a model holds the caches of its last forward pass. BLAS does the heavy work on its own threads.
public final class AudioEmbeddingModel {
    /// The shape.
    public let configuration: AudioModelConfiguration
    /// Per-band mean of the training features (subtracted before the first layer).
    public var featureMean: [Float]
    /// Per-band standard deviation of the training features (divides after the mean is subtracted).
    public var featureStd: [Float]
    /// The trunk: convolution blocks, global pooling, hidden layer.
    let trunk: [any Layer]
    let embeddingHead: Dense
    let embeddingNorm: L2Normalize
    let cfHead: Dense?

    /// A freshly initialized model (weights from `configuration.seed`, identity standardization).
    public init(configuration: AudioModelConfiguration) throws(AudioModelError) {
        try configuration.validate()
        self.configuration = configuration
        featureMean = [Float](repeating: 0, count: configuration.bands)
        featureStd = [Float](repeating: 1, count: configuration.bands)
        var rng = SplitMix64(seed: configuration.seed)
        var layers: [any Layer] = []
        var channels = configuration.bands
        for (i, (out, pool)) in zip(configuration.convChannels, configuration.poolSizes).enumerated() {
            let n = i + 1
            let conv = Conv1D(name: "conv\(n)", inChannels: channels, outChannels: out,
                              width: configuration.convWidth, rng: &rng)
            conv.computesInputGradient = i > 0
            layers.append(conv)
            layers.append(BatchNorm(name: "bn\(n)", channels: out))
            layers.append(ReLU(name: "relu\(n)"))
            if pool > 1 { layers.append(MaxPool1D(name: "pool\(n)", size: pool)) }
            channels = out
        }
        layers.append(GlobalTemporalPool(name: "global_pool"))
        layers.append(Dense(name: "hidden", inFeatures: 3 * channels, outFeatures: configuration.hidden, rng: &rng))
        layers.append(ReLU(name: "hidden_relu"))
        trunk = layers
        embeddingHead = Dense(name: "embedding", inFeatures: configuration.hidden, outFeatures: configuration.dim, rng: &rng)
        embeddingNorm = L2Normalize(name: "embedding_norm")
        cfHead = configuration.cfFactors > 0
            ? Dense(name: "cf", inFeatures: configuration.hidden, outFeatures: configuration.cfFactors, rng: &rng) : nil
    }

    /// Every layer in order (trunk, embedding head, CF head).
    public var layers: [any Layer] {
        var all = trunk
        all.append(embeddingHead)
        all.append(embeddingNorm)
        if let cfHead { all.append(cfHead) }
        return all
    }

    /// Every trainable parameter with its layer-qualified name (`conv1/weight`), in a fixed order.
    public var namedParameters: [(String, Parameter)] {
        layers.flatMap { layer in layer.parameters.map { ("\(layer.name)/\($0.name)", $0) } }
    }

    /// Every saved non-trainable array (running statistics) with its layer-qualified name.
    public var namedBuffers: [(String, Parameter)] {
        layers.flatMap { layer in layer.buffers.map { ("\(layer.name)/\($0.name)", $0) } }
    }

    /// The number of trainable values.
    public var parameterCount: Int { namedParameters.reduce(0) { $0 + $1.1.value.count } }

    /// Clears every parameter gradient.
    public func zeroGrad() {
        for (_, p) in namedParameters { p.zeroGrad() }
    }

    /// Runs the network on raw log-mel input `[batch, frames, bands]` (dB, before standardization).
    public func forward(_ input: Tensor, training: Bool) throws(AudioModelError) -> AudioModelOutput {
        guard input.shape.count == 3, input.shape[2] == configuration.bands else {
            throw .invalidParameter(name: "input", reason: "expected [batch, frames, \(configuration.bands)], got \(input.shape)")
        }
        guard input.shape[1] >= configuration.minimumFrames else {
            throw .invalidParameter(name: "input", reason: "\(input.shape[1]) frames are fewer than the \(configuration.minimumFrames) the network needs")
        }
        var x = input
        let c = configuration.bands
        let rows = x.count / c
        x.data.withUnsafeMutableBufferPointer { d in
            featureMean.withUnsafeBufferPointer { m in
                featureStd.withUnsafeBufferPointer { s in
                    for r in 0..<rows {
                        let row = d.baseAddress! + r * c
                        for j in 0..<c { row[j] = (row[j] - m[j]) / s[j] }
                    }
                }
            }
        }
        for layer in trunk { x = layer.forward(x, training: training) }
        let e = embeddingNorm.forward(embeddingHead.forward(x, training: training), training: training)
        let cf = cfHead?.forward(x, training: training)
        return AudioModelOutput(embeddings: e, cf: cf)
    }

    /// Back-propagates the gradients of the loss with respect to the last forward pass's embeddings and CF output
    /// (either may be absent: that head contributes nothing), accumulating every parameter's gradient.
    public func backward(embeddingGrad: Tensor?, cfGrad: Tensor?) {
        var g: Tensor? = nil
        if let embeddingGrad {
            g = embeddingHead.backward(embeddingNorm.backward(embeddingGrad))
        }
        if let cfGrad, let cfHead {
            let h = cfHead.backward(cfGrad)
            if var acc = g {
                for i in acc.data.indices { acc.data[i] += h.data[i] }
                g = acc
            } else {
                g = h
            }
        }
        guard var grad = g else { return }
        for layer in trunk.reversed() { grad = layer.backward(grad) }
    }
}
