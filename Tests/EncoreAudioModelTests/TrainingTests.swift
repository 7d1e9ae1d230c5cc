import EncoreCore
import EncoreTestSupport
import Foundation
import Testing
@testable import EncoreAudioModel
@testable import EncoreStorage

/// A small learnable set: each track is a fixed pattern of bands (its "timbre") with a beat along time and noise.
func makeTinySet(tracks: Int = 8, bands: Int = 8, seed: UInt64 = 3) -> LogMelSet {
    var rng = SplitMix64(seed: seed)
    var data: [Float] = []
    var offsets = [0]
    for t in 0..<tracks {
        let frames = 40 + (t * 7) % 25
        let profile = (0..<bands).map { _ in Float(rng.nextGaussian() * 10) - 40 }
        let period = 3 + t % 4
        for f in 0..<frames {
            let beat: Float = f % period == 0 ? 6 : 0
            for b in 0..<bands { data.append(profile[b] + beat + Float(rng.nextGaussian())) }
        }
        offsets.append(offsets.last! + frames)
    }
    return LogMelSet(ids: (0..<tracks).map { "t\($0)" }, data: data, offsets: offsets, bands: bands,
                     framesPerSecond: 22_050 / 512.0, source: "tiny")
}

let tinyConfiguration = AudioModelConfiguration(bands: 8, convChannels: [12, 12], convWidth: 4, poolSizes: [2, 1],
                                                hidden: 24, dim: 8, cfFactors: 0, seed: 5)

func tinyOptions(_ objective: AudioObjective) -> AudioTrainingOptions {
    var o = AudioTrainingOptions()
    o.objective = objective
    o.epochs = 150
    o.batchSize = 8
    o.cropFrames = 20
    o.validationShare = 0
    o.learningRate = 1e-2
    o.augment = false
    o.threads = 2
    o.patience = 100
    return o
}

/// Writes a features file in the layout of `analyze --log-mel`.
func writeFeatures(_ set: LogMelSet, to path: String, logmel: Bool = true) throws {
    var file = try HDF5File.create(at: path, overwrite: true)
    try file.write(strings: set.ids, at: "/tracks/ids")
    if logmel {
        try file.write(set.data, shape: [set.data.count / set.bands, set.bands], at: "/logmel/data")
        try file.write(set.offsets.map { Int64($0) }, shape: [set.offsets.count], at: "/logmel/offsets")
        try file.setAttribute("sample_rate", scalar: Int64(22_050), on: "/logmel")
        try file.setAttribute("hop_length", scalar: Int64(512), on: "/logmel")
    }
    try file.close()
}

@Suite("AudioModel training")
struct TrainingTests {
    @Test("CF regression overfits a tiny set: the cosine loss falls below 10% of the first epoch's")
    func overfitCF() throws {
        let set = makeTinySet()
        var config = tinyConfiguration
        config.cfFactors = 4
        var rng = SplitMix64(seed: 9)
        let perTrack: [[Float]?] = (0..<set.trackCount).map { _ in (0..<4).map { _ in Float(rng.nextGaussian()) } }
        let targets = CFTargets(factors: 4, perTrack: perTrack)
        let trainer = try AudioModelTrainer(model: try AudioEmbeddingModel(configuration: config), set: set,
                                            targets: targets, options: tinyOptions(.cf))
        let snapshot = try trainer.run()
        let first = snapshot.history.first!.trainLoss, last = snapshot.history.last!.trainLoss
        #expect(last < 0.1 * first, "first \(first), last \(last)")
        // The predictions of whole tracks point at their own targets.
        let model = try snapshot.makeModel()
        let e = try model.embed(set, windowFrames: 20)
        for t in 0..<set.trackCount {
            let cos = (0..<4).reduce(0.0) { $0 + Double(e.cfPredicted![t * 4 + $1]) * Double(targets.vectors[t * 4 + $1]) }
            #expect(cos > 0.8, "track \(t): cosine \(cos)")
        }
    }

    /// With 8 tracks (16 crops) at temperature 0.5 NT-Xent cannot go below about 0.88 (partners at cosine 1, the
    /// other classes at -1/7, a simplex); it starts near log(15) = 2.7.
    @Test("contrastive training overfits a tiny set: NT-Xent ends within 0.1 of its floor 0.88 and below 60% of the first epoch's")
    func overfitContrastive() throws {
        let set = makeTinySet()
        let trainer = try AudioModelTrainer(model: try AudioEmbeddingModel(configuration: tinyConfiguration), set: set,
                                            targets: nil, options: tinyOptions(.contrastive))
        let snapshot = try trainer.run()
        let first = snapshot.history.first!.trainLoss, last = snapshot.history.last!.trainLoss
        #expect(last < 0.98 && last < 0.6 * first, "first \(first), last \(last)")
    }

    @Test("the same seed and thread count give bit-identical weights; another seed does not")
    func determinism() throws {
        func train(seed: UInt64) throws -> [String: [Float]] {
            var options = tinyOptions(.contrastive)
            options.epochs = 3
            options.augment = true
            options.seed = seed
            options.validationShare = 0.25
            let trainer = try AudioModelTrainer(model: try AudioEmbeddingModel(configuration: tinyConfiguration),
                                                set: makeTinySet(), targets: nil, options: options)
            _ = try trainer.run()
            return trainer.model.weights()
        }
        let a = try train(seed: 1), b = try train(seed: 1), c = try train(seed: 2)
        #expect(a == b)
        #expect(a != c)
    }

    @Test("a model saved and loaded gives identical outputs; the file holds configuration, history and statistics")
    func saveLoad() throws {
        let dir = makeTemporaryDirectory("audio-model")
        var options = tinyOptions(.both)
        options.epochs = 2
        var config = tinyConfiguration
        config.cfFactors = 3
        let set = makeTinySet()
        let targets = CFTargets(factors: 3, perTrack: (0..<set.trackCount).map { t in t % 3 == 0 ? nil : [1, Float(t), -1] })
        let trainer = try AudioModelTrainer(model: try AudioEmbeddingModel(configuration: config), set: set,
                                            targets: targets, options: options)
        let snapshot = try trainer.run()
        try AudioModelFiles.write(snapshot, to: dir + "/m.h5")
        let loaded = try AudioModelFiles.read(from: dir + "/m.h5")
        #expect(loaded.configuration == config)
        #expect(loaded.history.map(\.trainLoss) == snapshot.history.map(\.trainLoss))
        #expect(loaded.history.map(\.epoch) == [1, 2] && loaded.history.allSatisfy { $0.validationLoss.isNaN })
        #expect(loaded.featureMean == snapshot.featureMean && loaded.featureStd == snapshot.featureStd)
        #expect(loaded.objective == .both && loaded.cropFrames == 20)
        let original = try snapshot.makeModel()
        let reloaded = try loaded.makeModel()
        #expect(try original.embed(set, windowFrames: 20) == reloaded.embed(set, windowFrames: 20))
        // The standardization statistics are the training frames' per-band mean (not the identity).
        #expect(snapshot.featureMean.allSatisfy { $0 < -10 })
    }

    @Test("an interrupted run resumed from its checkpoint ends with the same weights as an uninterrupted one")
    func resume() throws {
        let dir = makeTemporaryDirectory("audio-resume")
        try writeFeatures(makeTinySet(), to: dir + "/f.h5")
        func job(_ output: String) -> AudioTrainingJob {
            var job = AudioTrainingJob(featuresPath: dir + "/f.h5", outputPath: output)
            job.configuration = tinyConfiguration
            job.options = tinyOptions(.contrastive)
            job.options.epochs = 4
            job.options.augment = true
            job.options.validationShare = 0.25
            job.cropSeconds = 20 / (22_050 / 512.0)
            return job
        }
        let straight = job(dir + "/a.h5")
        let full = try straight.run(try straight.prepare())
        struct Stop: Error {}
        let interrupted = job(dir + "/b.h5")
        #expect(throws: Stop.self) {
            _ = try interrupted.run(try interrupted.prepare(), onEpoch: { report throws in
                if report.epoch == 2 { throw Stop() }
            })
        }
        #expect(FileManager.default.fileExists(atPath: interrupted.checkpointPath))
        var resumed = interrupted
        resumed.resume = true
        let trainer = try resumed.prepare()
        #expect(trainer.checkpoint.epochsDone == 2)
        let after = try resumed.run(trainer)
        #expect(after.weights == full.weights)
        #expect(after.history.map(\.trainLoss) == full.history.map(\.trainLoss))
        #expect(!FileManager.default.fileExists(atPath: resumed.checkpointPath))
        let fromFile = try AudioModelFiles.read(from: dir + "/b.h5")
        #expect(fromFile.weights == full.weights)
    }

    @Test("embed writes unit-length embeddings of every track and the CF prediction")
    func embedFile() throws {
        let dir = makeTemporaryDirectory("audio-embed")
        let set = makeTinySet(tracks: 5)
        try writeFeatures(set, to: dir + "/f.h5")
        var config = tinyConfiguration
        config.cfFactors = 3
        let model = try AudioEmbeddingModel(configuration: config)
        let snapshot = AudioModelSnapshot(
            configuration: config, objective: .both, cropFrames: 20, framesPerSecond: 43, temperature: 0.5,
            featureMean: [Float](repeating: -40, count: 8), featureStd: [Float](repeating: 10, count: 8),
            weights: model.weights(), history: [])
        try AudioModelFiles.write(snapshot, to: dir + "/m.h5")
        let e = try AudioEmbeddingJob.run(modelPath: dir + "/m.h5", featuresPath: dir + "/f.h5", outputPath: dir + "/e.h5")
        let file = try HDF5File.open(at: dir + "/e.h5")
        #expect(try file.readStrings(at: "/tracks/ids").values == set.ids)
        let emb = try file.read(Float.self, at: "/embeddings")
        #expect(emb.shape == [5, 8])
        #expect(emb.values == e.embeddings)
        for t in 0..<5 {
            let sq = (0..<8).reduce(0.0) { $0 + Double(emb.values[t * 8 + $1]) * Double(emb.values[t * 8 + $1]) }
            #expect(abs(sq - 1) < 1e-5)
        }
        #expect(try file.read(Float.self, at: "/cf_predicted").shape == [5, 3])
        // A track embedded alone equals its row (windows do not mix tracks).
        let one = LogMelSet(ids: ["t2"], data: Array(set.data[(set.offsets[2] * 8)..<(set.offsets[3] * 8)]),
                            offsets: [0, set.frames(of: 2)], bands: 8, framesPerSecond: 43)
        let alone = try snapshot.makeModel().embed(one, windowFrames: 20)
        // Equal up to sgemm's batch-size-dependent blocking.
        #expect(zip(alone.embeddings, e.embeddings[16..<24]).allSatisfy { abs($0 - $1) < 1e-5 })
    }

    @Test("the numpy forward pass of notebooks-data/audio_model_forward.py gives embed's embeddings (h5py)",
          .enabled(if: TestPython.h5pyRequired || TestPython.hasH5py, "h5py is not importable; CI sets ENCORE_REQUIRE_H5PY=1"))
    func numpyForward() throws {
        guard TestPython.hasH5py else {
            Issue.record("ENCORE_REQUIRE_H5PY=1 but '\(TestPython.interpreter)' cannot import h5py and numpy")
            return
        }
        let dir = makeTemporaryDirectory("audio-numpy")
        let set = makeTinySet(tracks: 5)
        try writeFeatures(set, to: dir + "/f.h5")
        var config = tinyConfiguration
        config.cfFactors = 3
        var rng = SplitMix64(seed: 11)
        let targets = CFTargets(factors: 3, perTrack: (0..<5).map { _ in (0..<3).map { _ in Float(rng.nextGaussian()) } })
        // A few epochs, so the running statistics, the standardization and the weights are not the initial ones.
        var options = tinyOptions(.both)
        options.epochs = 3
        let trainer = try AudioModelTrainer(model: try AudioEmbeddingModel(configuration: config), set: set,
                                            targets: targets, options: options)
        try AudioModelFiles.write(try trainer.run(), to: dir + "/m.h5")
        _ = try AudioEmbeddingJob.run(modelPath: dir + "/m.h5", featuresPath: dir + "/f.h5", outputPath: dir + "/e.h5")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("notebooks-data/audio_model_forward.py").path
        let result = try TestPython.run([script, dir + "/m.h5", dir + "/f.h5", dir + "/e.h5"])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("max |numpy - encore embed|"), "\(result.output)")
    }
}

@Suite("AudioModel bad inputs")
struct AudioModelBadInputTests {
    func message(_ body: () throws -> Void) -> String {
        do {
            try body()
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    @Test("a features file without log-mel is refused before training, naming the file and the command")
    func noLogMel() throws {
        let dir = makeTemporaryDirectory("audio-bad")
        try writeFeatures(makeTinySet(), to: dir + "/f.h5", logmel: false)
        let job = AudioTrainingJob(featuresPath: dir + "/f.h5", outputPath: dir + "/m.h5")
        #expect(message { _ = try job.prepare() } == "\(dir)/f.h5: the file has no log-mel features (/logmel/data and /logmel/offsets); write them with `encore-train analyze --log-mel`")
    }

    @Test("NaN in the features names the track, frame and band")
    func nan() throws {
        let dir = makeTemporaryDirectory("audio-bad")
        var set = makeTinySet()
        set.data[(set.offsets[2] + 3) * 8 + 1] = .nan
        try writeFeatures(set, to: dir + "/f.h5")
        let job = AudioTrainingJob(featuresPath: dir + "/f.h5", outputPath: dir + "/m.h5")
        #expect(message { _ = try job.prepare() } == "\(dir)/f.h5: track 't2' has a non-finite log-mel value (nan) at frame 3, band 1")
    }

    @Test("a tiny training set is refused with the count")
    func tiny() throws {
        let dir = makeTemporaryDirectory("audio-bad")
        try writeFeatures(makeTinySet(tracks: 3), to: dir + "/f.h5")
        var job = AudioTrainingJob(featuresPath: dir + "/f.h5", outputPath: dir + "/m.h5")
        job.configuration = tinyConfiguration
        job.cropSeconds = 0.5
        #expect(message { _ = try job.prepare() } == "\(dir)/f.h5: the training set is too small: 3 tracks, at least 4 are needed")
        let empty = LogMelSet(ids: [], data: [], offsets: [0], bands: 8, framesPerSecond: 43, source: "empty")
        #expect(message {
            _ = try AudioModelTrainer(model: try AudioEmbeddingModel(configuration: tinyConfiguration), set: empty,
                                      targets: nil, options: tinyOptions(.contrastive))
        } == "empty: the training set is too small: 0 tracks, at least 4 are needed")
    }

    @Test("cf and both without a bundle are refused before the features are read")
    func cfWithoutBundle() {
        var job = AudioTrainingJob(featuresPath: "/nonexistent/f.h5", outputPath: "/tmp/m.h5")
        job.options.objective = .cf
        #expect(message { _ = try job.prepare() } == "invalid bundle: --objective cf needs --bundle with the CF item vectors")
        job.options.objective = .both
        #expect(message { _ = try job.prepare() } == "invalid bundle: --objective both needs --bundle with the CF item vectors")
    }

    @Test("a crop shorter than the network needs is refused with the minimum")
    func shortCrop() throws {
        let dir = makeTemporaryDirectory("audio-bad")
        try writeFeatures(makeTinySet(), to: dir + "/f.h5")
        var job = AudioTrainingJob(featuresPath: dir + "/f.h5", outputPath: dir + "/m.h5")
        job.configuration = tinyConfiguration
        job.cropSeconds = 0.1
        // minimum frames: ((1 * 1 + 3) * 2 + 3) = 11 frames = 0.26 s at 22050/512 frames per second.
        #expect(message { _ = try job.prepare() } == "invalid crop-seconds: 0.1 s is 4 frames, fewer than the 11 the network needs (at least 0.26 s)")
    }

    @Test("a model file of another format version or shape is refused")
    func incompatibleModel() throws {
        let dir = makeTemporaryDirectory("audio-bad")
        let model = try AudioEmbeddingModel(configuration: tinyConfiguration)
        let snapshot = AudioModelSnapshot(
            configuration: tinyConfiguration, objective: .contrastive, cropFrames: 20, framesPerSecond: 43,
            temperature: 0.5, featureMean: [Float](repeating: 0, count: 8), featureStd: [Float](repeating: 1, count: 8),
            weights: model.weights(), history: [])
        try AudioModelFiles.write(snapshot, to: dir + "/m.h5")
        do {
            var file = try HDF5File.open(at: dir + "/m.h5", writable: true)
            try file.setAttribute("encore_audio_model_format", scalar: Int64(2), on: "/")
            try file.close()
        }
        #expect(message { _ = try AudioModelFiles.read(from: dir + "/m.h5") } == "\(dir)/m.h5: incompatible audio model: format version 2 is not supported: Encore \(Encore.version) reads audio model format version 1 only")
        try AudioModelFiles.write(snapshot, to: dir + "/m.h5")
        do {
            var file = try HDF5File.open(at: dir + "/m.h5", writable: true)
            try file.write([Float](repeating: 0, count: 12 * 8 * 3), shape: [12, 3, 8], at: "/weights/conv1/weight")
            try file.close()
        }
        #expect(message { _ = try AudioModelFiles.read(from: dir + "/m.h5") } == "\(dir)/m.h5: incompatible audio model: /weights/conv1/weight has shape [12, 3, 8], the configuration needs [12, 4, 8]")
        try writeFeatures(makeTinySet(), to: dir + "/f.h5")
        #expect(message { _ = try AudioModelFiles.read(from: dir + "/f.h5") } == "\(dir)/f.h5: incompatible audio model: not an Encore audio model file (the root has no 'encore_audio_model_format' attribute)")
    }
}
