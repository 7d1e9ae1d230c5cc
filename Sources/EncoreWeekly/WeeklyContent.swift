import Foundation
import Logging
import EncoreCore
import EncoreData
import EncorePlaylists
import EncoreStorage
import EncoreAudio
import EncoreAnalysis
import EncoreAudioModel
import EncoreText

/// What the content stages found, for the report (kept beside their outputs so a resumed job reports them too).
public struct ContentStageSummary: Codable, Sendable, Equatable {
    /// Recordings found under `--audio`.
    public var audioFiles = 0
    /// Recordings whose file name is not a track of the job (left out).
    public var audioUnmatched = 0
    /// Recordings of a track that already had one (left out).
    public var audioDuplicates = 0
    /// Recordings analysed in this run (not in the cache).
    public var audioAnalysed = 0
    /// Recordings whose analysis came from the cache.
    public var audioCached = 0
    /// Recordings that could not be analysed.
    public var audioFailed = 0
    /// `given` (the `--audio-model`), `trained-both`, `trained-contrastive`, or empty.
    public var audioModel = ""
    /// Epochs the job's audio model trained.
    public var audioEpochs = 0
    /// Documents read from the texts.
    public var textDocuments = 0
    /// Sessions the sequence vectors trained on.
    public var sequenceSessions = 0
    /// The cold-start model's combination weight of each source (hybrid stage; `nil` when it did not run).
    public var hybridWeights: [String: Float]?
    /// How many tracks' hybrid vectors are learned, blended, predicted (hybrid stage).
    public var hybridProvenance: [String: Int]?
    /// Why the hybrid stage made no space, when it did not.
    public var hybridNote: String?

    /// An empty summary.
    public init() {}
}

extension WeeklyJob {
    /// The texts file of the text stage: `--texts`, else the catalog folder's `texts.tsv`; `nil` when off or absent.
    var textsFile: String? {
        guard config.content.useTexts else { return nil }
        if let t = config.content.texts { return t }
        return file("texts.tsv")
    }

    /// The analysis cache folder: `--audio-cache`, else `<output without .h5>-audio-cache` beside the bundle.
    var audioCacheDir: String {
        if let c = config.content.audioCache { return c }
        let base = config.output.hasSuffix(".h5") ? String(config.output.dropLast(3)) : config.output
        return base + "-audio-cache"
    }

    /// Checks the content inputs before any stage runs: the texts file exists, the audio model is one this job can
    /// use, and the recordings of `--audio` are found and matched to the job's items by file name (at load time,
    /// so the fingerprint covers every file's size and date).
    /// - Throws: ``WeeklyError`` naming the option and the file at fault.
    func checkContentInputs() throws {
        if let texts = textsFile, !FileManager.default.fileExists(atPath: texts) {
            throw WeeklyError("--texts \(texts): no such file")
        }
        if let modelPath = config.content.audioModel {
            let snapshot: AudioModelSnapshot
            do { snapshot = try AudioModelFiles.read(from: modelPath) } catch { throw WeeklyError("--audio-model \(error.description)") }
            let bands = config.content.analysis.melBands
            guard snapshot.configuration.bands == bands else {
                throw WeeklyError("--audio-model \(modelPath): the model expects \(snapshot.configuration.bands) mel bands; the job analyses the audio with \(bands)")
            }
        }
        try discoverAudio()
    }

    func discoverAudio() throws {
        guard let audio = config.content.audio else { return }
        let inputs: [AudioInput]
        do { inputs = try AudioInput.discover(audio) } catch {
            throw WeeklyError("--audio \(error.description)")
        }
        guard !inputs.isEmpty else { throw WeeklyError("--audio \(audio): no audio files found (.wav, .flac, .ogg, .opus, .mp3)") }
        var seen = Set<Int32>()
        var matched: [(item: Int32, input: AudioInput)] = []
        var unmatched = 0, duplicates = 0
        for input in inputs {
            let track = AudioModelFiles.trackID(ofFeatureID: input.id)
            guard let item = plays.itemIDs.index(of: track) ?? plays.itemIDs.index(of: input.id) else { unmatched += 1; continue }
            guard seen.insert(item).inserted else { duplicates += 1; continue }
            matched.append((item, input))
        }
        audioInputs = matched
        contentSummary.audioFiles = inputs.count
        contentSummary.audioUnmatched = unmatched
        contentSummary.audioDuplicates = duplicates
        logger.info("audio files", metadata: [
            "path": .string(audio), "files": "\(inputs.count)", "tracks": "\(matched.count)", "unmatched": "\(unmatched)",
            "duplicates": "\(duplicates)"])
        if matched.isEmpty {
            throw WeeklyError("--audio \(audio): none of the \(inputs.count) files is named after a track of the play log or the catalog (a file stands for the track named by its file name without folder and extension, e.g. audio/t0000042.flac for t0000042)")
        }
    }

    /// Options and files that decide whether the content stages' outputs are still valid.
    var contentFingerprint: (files: [String], options: [String]) {
        let c = config.content
        var files = audioInputs.map(\.input.path) + (c.audioModel.map { [$0] } ?? [])
        if let t = textsFile { files.append(t) }
        let d = c.analysis.decode
        let options = [
            "audio=\(c.audio ?? "none")", "audio-model=\(c.audioModel ?? "none")",
            "analysis=\(d.sampleRate ?? 0)/\(d.offset)/\(d.duration ?? -1)/\(c.analysis.nFFT)/\(c.analysis.hopLength)/\(c.analysis.melBands)",
            "audio-network=\(c.audioNetwork)", "audio-training=\(c.audioTraining)", "crop=\(c.audioCropSeconds)",
            "texts=\(textsFile ?? "none")", "text-options=\(c.textOptions)",
            "sequences=\(c.sequenceVectors)/\(c.sessionGapMinutes)/\(c.sequenceOptions)",
            "catalog-tracks=\(config.includeUnplayedCatalogTracks)",
        ]
        return (files, options)
    }

    // MARK: Audio

    func makeAudioSpace() throws {
        let c = config.content
        guard let b = fitted else { throw WeeklyError("no model") }
        let cache = AudioFeatureCache(directory: audioCacheDir, options: c.analysis)
        let progress = ProgressReporter(stage: "audio analysis", total: max(1, audioInputs.count), logger: logger)
        let summary = try cache.prepare(audioInputs.map(\.input), threads: threads) { done, total in
            progress.update(done, fields: [("to_analyse", "\(total)")])
        }
        contentSummary.audioCached = summary.cached
        contentSummary.audioAnalysed = summary.analysed
        contentSummary.audioFailed = summary.failed.count
        for failure in summary.failed.prefix(20) { logger.warning("audio not analysed", metadata: ["reason": .string(failure.reason)]) }
        logger.info("audio analysed", metadata: [
            "cache": .string(cache.settingsDirectory), "cached": "\(summary.cached)", "analysed": "\(summary.analysed)",
            "failed": "\(summary.failed.count)", "audio_s": .string(String(format: "%.1f", summary.audioSeconds))])
        let tracks = zip(audioInputs, summary.keys).compactMap { pair -> (id: String, key: String)? in
            pair.1.map { (plays.itemIDs.id(at: pair.0.item), $0) }
        }
        let featuresPath = path("audio-features.h5")
        let descriptors = try cache.writeFeatures(tracks, to: featuresPath)
        guard !descriptors.isEmpty else {
            throw WeeklyError("--audio \(c.audio ?? ""): none of the \(audioInputs.count) recordings could be analysed (first failure: \(summary.failed.first?.reason ?? "unknown"))")
        }
        var names = [String](), rows = [Float]()
        for d in descriptors { names.append(d.id); rows += d.descriptors }
        var spaces = ContentSpaces()
        spaces.descriptorNames = AudioDescriptors.names
        spaces.audioDescriptors = ItemVectorSet.aligning(
            ids: names, rows: try Matrix(rows: names.count, cols: AudioDescriptors.names.count, storage: rows), to: plays.itemIDs)

        let embeddings: AudioEmbeddings, ids: [String]
        if let modelPath = c.audioModel {
            let (snapshot, model) = try AudioModelFiles.readModel(from: modelPath)
            let set = try AudioModelFiles.readLogMel(from: featuresPath)
            guard set.bands == snapshot.configuration.bands else {
                throw WeeklyError("--audio-model \(modelPath): the model expects \(snapshot.configuration.bands) mel bands; the job analyses with \(set.bands)")
            }
            let progress = ProgressReporter(stage: "audio embedding", total: 1, logger: logger)
            embeddings = try model.embed(set, windowFrames: snapshot.cropFrames, threads: threads)
            progress.update(1)
            ids = set.ids
            contentSummary.audioModel = "given"
        } else {
            let trained = try trainAudioModel(featuresPath: featuresPath, bundle: b)
            embeddings = trained.0
            ids = trained.1
        }
        let embedded = try Matrix(rows: ids.count, cols: embeddings.dim, storage: embeddings.embeddings)
        spaces.audioEmbeddings = ItemVectorSet.aligning(ids: ids, rows: embedded, to: plays.itemIDs)
        if let cf = embeddings.cfPredicted, embeddings.factors == b.model.parameters.factors {
            let m = try Matrix(rows: ids.count, cols: embeddings.factors, storage: cf)
            spaces.audioCFPredicted = ItemVectorSet.aligning(ids: ids, rows: m, to: plays.itemIDs)
        } else if embeddings.cfPredicted != nil {
            logger.warning("the audio model's CF head has another factor count than this week's model; its predictions are not kept",
                           metadata: ["head": "\(embeddings.factors)", "model": "\(b.model.parameters.factors)"])
        }
        // Descriptors and embeddings cover the same tracks (every analysed track is embedded).
        if let e = spaces.audioEmbeddings, let d = spaces.audioDescriptors, e.items != d.items {
            throw WeeklyError("internal: audio embeddings cover \(e.count) tracks, descriptors \(d.count)")
        }
        try saveContent(spaces, name: "audio")
        content.audioEmbeddings = spaces.audioEmbeddings
        content.audioCFPredicted = spaces.audioCFPredicted
        content.audioDescriptors = spaces.audioDescriptors
        content.descriptorNames = spaces.descriptorNames
    }

    /// Trains the audio model on this week's features (CF targets from this week's factors when at least a few
    /// analysed tracks have plays) and embeds every track with the best epoch's weights.
    func trainAudioModel(featuresPath: String, bundle b: ModelBundle) throws -> (AudioEmbeddings, [String]) {
        let c = config.content
        let set = try AudioModelFiles.readLogMel(from: featuresPath)
        let factors = b.model.itemFactors
        let withTargets = set.ids.filter { id in
            b.itemIDs.index(of: id).map { !factors.isZeroRow(Int($0)) } ?? false
        }.count
        var job = AudioTrainingJob(featuresPath: featuresPath, outputPath: path("audio-model.h5"))
        job.configuration = c.audioNetwork
        job.options = c.audioTraining
        job.options.threads = threads
        job.options.objective = withTargets >= 4 ? .both : .contrastive
        if job.options.objective == .both { job.bundlePath = path("fit.h5") }
        job.cropSeconds = c.audioCropSeconds
        job.resume = FileManager.default.fileExists(atPath: job.checkpointPath)
        var resumed: AudioModelTrainer? = nil
        if job.resume {
            do {
                resumed = try job.prepare()
            } catch {
                // A checkpoint of another configuration (an earlier run with other options): start over.
                logger.warning("audio checkpoint not usable; training from the start", metadata: ["reason": .string("\(error)")])
                AtomicFile.removeIfPresent(job.checkpointPath)
                job.resume = false
            }
        }
        let trainer = try resumed ?? job.prepare()
        logger.info("audio training", metadata: [
            "tracks": "\(trainer.set.trackCount)", "with_cf_target": "\(withTargets)",
            "objective": .string(job.options.objective.rawValue), "parameters": "\(trainer.model.parameterCount)",
            "epochs": "\(job.options.epochs)"])
        let total = job.options.epochs * trainer.batchesPerEpoch
        let progress = ProgressReporter(stage: "audio training", total: total, logger: logger)
        var epoch = trainer.checkpoint.epochsDone
        var loss = "-"
        let snapshot = try job.run(trainer, onBatch: { done, _ in
            progress.update(min(total, epoch * trainer.batchesPerEpoch + done), fields: [("epoch", "\(epoch + 1)"), ("loss", loss)])
        }, onEpoch: { report in
            epoch = report.epoch
            loss = String(format: "%.4f", report.trainLoss)
        })
        progress.update(total)
        contentSummary.audioModel = "trained-\(job.options.objective.rawValue)"
        contentSummary.audioEpochs = snapshot.history.count
        let model = try snapshot.makeModel(source: path("audio-model.h5"))
        return (try model.embed(set, windowFrames: snapshot.cropFrames, threads: threads), set.ids)
    }

    // MARK: Text

    func makeTextSpace() throws {
        guard let texts = textsFile else { return }
        let corpus: TextCorpus
        do { corpus = try TextCorpus.read(path: texts) } catch { throw WeeklyError("--texts \(error.description)") }
        contentSummary.textDocuments = corpus.count
        var artists: [(track: String, artist: String)] = []
        for i in 0..<plays.itemIDs.count {
            let a = catalog.artist(of: Int32(i))
            if a >= 0 { artists.append((plays.itemIDs.id(at: Int32(i)), catalog.artistIDs.id(at: a))) }
        }
        let progress = ProgressReporter(stage: "text vectors", total: 1, logger: logger)
        let result: TextVectorsResult
        do {
            result = try TextVectorsResult.fit(corpus, options: config.content.textOptions,
                                               trackArtists: artists.isEmpty ? nil : artists, threads: threads)
        } catch { throw WeeklyError("--texts \(texts): \(error.description)") }
        progress.update(1)
        let set = ItemVectorSet.aligning(ids: result.vectors.ids, rows: result.vectors.vectors, to: plays.itemIDs)
        var inheritedByID: [String: Bool] = [:]
        for (id, inherited) in zip(result.vectors.ids, result.vectors.inherited) where inheritedByID[id] == nil {
            inheritedByID[id] = inherited
        }
        var spaces = ContentSpaces()
        spaces.text = set
        spaces.textInherited = set.items.map { inheritedByID[plays.itemIDs.id(at: $0)] ?? false }
        logger.info("text vectors", metadata: [
            "documents": "\(corpus.count)", "tracks": "\(set.count)", "inherited": "\(spaces.textInherited.filter { $0 }.count)"])
        try saveContent(spaces, name: "text")
        content.text = spaces.text
        content.textInherited = spaces.textInherited
    }

    // MARK: Sequences

    func makeSequenceSpace() throws {
        guard config.content.sequenceVectors else { return }
        // Listens only: a skipped play says the track did not belong in the session.
        var users: [Int32] = [], items: [Int32] = [], weights: [Float] = [], times: [Int64] = []
        for t in 0..<plays.count where weighting.listens(rowWeight: plays.weights[t]) > 0 {
            users.append(plays.users[t]); items.append(plays.items[t]); weights.append(plays.weights[t])
            times.append(plays.hasTimestamps ? plays.timestamps[t] : 0)
        }
        let listens = try Interactions(userIDs: plays.userIDs, itemIDs: plays.itemIDs, users: users, items: items,
                                   weights: weights, timestamps: plays.hasTimestamps ? times : [])
        var options = config.content.sequenceOptions
        options.threads = threads
        let progress = ProgressReporter(stage: "sequence vectors", total: 100, logger: logger)
        let result: SequenceVectorsResult
        do {
            result = try SequenceVectorsResult.fit(
                log: listens, sessionGapSeconds: Int64((config.content.sessionGapMinutes * 60).rounded()), options: options
            ) { done, total in progress.update(done * 100 / max(1, total)) }
        } catch {
            logger.warning("sequence vectors skipped", metadata: ["reason": .string(error.description)])
            try saveContent(ContentSpaces(), name: "sequence")
            return
        }
        progress.update(100)
        contentSummary.sequenceSessions = result.sequences
        var spaces = ContentSpaces()
        spaces.sequence = ItemVectorSet.aligning(ids: result.vectors.ids, rows: result.vectors.vectors, to: plays.itemIDs)
        logger.info("sequence vectors", metadata: ["sessions": "\(result.sequences)", "tracks": "\(spaces.sequence?.count ?? 0)"])
        try saveContent(spaces, name: "sequence")
        content.sequence = spaces.sequence
    }

    // MARK: Stage files

    func contentPath(_ name: String) -> String { path("content-\(name).h5") }

    func saveContent(_ spaces: ContentSpaces, name: String) throws {
        try spaces.write(to: contentPath(name), itemIDs: plays.itemIDs)
        let data = try JSONEncoder().encode(contentSummary)
        try AtomicFile.write(Array(data), to: path("content-summary.json"), as: FileError.self)
    }

    /// Reloads a finished content stage's vectors (and the summary of the run that made them).
    func resumeContent(_ name: String) throws {
        if let data = FileManager.default.contents(atPath: path("content-summary.json")),
           let s = try? JSONDecoder().decode(ContentStageSummary.self, from: data) {
            contentSummary = s
        }
        guard let s = try ContentSpaces.read(from: contentPath(name), itemIDs: plays.itemIDs) else { return }
        switch name {
        case "audio":
            content.audioEmbeddings = s.audioEmbeddings
            content.audioCFPredicted = s.audioCFPredicted
            content.audioDescriptors = s.audioDescriptors
            content.descriptorNames = s.descriptorNames
        case "text":
            content.text = s.text
            content.textInherited = s.textInherited
        case "hybrid":
            content.hybrid = s.hybrid
            content.hybridProvenance = s.hybridProvenance
            content.hybridModel = s.hybridModel
        default:
            content.sequence = s.sequence
        }
    }

    /// Report lines on the content spaces: how many tracks (and catalog-only tracks) each covers.
    func contentReportRows() -> [[String]] {
        let n = plays.itemIDs.count
        func share(_ k: Int, _ of: Int) -> String { String(format: "%d of %d (%.1f%%)", k, of, 100 * Double(k) / Double(max(1, of))) }
        let firstCatalogOnly = n - catalogOnlyTracks
        func catalogOnly(_ set: ItemVectorSet?) -> String {
            guard let set, catalogOnlyTracks > 0 else { return "-" }
            return share(set.items.filter { Int($0) >= firstCatalogOnly }.count, catalogOnlyTracks)
        }
        var rows: [[String]] = []
        if config.content.audio != nil {
            let s = contentSummary
            rows.append(["audio", content.audioEmbeddings.map { share($0.count, n) } ?? "-", catalogOnly(content.audioEmbeddings),
                         "\(s.audioFiles) files (\(s.audioUnmatched) not a track, \(s.audioDuplicates) duplicate); \(s.audioAnalysed) analysed, \(s.audioCached) from the cache, \(s.audioFailed) failed; model \(s.audioModel)\(s.audioEpochs > 0 ? " (\(s.audioEpochs) epochs)" : "")"])
        }
        if textsFile != nil {
            let inherited = content.textInherited.filter { $0 }.count
            rows.append(["text", content.text.map { share($0.count, n) } ?? "-", catalogOnly(content.text),
                         "\(contentSummary.textDocuments) documents; \(inherited) tracks inherit their artist's vector"])
        }
        if config.content.sequenceVectors {
            rows.append(["sequence", content.sequence.map { share($0.count, n) } ?? "-", catalogOnly(content.sequence),
                         "\(contentSummary.sequenceSessions) sessions (gap \(config.content.sessionGapMinutes) min)"])
        }
        if config.content.hybrid {
            let s = contentSummary
            let weights = (s.hybridWeights ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.2f", $0.value))" }
            let kinds = (s.hybridProvenance ?? [:]).sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }
            let detail = s.hybridNote ?? "weights: \(weights.joined(separator: ", ")); vectors: \(kinds.joined(separator: ", "))"
            rows.append(["hybrid", content.hybrid.map { share($0.count, n) } ?? "-", catalogOnly(content.hybrid), detail])
        }
        return rows
    }
}
