import Foundation
import EncoreCore
import EncoreAudioModel

/// The HDF5 files of the audio embedding model: the features it reads (`analyze --log-mel`), the model and
/// checkpoint files it writes, and the embeddings file `embed` writes. Layouts are in docs/audio-model.md.
public enum AudioModelFiles {
    /// The model file format version this library reads and writes.
    public static let formatVersion: Int64 = 1
    /// The root attribute that marks a model file (and holds its format version).
    static let formatAttribute = "encore_audio_model_format"

    /// Turns a storage error into the model's error (the text keeps the file, the object and HDF5's reason).
    static func wrap(_ e: BundleError) -> AudioModelError {
        let prefix = e.path + ": "
        let text = e.description.hasPrefix(prefix) ? String(e.description.dropFirst(prefix.count)) : e.description
        return .invalidInput(path: e.path, reason: text)
    }

    static func checkedOpen(_ path: String) throws(AudioModelError) -> HDF5File {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw .invalidInput(path: path, reason: "no such file")
        }
        guard HDF5Library.isHDF5(path) == true else {
            throw .invalidInput(path: path, reason: "not an HDF5 file")
        }
        do { return try HDF5File.open(at: path) } catch { throw wrap(error) }
    }

    // MARK: Features

    /// Reads the log-mel features of `analyze --log-mel`: `/tracks/ids` (strings), `/logmel/data` (frames x bands,
    /// float32 dB) and `/logmel/offsets` (int64, tracks + 1). Frames per second come from the `sample_rate` and
    /// `hop_length` attributes of `/logmel` or the root (as `analyze` writes them) when present and positive, else
    /// 22050 / 512.
    ///
    /// - Throws: ``AudioModelError/invalidInput(path:reason:)`` for a missing file, a file without log-mel features,
    ///   shapes that disagree, or NaN and infinite values (naming the track and frame).
    public static func readLogMel(from path: String) throws(AudioModelError) -> LogMelSet {
        do {
            let file = try checkedOpen(path)
            guard file.exists("/logmel/data"), file.exists("/logmel/offsets") else {
                throw AudioModelError.invalidInput(path: path, reason: "the file has no log-mel features (/logmel/data and /logmel/offsets); write them with `encore-train analyze --log-mel`")
            }
            guard file.exists("/tracks/ids") else {
                throw AudioModelError.invalidInput(path: path, reason: "/tracks/ids is missing")
            }
        }
        let features: AudioFeatures
        do { features = try AudioFeatures.read(path: path) } catch { throw wrap(error) }
        guard let logMel = features.logMel, let offsets = features.logMelOffsets else {
            throw .invalidInput(path: path, reason: "the file has no log-mel features (/logmel/data and /logmel/offsets)")
        }
        // analyze writes sample_rate 0 when it kept each file's own rate; librosa's default is assumed then.
        let fps = (features.sampleRate ?? 22_050) / (features.hopLength ?? 512)
        let set = LogMelSet(ids: features.ids, data: logMel.storage, offsets: offsets.map { Int($0) }, bands: logMel.cols,
                            framesPerSecond: fps, source: path)
        try set.validate()
        return set
    }

    // MARK: CF targets

    /// The CF targets for `set` from a bundle's item factors, matched by track id (tracks the bundle does not know
    /// get none). Vectors are L2-normalized.
    public static func cfTargets(bundlePath: String, for set: LogMelSet) throws(AudioModelError) -> CFTargets {
        let bundle: ModelBundle
        do { bundle = try ModelBundle.read(from: bundlePath) } catch { throw wrap(error) }
        let factors = bundle.model.itemFactors
        let perTrack: [[Float]?] = set.ids.map { id in
            (bundle.itemIDs.index(of: id) ?? bundle.itemIDs.index(of: trackID(ofFeatureID: id))).map { factors.row(Int($0)) }
        }
        return CFTargets(factors: factors.cols, perTrack: perTrack)
    }

    /// The track id a features id names when it is not a bundle id itself: `analyze` over a folder names tracks by
    /// their relative paths, so `audio/t0000042.flac` stands for the track `t0000042` (the file name without its
    /// folder and extension).
    public static func trackID(ofFeatureID id: String) -> String {
        let name = id.split(separator: "/", omittingEmptySubsequences: false).last.map(String.init) ?? id
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return name }
        return String(name[..<dot])
    }

    // MARK: Model and checkpoint

    private static func writeConfiguration(_ file: borrowing HDF5File, _ c: AudioModelConfiguration) throws(BundleError) {
        try file.createGroup("/config")
        try file.setAttribute("bands", scalar: Int64(c.bands), on: "/config")
        try file.setAttribute("conv_channels", array: c.convChannels.map { Int64($0) }, on: "/config")
        try file.setAttribute("conv_width", scalar: Int64(c.convWidth), on: "/config")
        try file.setAttribute("pool_sizes", array: c.poolSizes.map { Int64($0) }, on: "/config")
        try file.setAttribute("hidden", scalar: Int64(c.hidden), on: "/config")
        try file.setAttribute("dim", scalar: Int64(c.dim), on: "/config")
        try file.setAttribute("cf_factors", scalar: Int64(c.cfFactors), on: "/config")
        try file.setAttribute("seed", scalar: c.seed, on: "/config")
    }

    private static func readConfiguration(_ file: borrowing HDF5File) throws(BundleError) -> AudioModelConfiguration {
        func int(_ value: Int64) -> Int { Int(value) }
        return AudioModelConfiguration(
            bands: int(try file.scalarAttribute(Int64.self, "bands", on: "/config")),
            convChannels: try file.arrayAttribute(Int64.self, "conv_channels", on: "/config").map { Int($0) },
            convWidth: int(try file.scalarAttribute(Int64.self, "conv_width", on: "/config")),
            poolSizes: try file.arrayAttribute(Int64.self, "pool_sizes", on: "/config").map { Int($0) },
            hidden: int(try file.scalarAttribute(Int64.self, "hidden", on: "/config")),
            dim: int(try file.scalarAttribute(Int64.self, "dim", on: "/config")),
            cfFactors: int(try file.scalarAttribute(Int64.self, "cf_factors", on: "/config")),
            seed: try file.scalarAttribute(UInt64.self, "seed", on: "/config"))
    }

    private static func writeWeights(_ file: borrowing HDF5File, _ weights: [String: [Float]], shapes: [String: [Int]],
                                     under group: String) throws(BundleError) {
        try file.createGroup(group)
        for name in weights.keys.sorted() {
            let w = weights[name]!
            try file.write(w, shape: shapes[name] ?? [w.count], at: "\(group)/\(name)")
        }
    }

    private static func readWeights(_ file: borrowing HDF5File, names: [String],
                                    under group: String) throws(AudioModelError) -> [String: [Float]] {
        var out: [String: [Float]] = [:]
        for name in names {
            let object = "\(group)/\(name)"
            guard file.exists(object) else {
                throw .incompatibleModel(path: file.path, reason: "\(object) is missing (the file was written for another model shape)")
            }
            do { out[name] = try file.read(Float.self, at: object).values } catch { throw wrap(error) }
        }
        return out
    }

    private static func writeHistory(_ file: borrowing HDF5File, _ history: [AudioEpochReport]) throws(BundleError) {
        try file.createGroup("/history")
        try file.write(history.map { Int64($0.epoch) }, shape: [history.count], at: "/history/epoch")
        try file.write(history.map(\.trainLoss), shape: [history.count], at: "/history/train_loss")
        try file.write(history.map(\.validationLoss), shape: [history.count], at: "/history/validation_loss")
        try file.write(history.map(\.learningRate), shape: [history.count], at: "/history/learning_rate")
        try file.write(history.map(\.seconds), shape: [history.count], at: "/history/seconds")
    }

    private static func readHistory(_ file: borrowing HDF5File) throws(BundleError) -> [AudioEpochReport] {
        let epochs = try file.read(Int64.self, at: "/history/epoch").values
        let train = try file.read(Double.self, at: "/history/train_loss").values
        let validation = try file.read(Double.self, at: "/history/validation_loss").values
        let rate = try file.read(Double.self, at: "/history/learning_rate").values
        let seconds = try file.read(Double.self, at: "/history/seconds").values
        guard [train.count, validation.count, rate.count, seconds.count].allSatisfy({ $0 == epochs.count }) else {
            throw .shapeMismatch(path: file.path, object: "/history", reason: "the history arrays differ in length")
        }
        return (0..<epochs.count).map {
            AudioEpochReport(epoch: Int(epochs[$0]), trainLoss: train[$0], validationLoss: validation[$0],
                             learningRate: rate[$0], seconds: seconds[$0])
        }
    }

    /// Writes the common part of a model or checkpoint file (root marks, configuration, normalization, history).
    private static func writeHeader(_ file: borrowing HDF5File, kind: String, configuration: AudioModelConfiguration,
                                    objective: AudioObjective, cropFrames: Int, framesPerSecond: Double,
                                    temperature: Float, mean: [Float], std: [Float],
                                    history: [AudioEpochReport]) throws(BundleError) {
        try file.setAttribute(formatAttribute, scalar: formatVersion, on: "/")
        try file.setAttribute("encore_version", string: Encore.version, on: "/")
        try file.setAttribute("kind", string: kind, on: "/")
        try writeConfiguration(file, configuration)
        try file.setAttribute("objective", string: objective.rawValue, on: "/config")
        try file.setAttribute("crop_frames", scalar: Int64(cropFrames), on: "/config")
        try file.setAttribute("frames_per_second", scalar: framesPerSecond, on: "/config")
        try file.setAttribute("temperature", scalar: Double(temperature), on: "/config")
        try file.write(mean, shape: [mean.count], at: "/normalization/mean")
        try file.write(std, shape: [std.count], at: "/normalization/std")
        try writeHistory(file, history)
    }

    /// Checks the root marks: an audio model file of this format version and the expected kind.
    private static func checkHeader(_ file: borrowing HDF5File, kind: String) throws(AudioModelError) {
        guard file.hasAttribute(formatAttribute, on: "/") else {
            throw .incompatibleModel(path: file.path, reason: "not an Encore audio model file (the root has no '\(formatAttribute)' attribute)")
        }
        let version: Int64
        let found: String
        do {
            version = try file.scalarAttribute(Int64.self, formatAttribute, on: "/")
            found = try file.stringAttribute("kind", on: "/")
        } catch { throw wrap(error) }
        guard version == formatVersion else {
            throw .incompatibleModel(path: file.path, reason: "format version \(version) is not supported: Encore \(Encore.version) reads audio model format version \(formatVersion) only")
        }
        guard found == kind else {
            throw .incompatibleModel(path: file.path, reason: "it is a \(found) file, not a \(kind) file")
        }
    }

    /// Writes a trained model atomically (temporary sibling, fsync, rename).
    public static func write(_ snapshot: AudioModelSnapshot, to path: String) throws(AudioModelError) {
        let shapes: [String: [Int]]
        do { shapes = try AudioEmbeddingModel(configuration: snapshot.configuration).weightShapes() } catch { throw error }
        do {
            try atomically(path) { (file: borrowing HDF5File) throws(BundleError) in
                try writeHeader(file, kind: "model", configuration: snapshot.configuration, objective: snapshot.objective,
                                cropFrames: snapshot.cropFrames, framesPerSecond: snapshot.framesPerSecond,
                                temperature: snapshot.temperature, mean: snapshot.featureMean, std: snapshot.featureStd,
                                history: snapshot.history)
                try writeWeights(file, snapshot.weights, shapes: shapes, under: "/weights")
            }
        } catch { throw wrap(error) }
    }

    /// Reads a model file and checks it: format version, configuration, every weight present with its shape.
    ///
    /// - Throws: ``AudioModelError/incompatibleModel(path:reason:)`` for a file of another version or shape.
    public static func read(from path: String) throws(AudioModelError) -> AudioModelSnapshot {
        try readModel(from: path).snapshot
    }

    /// Reads a model file, checks it like ``read(from:)``, and returns the snapshot with the model built from it
    /// (the checks load the weights into that model, so it is built once).
    public static func readModel(from path: String) throws(AudioModelError)
        -> (snapshot: AudioModelSnapshot, model: AudioEmbeddingModel) {
        let file = try checkedOpen(path)
        try checkHeader(file, kind: "model")
        var snapshot = try readSnapshotHeader(file)
        let model: AudioEmbeddingModel
        do { model = try AudioEmbeddingModel(configuration: snapshot.configuration) } catch {
            throw .incompatibleModel(path: path, reason: "its configuration is invalid: \(error)")
        }
        let shapes = model.weightShapes()
        snapshot.weights = try readWeights(file, names: shapes.keys.sorted(), under: "/weights")
        for (name, shape) in shapes {
            let found = (try? file.shape(of: "/weights/\(name)")) ?? []
            guard found == shape else {
                throw .incompatibleModel(path: path, reason: "/weights/\(name) has shape \(found), the configuration needs \(shape)")
            }
        }
        try model.load(weights: snapshot.weights, featureMean: snapshot.featureMean, featureStd: snapshot.featureStd,
                       source: path)
        return (snapshot, model)
    }

    /// The configuration, training settings, normalization and history of a model file (weights empty).
    private static func readSnapshotHeader(_ file: borrowing HDF5File) throws(AudioModelError) -> AudioModelSnapshot {
        let configuration: AudioModelConfiguration
        let objectiveName: String
        let cropFrames: Int64
        let framesPerSecond: Double, temperature: Double
        let mean: [Float], std: [Float]
        let history: [AudioEpochReport]
        do {
            configuration = try readConfiguration(file)
            objectiveName = try file.stringAttribute("objective", on: "/config")
            cropFrames = try file.scalarAttribute(Int64.self, "crop_frames", on: "/config")
            framesPerSecond = try file.scalarAttribute(Double.self, "frames_per_second", on: "/config")
            temperature = try file.scalarAttribute(Double.self, "temperature", on: "/config")
            mean = try file.read(Float.self, at: "/normalization/mean").values
            std = try file.read(Float.self, at: "/normalization/std").values
            history = try readHistory(file)
        } catch { throw wrap(error) }
        guard let objective = AudioObjective(rawValue: objectiveName) else {
            throw .incompatibleModel(path: file.path, reason: "/config@objective is not contrastive, cf or both")
        }
        return AudioModelSnapshot(
            configuration: configuration, objective: objective, cropFrames: Int(cropFrames),
            framesPerSecond: framesPerSecond, temperature: Float(temperature), featureMean: mean, featureStd: std,
            weights: [:], history: history)
    }

    /// Writes a training checkpoint atomically: the current and best weights, the optimizer's moments, the history,
    /// the early-stopping state and the options.
    public static func writeCheckpoint(_ c: AudioTrainingCheckpoint, framesPerSecond: Double,
                                       to path: String) throws(AudioModelError) {
        let shapes: [String: [Int]]
        do { shapes = try AudioEmbeddingModel(configuration: c.configuration).weightShapes() } catch { throw error }
        let optionsJSON: String
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            optionsJSON = String(decoding: try encoder.encode(c.options), as: UTF8.self)
        } catch {
            throw .invalidParameter(name: "options", reason: "cannot encode: \(error)")
        }
        do {
            try atomically(path) { (file: borrowing HDF5File) throws(BundleError) in
                try writeHeader(file, kind: "checkpoint", configuration: c.configuration, objective: c.options.objective,
                                cropFrames: c.options.cropFrames, framesPerSecond: framesPerSecond,
                                temperature: c.options.temperature, mean: c.featureMean, std: c.featureStd,
                                history: c.history)
                try writeWeights(file, c.weights, shapes: shapes, under: "/weights")
                try writeWeights(file, c.bestWeights, shapes: shapes, under: "/best_weights")
                try writeWeights(file, c.firstMoments, shapes: shapes, under: "/optimizer/first_moments")
                try writeWeights(file, c.secondMoments, shapes: shapes, under: "/optimizer/second_moments")
                try file.setAttribute("step", scalar: Int64(c.optimizerStep), on: "/optimizer")
                try file.createGroup("/training")
                try file.setAttribute("options", string: optionsJSON, on: "/training")
                try file.setAttribute("best_loss", scalar: c.bestLoss, on: "/training")
                try file.setAttribute("best_epoch", scalar: Int64(c.bestEpoch), on: "/training")
                try file.setAttribute("epochs_done", scalar: Int64(c.epochsDone), on: "/training")
                try file.setAttribute("stopped_early", scalar: Int64(c.stoppedEarly ? 1 : 0), on: "/training")
            }
        } catch { throw wrap(error) }
    }

    /// Reads a checkpoint written by ``writeCheckpoint(_:framesPerSecond:to:)``.
    public static func readCheckpoint(from path: String) throws(AudioModelError) -> AudioTrainingCheckpoint {
        let file = try checkedOpen(path)
        try checkHeader(file, kind: "checkpoint")
        do {
            let configuration = try readConfiguration(file)
            let model = try AudioEmbeddingModel(configuration: configuration)
            let all = model.weightShapes().keys.sorted()
            let trainable = model.namedParameters.map(\.0)
            let json = try file.stringAttribute("options", on: "/training")
            let options = try JSONDecoder().decode(AudioTrainingOptions.self, from: Data(json.utf8))
            return AudioTrainingCheckpoint(
                configuration: configuration, options: options,
                featureMean: try file.read(Float.self, at: "/normalization/mean").values,
                featureStd: try file.read(Float.self, at: "/normalization/std").values,
                weights: try readWeights(file, names: all, under: "/weights"),
                bestWeights: try readWeights(file, names: all, under: "/best_weights"),
                optimizerStep: Int(try file.scalarAttribute(Int64.self, "step", on: "/optimizer")),
                firstMoments: try readWeights(file, names: trainable, under: "/optimizer/first_moments"),
                secondMoments: try readWeights(file, names: trainable, under: "/optimizer/second_moments"),
                history: try readHistory(file),
                bestLoss: try file.scalarAttribute(Double.self, "best_loss", on: "/training"),
                bestEpoch: Int(try file.scalarAttribute(Int64.self, "best_epoch", on: "/training")),
                epochsDone: Int(try file.scalarAttribute(Int64.self, "epochs_done", on: "/training")),
                stoppedEarly: try file.scalarAttribute(Int64.self, "stopped_early", on: "/training") != 0)
        } catch let e as BundleError {
            throw wrap(e)
        } catch let e as AudioModelError {
            throw e
        } catch {
            throw .incompatibleModel(path: path, reason: "cannot read the checkpoint: \(error)")
        }
    }

    // MARK: Embeddings

    /// Writes `/tracks/ids`, `/embeddings` (tracks x dim, float32, L2-normalized) and, with a CF head,
    /// `/cf_predicted` (tracks x factors), atomically.
    public static func writeEmbeddings(_ e: AudioEmbeddings, ids: [String], to path: String) throws(AudioModelError) {
        do {
            try atomically(path) { (file: borrowing HDF5File) throws(BundleError) in
                try file.setAttribute("encore_version", string: Encore.version, on: "/")
                try file.write(strings: ids, at: "/tracks/ids")
                try file.write(e.embeddings, shape: [ids.count, e.dim], at: "/embeddings")
                if let cf = e.cfPredicted { try file.write(cf, shape: [ids.count, e.factors], at: "/cf_predicted") }
            }
        } catch { throw wrap(error) }
    }

    /// Writes a new HDF5 file through `body` at a temporary sibling of `path`, syncs it and renames it into place.
    static func atomically(_ path: String,
                           _ body: (borrowing HDF5File) throws(BundleError) -> Void) throws(BundleError) {
        try AtomicFile.checkDirectory(for: path, operation: "write the file", as: BundleError.self)
        let temporary = AtomicFile.temporaryPath(for: path)
        do {
            var file = try HDF5File.create(at: temporary)
            try body(file)
            try file.close()
            try AtomicFile.sync(file: temporary, reportingAs: path, as: BundleError.self)
            try AtomicFile.rename(temporary, to: path, as: BundleError.self)
        } catch {
            AtomicFile.removeIfPresent(temporary)
            throw error
        }
    }
}
