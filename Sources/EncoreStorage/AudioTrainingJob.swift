import Foundation
import EncoreCore
import EncoreAudioModel

/// `train-audio` as a library type: reads the features (and the bundle's CF vectors), checks every input before
/// training starts, trains with a checkpoint after each epoch (`<output>.checkpoint.h5`), writes the best
/// validation epoch's model to `output` whenever it improves, and can resume from the checkpoint.
public struct AudioTrainingJob: Sendable {
    /// The features file of `analyze --log-mel`.
    public var featuresPath: String
    /// Where the model goes.
    public var outputPath: String
    /// A model bundle whose item factors are the CF targets (required for `cf` and `both`).
    public var bundlePath: String?
    /// The network's shape (`cfFactors` is set from the bundle).
    public var configuration = AudioModelConfiguration()
    /// The run's settings; `cropFrames` is set from `cropSeconds`.
    public var options = AudioTrainingOptions()
    /// Crop length in seconds (converted with the features' frame rate).
    public var cropSeconds: Double = 3
    /// Continue from `<output>.checkpoint.h5`.
    public var resume = false

    /// A job reading `featuresPath` and writing `outputPath`.
    public init(featuresPath: String, outputPath: String) {
        self.featuresPath = featuresPath
        self.outputPath = outputPath
    }

    /// The checkpoint written after every epoch.
    public var checkpointPath: String { outputPath + ".checkpoint.h5" }

    /// Reads and checks everything, then prepares the trainer (no training yet).
    ///
    /// - Throws: ``AudioModelError`` for a features file without log-mel or with NaN values, a set too small to
    ///   train, `cf`/`both` without a bundle, a crop too short for the network, or a checkpoint of another run.
    public func prepare() throws(AudioModelError) -> AudioModelTrainer {
        try options.validate()
        guard cropSeconds > 0, cropSeconds.isFinite else {
            throw .invalidParameter(name: "crop-seconds", reason: "must be positive (got \(cropSeconds))")
        }
        if options.objective != .contrastive && bundlePath == nil {
            throw .invalidParameter(name: "bundle", reason: "--objective \(options.objective.rawValue) needs --bundle with the CF item vectors")
        }
        let set = try AudioModelFiles.readLogMel(from: featuresPath)
        var config = configuration
        config.bands = set.bands
        var targets: CFTargets? = nil
        if let bundlePath, options.objective != .contrastive {
            let t = try AudioModelFiles.cfTargets(bundlePath: bundlePath, for: set)
            guard t.hasTarget.contains(true) else {
                throw .invalidInput(path: bundlePath, reason: "none of the \(set.trackCount) track ids of \(featuresPath) is an item of the bundle")
            }
            config.cfFactors = t.factors
            targets = t
        }
        var opts = options
        opts.cropFrames = Int((cropSeconds * set.framesPerSecond).rounded())
        let minimum = config.minimumFrames
        guard opts.cropFrames >= minimum else {
            throw .invalidParameter(name: "crop-seconds", reason: "\(cropSeconds) s is \(opts.cropFrames) frames, fewer than the \(minimum) the network needs (at least \(String(format: "%.2f", Double(minimum) / set.framesPerSecond)) s)")
        }
        var checkpoint: AudioTrainingCheckpoint? = nil
        if resume {
            guard FileManager.default.fileExists(atPath: checkpointPath) else {
                throw .invalidInput(path: checkpointPath, reason: "--resume given but there is no checkpoint")
            }
            checkpoint = try AudioModelFiles.readCheckpoint(from: checkpointPath)
        }
        let model = try AudioEmbeddingModel(configuration: config)
        do {
            return try AudioModelTrainer(model: model, set: set, targets: targets, options: opts, resume: checkpoint)
        } catch .incompatibleModel(path: "checkpoint", let reason) {
            throw .incompatibleModel(path: checkpointPath, reason: reason)
        }
    }

    /// Trains with `trainer` (from ``prepare()``), saving the checkpoint after every epoch and the best model to
    /// `outputPath` whenever the monitored loss improves; the checkpoint is removed once the run completes.
    public func run(_ trainer: AudioModelTrainer, onBatch: (Int, Int) -> Void = { _, _ in },
                    onEpoch: (AudioEpochReport) throws -> Void = { _ in }) throws -> AudioModelSnapshot {
        let fps = trainer.set.framesPerSecond
        let final = try trainer.run(onBatch: onBatch) { report, checkpoint in
            if checkpoint.bestEpoch == report.epoch {
                var best = trainer.bestSnapshot()
                best.weights = checkpoint.bestWeights
                best.history = checkpoint.history
                try AudioModelFiles.write(best, to: outputPath)
            }
            try AudioModelFiles.writeCheckpoint(checkpoint, framesPerSecond: fps, to: checkpointPath)
            try onEpoch(report)
        }
        // The model file keeps the best epoch's weights with the whole history.
        try AudioModelFiles.write(final, to: outputPath)
        AtomicFile.removeIfPresent(checkpointPath)
        return final
    }
}

/// `embed` as a library type: a model file and a features file in, an embeddings file out.
public enum AudioEmbeddingJob {
    /// Embeds every track of `featuresPath` with the model at `modelPath` and writes `outputPath`.
    public static func run(modelPath: String, featuresPath: String, outputPath: String,
                           threads: Int = 2) throws(AudioModelError) -> AudioEmbeddings {
        let (snapshot, model) = try AudioModelFiles.readModel(from: modelPath)
        let set = try AudioModelFiles.readLogMel(from: featuresPath)
        guard set.bands == snapshot.configuration.bands else {
            throw .invalidInput(path: featuresPath, reason: "the features have \(set.bands) mel bands; the model at \(modelPath) expects \(snapshot.configuration.bands)")
        }
        let e = try model.embed(set, windowFrames: snapshot.cropFrames, threads: threads)
        try AudioModelFiles.writeEmbeddings(e, ids: set.ids, to: outputPath)
        return e
    }
}
