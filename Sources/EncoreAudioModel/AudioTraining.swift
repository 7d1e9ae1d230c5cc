import Foundation
import EncoreCore

/// What the network is trained to do.
public enum AudioObjective: String, Sendable, Equatable, Codable, CaseIterable {
    /// NT-Xent over two crops of each track (no listening data needed).
    case contrastive
    /// Cosine regression onto each track's L2-normalized ALS item vector.
    case cf
    /// Both, the CF loss weighted by ``AudioTrainingOptions/cfWeight``.
    case both
}

/// Settings of a training run.
public struct AudioTrainingOptions: Sendable, Equatable, Codable {
    public var objective: AudioObjective = .contrastive
    /// Passes over the training tracks (at most; early stopping may end sooner).
    public var epochs: Int = 30
    /// Tracks per mini-batch (contrastive batches hold two crops of each).
    public var batchSize: Int = 32
    /// Frames per training crop.
    public var cropFrames: Int = 130
    /// Seed of the split, the batch order, the crops and the augmentations.
    public var seed: UInt64 = 42
    /// Threads for batch assembly and OpenBLAS.
    public var threads: Int = 2
    /// The share of tracks held out for validation (0 for none: the training loss is monitored instead).
    public var validationShare: Double = 0.1
    /// AdamW's peak learning rate.
    public var learningRate: Float = 1e-3
    /// AdamW's decoupled weight decay.
    public var weightDecay: Float = 1e-4
    /// The global gradient-norm clip, or `nil`.
    public var clipNorm: Float? = 5
    /// NT-Xent temperature.
    public var temperature: Float = 0.5
    /// Weight of the CF loss in `both`.
    public var cfWeight: Float = 1
    /// Epochs without a better validation loss before training stops.
    public var patience: Int = 5
    /// Random gain, noise, filtering (spectral tilt) on training crops.
    public var augment: Bool = true

    /// The defaults.
    public init() {}

    /// Checks every value is in range.
    public func validate() throws(AudioModelError) {
        guard epochs >= 1 else { throw .invalidParameter(name: "epochs", reason: "must be at least 1 (got \(epochs))") }
        guard batchSize >= 2 else { throw .invalidParameter(name: "batch", reason: "must be at least 2 (got \(batchSize))") }
        guard cropFrames >= 1 else { throw .invalidParameter(name: "crop", reason: "must be at least 1 frame (got \(cropFrames))") }
        guard threads >= 1 else { throw .invalidParameter(name: "threads", reason: "must be at least 1 (got \(threads))") }
        guard validationShare >= 0, validationShare < 1 else {
            throw .invalidParameter(name: "validation-share", reason: "must be in [0, 1) (got \(validationShare))")
        }
        guard learningRate > 0, learningRate.isFinite else {
            throw .invalidParameter(name: "learning rate", reason: "must be positive (got \(learningRate))")
        }
        guard temperature > 0 else { throw .invalidParameter(name: "temperature", reason: "must be positive (got \(temperature))") }
        guard cfWeight >= 0 else { throw .invalidParameter(name: "cf weight", reason: "must be 0 or more (got \(cfWeight))") }
        guard patience >= 1 else { throw .invalidParameter(name: "patience", reason: "must be at least 1 (got \(patience))") }
    }
}

/// CF regression targets: one L2-normalized row per track of the set (zeros where a track has none).
public struct CFTargets: Sendable, Equatable {
    /// Factors per vector.
    public var factors: Int
    /// `tracks x factors`, row-major, unit rows where `hasTarget`.
    public var vectors: [Float]
    /// Whether each track has a vector.
    public var hasTarget: [Bool]

    /// Targets from per-track vectors (`nil` for none), each normalized to unit length; a zero vector counts as none.
    public init(factors: Int, perTrack: [[Float]?]) {
        self.factors = factors
        vectors = [Float](repeating: 0, count: perTrack.count * factors)
        hasTarget = [Bool](repeating: false, count: perTrack.count)
        for (i, v) in perTrack.enumerated() {
            guard let v, v.count == factors else { continue }
            let norm = v.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            guard norm > 0, norm.isFinite else { continue }
            for j in 0..<factors { vectors[i * factors + j] = Float(Double(v[j]) / norm) }
            hasTarget[i] = true
        }
    }
}

/// One epoch's figures.
public struct AudioEpochReport: Sendable, Equatable, Codable {
    /// 1-based epoch.
    public var epoch: Int
    /// Mean training loss over the epoch's batches.
    public var trainLoss: Double
    /// Validation loss (NaN without a validation split).
    public var validationLoss: Double
    /// The learning rate at the epoch's last step.
    public var learningRate: Double
    /// Wall-clock seconds of the epoch.
    public var seconds: Double

    /// A report with every field given.
    public init(epoch: Int, trainLoss: Double, validationLoss: Double, learningRate: Double, seconds: Double) {
        self.epoch = epoch
        self.trainLoss = trainLoss
        self.validationLoss = validationLoss
        self.learningRate = learningRate
        self.seconds = seconds
    }
}

/// Everything needed to continue training where it stopped: the model's and the best model's weights, the
/// optimizer's moments, the history and the early-stopping state.
public struct AudioTrainingCheckpoint: Sendable {
    public var configuration: AudioModelConfiguration
    public var options: AudioTrainingOptions
    public var featureMean: [Float]
    public var featureStd: [Float]
    /// Current weights and running statistics by qualified name (`conv1/weight`).
    public var weights: [String: [Float]]
    /// The best epoch's weights by qualified name.
    public var bestWeights: [String: [Float]]
    public var optimizerStep: Int
    /// Adam moments by qualified parameter name.
    public var firstMoments: [String: [Float]]
    public var secondMoments: [String: [Float]]
    public var history: [AudioEpochReport]
    /// The best monitored loss so far and its epoch.
    public var bestLoss: Double
    public var bestEpoch: Int
    /// Epochs completed.
    public var epochsDone: Int
    /// Whether early stopping ended the run.
    public var stoppedEarly: Bool

    /// A checkpoint with every field given.
    public init(configuration: AudioModelConfiguration, options: AudioTrainingOptions, featureMean: [Float],
                featureStd: [Float], weights: [String: [Float]], bestWeights: [String: [Float]], optimizerStep: Int,
                firstMoments: [String: [Float]], secondMoments: [String: [Float]], history: [AudioEpochReport],
                bestLoss: Double, bestEpoch: Int, epochsDone: Int, stoppedEarly: Bool) {
        self.configuration = configuration
        self.options = options
        self.featureMean = featureMean
        self.featureStd = featureStd
        self.weights = weights
        self.bestWeights = bestWeights
        self.optimizerStep = optimizerStep
        self.firstMoments = firstMoments
        self.secondMoments = secondMoments
        self.history = history
        self.bestLoss = bestLoss
        self.bestEpoch = bestEpoch
        self.epochsDone = epochsDone
        self.stoppedEarly = stoppedEarly
    }
}

/// A trained model with what it was trained on, as the model file stores it.
public struct AudioModelSnapshot: Sendable {
    public var configuration: AudioModelConfiguration
    public var objective: AudioObjective
    public var cropFrames: Int
    public var framesPerSecond: Double
    public var temperature: Float
    public var featureMean: [Float]
    public var featureStd: [Float]
    /// Weights and running statistics by qualified name.
    public var weights: [String: [Float]]
    public var history: [AudioEpochReport]

    /// A snapshot with every field given.
    public init(configuration: AudioModelConfiguration, objective: AudioObjective, cropFrames: Int,
                framesPerSecond: Double, temperature: Float, featureMean: [Float], featureStd: [Float],
                weights: [String: [Float]], history: [AudioEpochReport]) {
        self.configuration = configuration
        self.objective = objective
        self.cropFrames = cropFrames
        self.framesPerSecond = framesPerSecond
        self.temperature = temperature
        self.featureMean = featureMean
        self.featureStd = featureStd
        self.weights = weights
        self.history = history
    }

    /// A model with these weights.
    public func makeModel(source: String = "<in memory>") throws(AudioModelError) -> AudioEmbeddingModel {
        let model = try AudioEmbeddingModel(configuration: configuration)
        try model.load(weights: weights, featureMean: featureMean, featureStd: featureStd, source: source)
        return model
    }
}

extension AudioEmbeddingModel {
    /// Every parameter and running statistic by qualified name, copied.
    public func weights() -> [String: [Float]] {
        var out: [String: [Float]] = [:]
        for (name, p) in namedParameters + namedBuffers { out[name] = p.value }
        return out
    }

    /// The shapes of every parameter and running statistic by qualified name.
    public func weightShapes() -> [String: [Int]] {
        var out: [String: [Int]] = [:]
        for (name, p) in namedParameters + namedBuffers { out[name] = p.shape }
        return out
    }

    /// Replaces every weight; every name must be present with the right size, and no other names.
    public func load(weights: [String: [Float]], featureMean: [Float], featureStd: [Float],
                     source: String) throws(AudioModelError) {
        let named = namedParameters + namedBuffers
        for (name, p) in named {
            guard let w = weights[name] else { throw .incompatibleModel(path: source, reason: "weight '\(name)' is missing") }
            guard w.count == p.value.count else {
                throw .incompatibleModel(path: source, reason: "weight '\(name)' has \(w.count) values; the configuration needs shape \(p.shape) (\(p.value.count))")
            }
        }
        let known = Set(named.map(\.0))
        if let extra = weights.keys.sorted().first(where: { !known.contains($0) }) {
            throw .incompatibleModel(path: source, reason: "weight '\(extra)' does not belong to this configuration")
        }
        guard featureMean.count == configuration.bands, featureStd.count == configuration.bands else {
            throw .incompatibleModel(path: source, reason: "normalization statistics have \(featureMean.count) and \(featureStd.count) bands, the model \(configuration.bands)")
        }
        guard featureStd.allSatisfy({ $0 > 0 && $0.isFinite }), featureMean.allSatisfy(\.isFinite) else {
            throw .incompatibleModel(path: source, reason: "normalization statistics must be finite with positive deviations")
        }
        for (name, p) in named { p.value = weights[name]! }
        self.featureMean = featureMean
        self.featureStd = featureStd
    }
}

/// Trains an ``AudioEmbeddingModel`` on a ``LogMelSet``: a seeded split into training and validation tracks,
/// mini-batches of random crops assembled in parallel (each crop from its own seeded generator, so the result does
/// not depend on scheduling), AdamW with warm-up and cosine decay, early stopping on the validation loss, and a
/// checkpoint after every epoch.
///
/// For a given seed and thread count the weights after every step are bit-identical from run to run.
public final class AudioModelTrainer {
    public let model: AudioEmbeddingModel
    public let set: LogMelSet
    public let options: AudioTrainingOptions
    public let targets: CFTargets?
    /// Indices of the training and validation tracks.
    public let trainingTracks: [Int]
    public let validationTracks: [Int]
    let optimizer: AdamW
    let schedule: LearningRateSchedule
    let stepsPerEpoch: Int
    private var state: AudioTrainingCheckpoint

    /// Checks the inputs and prepares a run. Nothing is trained until ``run(onBatch:onEpoch:)``.
    ///
    /// - Throws: ``AudioModelError`` for an unusable set (NaN values, tracks without frames, too few tracks for the
    ///   split and the objective), missing CF targets, or a crop shorter than the network needs.
    public init(model: AudioEmbeddingModel, set: LogMelSet, targets: CFTargets?, options: AudioTrainingOptions,
                resume: AudioTrainingCheckpoint? = nil) throws(AudioModelError) {
        try options.validate()
        try set.validate()
        let config = model.configuration
        guard set.bands == config.bands else {
            throw .invalidInput(path: set.source, reason: "the features have \(set.bands) mel bands, the model \(config.bands)")
        }
        guard options.cropFrames >= config.minimumFrames else {
            throw .invalidParameter(name: "crop", reason: "\(options.cropFrames) frames are fewer than the \(config.minimumFrames) the network needs")
        }
        let usesCF = options.objective != .contrastive
        if usesCF {
            guard let targets else {
                throw .invalidParameter(name: "objective", reason: "'\(options.objective.rawValue)' needs CF targets (pass --bundle)")
            }
            guard config.cfFactors == targets.factors, targets.hasTarget.count == set.trackCount else {
                throw .invalidParameter(name: "targets", reason: "\(targets.factors) factors for \(targets.hasTarget.count) tracks; the model has a \(config.cfFactors)-factor head and the set \(set.trackCount) tracks")
            }
        }
        var eligible = Array(0..<set.trackCount)
        if options.objective == .cf, let targets { eligible = eligible.filter { targets.hasTarget[$0] } }
        let minimumTracks = 4
        guard eligible.count >= minimumTracks else {
            let what = options.objective == .cf ? "tracks with a CF vector" : "tracks"
            throw .invalidInput(path: set.source, reason: "the training set is too small: \(eligible.count) \(what), at least \(minimumTracks) are needed")
        }
        var rng = SplitMix64(seed: options.seed ^ 0x5EED_5B11)
        eligible.shuffle(using: &rng)
        var validationCount = options.validationShare > 0
            ? max(2, Int((Double(eligible.count) * options.validationShare).rounded())) : 0
        validationCount = min(validationCount, eligible.count - 2)
        let validation = Array(eligible[..<validationCount]).sorted()
        let training = Array(eligible[validationCount...]).sorted()
        validationTracks = validation
        trainingTracks = training
        if usesCF, let targets, !training.contains(where: { targets.hasTarget[$0] }) {
            throw .invalidInput(path: set.source, reason: "no training track has a CF vector (the bundle's item ids match none of the features' track ids)")
        }
        self.model = model
        self.set = set
        self.options = options
        self.targets = targets
        let steps = Self.batches(of: training.count, size: options.batchSize).count
        stepsPerEpoch = steps
        let total = steps * options.epochs
        schedule = LearningRateSchedule(peak: options.learningRate, warmupSteps: max(1, min(steps, total / 5)),
                                        totalSteps: total)
        let optimizer = AdamW(parameterSizes: model.namedParameters.map { $0.1.value.count },
                              weightDecay: options.weightDecay, clipNorm: options.clipNorm)
        self.optimizer = optimizer
        if let resume {
            guard resume.configuration == config else {
                throw .incompatibleModel(path: "checkpoint", reason: "it was written for another model configuration")
            }
            var a = resume.options, b = options
            a.epochs = 0
            b.epochs = 0
            guard a == b else {
                throw .incompatibleModel(path: "checkpoint", reason: "it was written with other training options (only --epochs may change on resume)")
            }
            try model.load(weights: resume.weights, featureMean: resume.featureMean, featureStd: resume.featureStd,
                           source: "checkpoint")
            let names = model.namedParameters.map(\.0)
            var first: [[Float]] = [], second: [[Float]] = []
            for n in names {
                guard let m = resume.firstMoments[n], let v = resume.secondMoments[n] else {
                    throw .incompatibleModel(path: "checkpoint", reason: "optimizer moments for '\(n)' are missing")
                }
                first.append(m)
                second.append(v)
            }
            try optimizer.restore(step: resume.optimizerStep, first: first, second: second)
            state = resume
            state.options = options
        } else {
            let (mean, std) = Self.bandStatistics(set, tracks: training)
            model.featureMean = mean
            model.featureStd = std
            state = AudioTrainingCheckpoint(
                configuration: config, options: options, featureMean: mean, featureStd: std, weights: model.weights(),
                bestWeights: model.weights(), optimizerStep: 0, firstMoments: [:], secondMoments: [:], history: [],
                bestLoss: .infinity, bestEpoch: 0, epochsDone: 0, stoppedEarly: false)
        }
    }

    /// Steps (mini-batches) per epoch.
    public var batchesPerEpoch: Int { stepsPerEpoch }

    /// Per-band mean and standard deviation over the frames of `tracks` (deviation floored at 1e-3).
    static func bandStatistics(_ set: LogMelSet, tracks: [Int]) -> ([Float], [Float]) {
        let c = set.bands
        var sum = [Double](repeating: 0, count: c), sq = [Double](repeating: 0, count: c)
        var n = 0.0
        for t in tracks {
            for f in set.offsets[t]..<set.offsets[t + 1] {
                for b in 0..<c {
                    let v = Double(set.data[f * c + b])
                    sum[b] += v
                    sq[b] += v * v
                }
                n += 1
            }
        }
        let mean = sum.map { $0 / max(n, 1) }
        let std = (0..<c).map { b in max(1e-3, (max(0, sq[b] / max(n, 1) - mean[b] * mean[b])).squareRoot()) }
        return (mean.map { Float($0) }, std.map { Float($0) })
    }

    /// Splits `count` items into batches of `size`; a last batch of one joins the one before (NT-Xent needs two).
    static func batches(of count: Int, size: Int) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var start = 0
        while start < count {
            out.append(start..<min(count, start + size))
            start += size
        }
        if out.count > 1, let last = out.last, last.count < 2 {
            out.removeLast()
            out[out.count - 1] = out[out.count - 1].lowerBound..<last.upperBound
        }
        return out
    }

    /// A generator for one crop, from the run's seed and the crop's coordinates.
    static func cropGenerator(seed: UInt64, _ a: Int, _ b: Int, _ c: Int) -> SplitMix64 {
        var mix = SplitMix64(seed: seed ^ (UInt64(truncatingIfNeeded: a) &* 0x9E37_79B9_7F4A_7C15))
        var g = SplitMix64(seed: mix.next() ^ (UInt64(truncatingIfNeeded: b) &* 0xBF58_476D_1CE4_E5B9))
        return SplitMix64(seed: g.next() ^ (UInt64(truncatingIfNeeded: c) &* 0x94D0_49BB_1331_11EB))
    }

    /// Copies a crop of `frames` frames of track `track` starting at a random frame into `out` (tiling a shorter
    /// track), then, when `augment`, applies a random gain (±6 dB), a noise floor 20-40 dB under the crop's peak
    /// (added in the power domain) and a spectral tilt (±6 dB from the lowest to the highest band), each with
    /// probability one half.
    static func crop(_ set: LogMelSet, track: Int, frames: Int, augment: Bool, rng: inout SplitMix64,
                     into out: UnsafeMutablePointer<Float>) {
        let c = set.bands
        let length = set.frames(of: track)
        let base = set.offsets[track]
        let start = length >= frames ? Int(rng.next() % UInt64(length - frames + 1)) : Int(rng.next() % UInt64(length))
        set.data.withUnsafeBufferPointer { d in
            if length >= frames {
                (out).update(from: d.baseAddress! + (base + start) * c, count: frames * c)
            } else {
                for f in 0..<frames {
                    (out + f * c).update(from: d.baseAddress! + (base + (start + f) % length) * c, count: c)
                }
            }
        }
        guard augment else { return }
        let n = frames * c
        if rng.nextFloat() < 0.5 {
            let gain = (rng.nextFloat() * 2 - 1) * 6
            for i in 0..<n { out[i] += gain }
        }
        if rng.nextFloat() < 0.5 {
            var peak = -Float.infinity
            for i in 0..<n { peak = max(peak, out[i]) }
            let floorDB = peak - 20 - rng.nextFloat() * 20
            let floorPower = Foundation.pow(10, Double(floorDB) / 10)
            for i in 0..<n {
                let jitter = 0.5 + rng.nextDouble()
                out[i] = Float(10 * Foundation.log10(Foundation.pow(10, Double(out[i]) / 10) + floorPower * jitter))
            }
        }
        if rng.nextFloat() < 0.5 {
            let slope = (rng.nextFloat() * 2 - 1) * 6
            for f in 0..<frames {
                for b in 0..<c { out[f * c + b] += slope * (Float(b) / Float(max(1, c - 1)) - 0.5) }
            }
        }
    }

    /// The input of one batch: one crop per track (`cf`) or two (`contrastive`, `both`; rows `i` and `i + n` are the
    /// same track), assembled on `threads` threads, with the CF targets of its rows.
    func assemble(_ tracks: [Int], epoch: Int, step: Int, augment: Bool) -> (Tensor, [Float], [Bool]) {
        let views = options.objective == .cf ? 1 : 2
        let n = tracks.count
        let rows = n * views
        let frames = options.cropFrames, c = set.bands
        var input = Tensor(zeros: [rows, frames, c])
        input.data.withUnsafeMutableBufferPointer { buf in
            let base = UncheckedSendable(buf.baseAddress!)
            Parallel.forEach(rows, threads: options.threads) { r in
                var rng = Self.cropGenerator(seed: options.seed, epoch, step, r)
                Self.crop(set, track: tracks[r % n], frames: frames, augment: augment, rng: &rng,
                          into: base.value + r * frames * c)
            }
        }
        let f = targets?.factors ?? 0
        var t = [Float](repeating: 0, count: rows * f)
        var has = [Bool](repeating: false, count: rows)
        if let targets, options.objective != .contrastive {
            for r in 0..<rows where targets.hasTarget[tracks[r % n]] {
                has[r] = true
                for j in 0..<f { t[r * f + j] = targets.vectors[tracks[r % n] * f + j] }
            }
        }
        return (input, t, has)
    }

    /// The objective's loss on a forward pass, with the gradients for both heads.
    func loss(_ out: AudioModelOutput, targets t: [Float], hasTarget: [Bool]) -> (Double, Tensor?, Tensor?) {
        var value = 0.0
        var embeddingGrad: Tensor? = nil, cfGrad: Tensor? = nil
        if options.objective != .cf {
            let c = Losses.ntXent(embeddings: out.embeddings, temperature: options.temperature)
            value += c.value
            embeddingGrad = c.gradient
        }
        if options.objective != .contrastive, let cf = out.cf {
            var r = Losses.cosine(prediction: cf, targets: t, hasTarget: hasTarget)
            let w: Float = options.objective == .both ? options.cfWeight : 1
            if w != 1 { for i in r.gradient.data.indices { r.gradient.data[i] *= w } }
            value += Double(w) * r.value
            cfGrad = r.gradient
        }
        return (value, embeddingGrad, cfGrad)
    }

    /// One optimizer step on one batch; returns its loss.
    func trainStep(_ tracks: [Int], epoch: Int, step: Int) throws(AudioModelError) -> Double {
        let (input, t, has) = assemble(tracks, epoch: epoch, step: step, augment: options.augment)
        let out = try model.forward(input, training: true)
        let (value, eg, cg) = loss(out, targets: t, hasTarget: has)
        guard value.isFinite else {
            throw .invalidInput(path: set.source, reason: "the training loss became \(value) at epoch \(epoch + 1), step \(step + 1) (try a lower learning rate)")
        }
        model.zeroGrad()
        model.backward(embeddingGrad: eg, cfGrad: cg)
        optimizer.update(model.namedParameters.map(\.1), learningRate: schedule.rate(at: optimizer.step))
        return value
    }

    /// The mean loss over the validation tracks, with fixed crops and no augmentation, in evaluation mode.
    public func validationLoss() throws(AudioModelError) -> Double {
        guard !validationTracks.isEmpty else { return .nan }
        var total = 0.0, count = 0
        for (b, range) in Self.batches(of: validationTracks.count, size: options.batchSize).enumerated() {
            let tracks = Array(validationTracks[range])
            let (input, t, has) = assemble(tracks, epoch: -1, step: b, augment: false)
            let out = try model.forward(input, training: false)
            total += loss(out, targets: t, hasTarget: has).0 * Double(tracks.count)
            count += tracks.count
        }
        return total / Double(count)
    }

    /// The state after the last completed epoch.
    public var checkpoint: AudioTrainingCheckpoint { state }

    /// The best epoch's model as a snapshot.
    public func bestSnapshot() -> AudioModelSnapshot {
        AudioModelSnapshot(
            configuration: model.configuration, objective: options.objective, cropFrames: options.cropFrames,
            framesPerSecond: set.framesPerSecond, temperature: options.temperature, featureMean: state.featureMean,
            featureStd: state.featureStd, weights: state.bestWeights, history: state.history)
    }

    /// Trains until `options.epochs` epochs are done or early stopping ends the run, continuing from the checkpoint
    /// the trainer was created with. `onBatch(done, total)` reports each step of an epoch; `onEpoch` receives each
    /// epoch's report and the checkpoint after it (to save), and may throw to stop.
    public func run(
        onBatch: (Int, Int) -> Void = { _, _ in },
        onEpoch: (AudioEpochReport, AudioTrainingCheckpoint) throws -> Void = { _, _ in }
    ) throws -> AudioModelSnapshot {
        BLAS.setThreads(options.threads)
        while state.epochsDone < options.epochs && !state.stoppedEarly {
            let epoch = state.epochsDone
            let started = Date()
            var order = trainingTracks
            var rng = SplitMix64(seed: options.seed &+ UInt64(epoch) &* 0x2545_F491_4F6C_DD1D)
            order.shuffle(using: &rng)
            let batches = Self.batches(of: order.count, size: options.batchSize)
            var sum = 0.0
            for (s, range) in batches.enumerated() {
                sum += try trainStep(Array(order[range]), epoch: epoch, step: s)
                onBatch(s + 1, batches.count)
            }
            let trainLoss = sum / Double(batches.count)
            let validation = try validationLoss()
            let monitored = validationTracks.isEmpty ? trainLoss : validation
            state.epochsDone = epoch + 1
            let report = AudioEpochReport(
                epoch: epoch + 1, trainLoss: trainLoss, validationLoss: validation,
                learningRate: Double(schedule.rate(at: max(0, optimizer.step - 1))),
                seconds: Date().timeIntervalSince(started))
            state.history.append(report)
            state.weights = model.weights()
            if monitored < state.bestLoss - 1e-6 * abs(state.bestLoss) || state.bestEpoch == 0 {
                state.bestLoss = monitored
                state.bestEpoch = epoch + 1
                state.bestWeights = state.weights
            } else if epoch + 1 - state.bestEpoch >= options.patience {
                state.stoppedEarly = true
            }
            state.optimizerStep = optimizer.step
            let names = model.namedParameters.map(\.0)
            state.firstMoments = Dictionary(uniqueKeysWithValues: zip(names, optimizer.firstMoments))
            state.secondMoments = Dictionary(uniqueKeysWithValues: zip(names, optimizer.secondMoments))
            try onEpoch(report, state)
        }
        return bestSnapshot()
    }
}
