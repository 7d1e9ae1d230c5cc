import ArgumentParser
import Foundation
import Logging
import RecCore
import EncoreWeekly

extension AudioObjective: ExpressibleByArgument {}

/// `encore-train train-audio`: log-mel features in, audio embedding model out.
struct TrainAudioCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-audio",
        abstract: "Train the audio embedding CNN on log-mel features (from analyze --log-mel) and write the model (HDF5).",
        discussion: """
            contrastive: NT-Xent over two augmented crops of each track; cf: cosine regression onto the bundle's \
            L2-normalized ALS item vectors (tracks matched by id); both: the two losses, the CF one weighted by \
            --cf-weight. A checkpoint is written after every epoch to <output>.checkpoint.h5 (--resume continues \
            from it); the output holds the best validation epoch's model.
            """)

    @Option(help: "The features file of `analyze --log-mel` (/tracks/ids, /logmel/data, /logmel/offsets).")
    var features: String

    @Option(help: "Where to write the model (.h5).")
    var output: String

    @Option(help: "Training objective: contrastive, cf or both.")
    var objective: AudioObjective = .contrastive

    @Option(help: "A model bundle whose item factors are the CF targets (required with cf and both).")
    var bundle: String?

    @Option(help: "Maximum epochs (early stopping may end sooner).")
    var epochs: Int = 30

    @Option(help: "Tracks per mini-batch.")
    var batch: Int = 32

    @Option(help: "Crop length in seconds.")
    var cropSeconds: Double = 3

    @Option(help: "Seed of the weights, the split, the batches, the crops and the augmentations.")
    var seed: UInt64 = 42

    @Option(help: "Threads for batch assembly and OpenBLAS (the run is deterministic for a seed and thread count).")
    var threads: Int = 2

    @Option(help: "Share of the tracks held out for validation and early stopping (0 monitors the training loss).")
    var validationShare: Double = 0.1

    @OptionGroup var network: AudioNetworkOptions

    @Option(help: "Peak learning rate (AdamW, linear warm-up over the first epoch, cosine decay).")
    var learningRate: Float = 1e-3

    @Option(help: "NT-Xent temperature.")
    var temperature: Float = 0.5

    @Option(help: "Weight of the CF loss with --objective both.")
    var cfWeight: Float = 1

    @Option(help: "Epochs without a better validation loss before stopping.")
    var patience: Int = 5

    @Flag(help: "Continue from <output>.checkpoint.h5.")
    var resume = false

    @Flag(help: "Train without augmentations (gain, noise, filtering).")
    var noAugment = false

    func job() throws -> AudioTrainingJob {
        var job = AudioTrainingJob(featuresPath: features, outputPath: output)
        job.bundlePath = bundle
        try network.apply(to: &job.configuration)
        job.configuration.seed = seed
        try job.configuration.validate()
        job.options.objective = objective
        job.options.epochs = epochs
        job.options.batchSize = batch
        job.options.seed = seed
        job.options.threads = threads
        job.options.validationShare = validationShare
        job.options.learningRate = learningRate
        job.options.temperature = temperature
        job.options.cfWeight = cfWeight
        job.options.patience = patience
        job.options.augment = !noAugment
        job.cropSeconds = cropSeconds
        job.resume = resume
        return job
    }

    func run() throws {
        let logger = TrainerLogging.logger()
        let job = try job()
        let trainer = try job.prepare()
        logger.info("audio training", metadata: [
            "tracks": "\(trainer.set.trackCount)", "training": "\(trainer.trainingTracks.count)",
            "validation": "\(trainer.validationTracks.count)", "parameters": "\(trainer.model.parameterCount)",
            "crop_frames": "\(trainer.options.cropFrames)", "objective": "\(objective.rawValue)",
            "resumed_at_epoch": "\(trainer.checkpoint.epochsDone)",
        ])
        let total = epochs * trainer.batchesPerEpoch
        let progress = ProgressReporter(stage: "train-audio", total: total, logger: logger)
        var epoch = trainer.checkpoint.epochsDone
        var lastValidation = "-"
        var lastLoss = "-"
        let snapshot = try job.run(
            trainer,
            onBatch: { done, _ in
                progress.update(epoch * trainer.batchesPerEpoch + done,
                                fields: [("epoch", "\(epoch + 1)"), ("loss", lastLoss), ("validation", lastValidation)])
            },
            onEpoch: { report in
                epoch = report.epoch
                lastLoss = String(format: "%.4f", report.trainLoss)
                lastValidation = report.validationLoss.isNaN ? "-" : String(format: "%.4f", report.validationLoss)
                logger.info("epoch", metadata: [
                    "epoch": "\(report.epoch)", "train_loss": .string(lastLoss), "validation_loss": .string(lastValidation),
                    "learning_rate": .string(String(format: "%.2e", report.learningRate)),
                    "seconds": .string(String(format: "%.1f", report.seconds)),
                ])
            })
        progress.update(total)
        let best = snapshot.history.min { a, b in
            (a.validationLoss.isNaN ? a.trainLoss : a.validationLoss) < (b.validationLoss.isNaN ? b.trainLoss : b.validationLoss)
        }
        logger.info("audio model written", metadata: [
            "output": .string(output), "epochs": "\(snapshot.history.count)", "best_epoch": "\(best?.epoch ?? 0)",
        ])
    }
}

/// `encore-train embed`: a model and features in, one embedding per track out.
struct EmbedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Embed every track of a features file with a trained audio model.",
        discussion: """
            Writes /tracks/ids, /embeddings (tracks x dim, float32, L2-normalized) and, when the model has a CF head, \
            /cf_predicted (tracks x factors). A track's embedding is the mean over windows of the model's crop length.
            """)

    @Option(help: "The model file written by train-audio.")
    var model: String

    @Option(help: "The features file of `analyze --log-mel`.")
    var features: String

    @Option(help: "Where to write the embeddings (.h5).")
    var output: String

    @Option(help: "Threads for OpenBLAS.")
    var threads: Int = 2

    func run() throws {
        let logger = TrainerLogging.logger()
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        let e = try AudioEmbeddingJob.run(modelPath: model, featuresPath: features, outputPath: output, threads: threads)
        logger.info("embeddings written", metadata: [
            "output": .string(output), "tracks": "\(e.embeddings.count / max(1, e.dim))", "dim": "\(e.dim)",
            "cf_factors": "\(e.factors)",
        ])
    }
}

/// The network's shape, shared by `train-audio` and `audio-model-bench`.
struct AudioNetworkOptions: ParsableArguments {
    @Option(help: "Embedding dimension.")
    var dim: Int = 64

    @Option(help: "Output channels of the convolution blocks, comma-separated.")
    var channels: String = "256,256,512"

    @Option(help: "Max-pooling size after each block, comma-separated.")
    var pools: String = "4,2,2"

    @Option(help: "Width of the hidden dense layer.")
    var hidden: Int = 1024

    /// Sets the configuration's dimension, blocks, pooling and hidden width.
    func apply(to configuration: inout AudioModelConfiguration) throws {
        configuration.dim = dim
        configuration.convChannels = try Self.integers(channels, option: "channels")
        configuration.poolSizes = try Self.integers(pools, option: "pools")
        configuration.hidden = hidden
    }

    static func integers(_ text: String, option: String) throws -> [Int] {
        let parts = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !parts.isEmpty, parts.allSatisfy({ $0 != nil }) else {
            throw ValidationError("--\(option) must be comma-separated integers (got '\(text)')")
        }
        return parts.map { $0! }
    }
}
