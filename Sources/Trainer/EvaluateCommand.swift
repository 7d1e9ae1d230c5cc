import ArgumentParser
import Foundation
import RecCore

/// `encore-train evaluate`: ranking metrics of a bundle's model on held-out data.
struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Score a model bundle on held-out interactions: precision, recall, MAP, NDCG, AUC, hit rate, coverage at k; or score cold-start vectors on held-out tracks (--split cold-items), or Discover Weekly with and without content on the last week (--split temporal-content).",
        discussion: """
            Either give --train and --test files (a split made by `encore-train split` or any other tool): the \
            bundle's model is scored on --test, excluding each user's --train items. Or give --input and --split: \
            the log is split here, the model is refitted on the training part with the bundle's parameters, and \
            scored on the rest. Metrics follow implicit's ranking_metrics_at_k; a popularity baseline is shown \
            beside them. With --train/--test the metrics of the bundle's own model are stored in the bundle unless --no-save.

            --split cold-items holds out --test-fraction of the tracks entirely (all their plays), fits ALS on the \
            rest (the bundle's parameters with --bundle, else fit's defaults; --bundle is not required), predicts the \
            held-out tracks' vectors from content (--texts: text vectors, tracks inheriting their artist's; \
            --audio-embeddings: embed's output; the artist prior from tracks.tsv beside the log) and scores, for each \
            user, the held-out tracks against their real listeners: AUC, precision, recall, NDCG and hit rate at k \
            among the held-out tracks, one row per source and one for the hybrid, beside a random ranking.

            --split temporal-content trains on the weeks before the test week (--week, default the last whole week \
            of the log) and makes Discover Weekly for it the weekly job's way, once without content (cf-only) and \
            once per content variant: +artist (the artist prior), +audio (--audio-embeddings: embed's output), \
            +text (--texts, fitted here), +sequence (fitted on the plays before the week; --no-sequence-vectors \
            leaves it out), each alone, and all together. The catalog (release dates, artists) is --track-artists, \
            default tracks.tsv beside --input. Each row gives the overall hit rate on the week's first plays, the \
            hit rate on new releases (test tracks with no training play) and the share of places given to new \
            tracks; --k is the playlist's length (default 30).
            """)

    @Option(help: "The model bundle (optional with --split cold-items and temporal-content: it then only supplies the ALS parameters).")
    var bundle: String?

    @Option(help: "Training interactions (those are excluded from each user's recommendations).")
    var train: String?

    @Option(help: "Held-out interactions to score.")
    var test: String?

    @Option(help: "An interaction log to split here (with --split), instead of --train/--test.")
    var input: String?

    @Option(help: "random, leave-k-out, temporal, cold-items or temporal-content (with --input).")
    var split: String?

    @Option(help: "Held-out share of pairs for --split random, of tracks for --split cold-items.")
    var testFraction: Double = 0.2

    @Option(help: "Documents about tracks and artists (generate's texts.tsv; TSV, CSV or JSON Lines with id and text) for --split cold-items and temporal-content.")
    var texts: String?

    @Option(help: "Audio embeddings (embed's output: /tracks/ids, /embeddings) for --split cold-items and temporal-content.")
    var audioEmbeddings: String?

    @Option(help: "A table with columns item and artist for --split cold-items, the catalog (tracks.tsv) for temporal-content (default: tracks.tsv beside --input, when present).")
    var trackArtists: String?

    @Option(help: "The test week of --split temporal-content: its Monday, YYYY-MM-DD (default: the last whole week of the log).")
    var week: String?

    @Flag(help: "--split temporal-content without sequence vectors.")
    var noSequenceVectors = false

    @Option(help: "--split temporal-content: a track is a new-for-you candidate with at most this many listeners before the week (the weekly job's --cold-max-listeners; default 0).")
    var coldMaxListeners: Int?

    @Option(help: "--split temporal-content: a track released within this many days before the week is a new-for-you candidate (the weekly job's --new-release-days; default 14).")
    var newReleaseDays: Int?

    @Option(help: "--split temporal-content: the most of Discover Weekly new tracks may take, each only from a track whose calibrated score it beats (the weekly job's --new-track-share; default 0.2).")
    var newTrackShare: Float?

    @Option(help: "Temporal cutoff for --split temporal: epoch seconds or YYYY-MM-DD.")
    var cutoff: String?

    @Option(help: "Seed of the split.")
    var seed: UInt64 = 42

    @Option(help: "--split cold-items and temporal-content: the seed of the ALS fit (default: fit's, or the --bundle's); another seed measures how much the figures move by chance.")
    var alsSeed: UInt64?

    @OptionGroup var inputFormat: InputFormatOptions
    @OptionGroup var weightingOptions: WeightingOptions

    @Option(name: .customLong("k"), help: "Cut-off rank k of the metrics (default 10); with --split temporal-content, Discover Weekly's length (default 30).")
    var kOption: Int?

    /// The cut-off rank (10 unless given).
    var k: Int { kOption ?? 10 }

    @Option(help: "Write the metrics as JSON to this file.")
    var json: String?

    @Flag(help: "Do not store the metrics in the bundle.")
    var noSave = false

    static let splits = ["random", "leave-k-out", "temporal", "cold-items", "temporal-content"]

    func validate() throws {
        if let split, !Self.splits.contains(split) {
            throw ValidationError("unknown --split '\(split)'; expected random, leave-k-out, temporal, cold-items or temporal-content")
        }
        let coldItems = split == "cold-items", temporalContent = split == "temporal-content"
        if alsSeed != nil && !coldItems && !temporalContent {
            throw ValidationError("--als-seed goes with --split cold-items or temporal-content")
        }
        if !coldItems && !temporalContent {
            if texts != nil || audioEmbeddings != nil || trackArtists != nil {
                throw ValidationError("--texts, --audio-embeddings and --track-artists go with --split cold-items or temporal-content")
            }
            guard bundle != nil else { throw ValidationError("--bundle is required (except with --split cold-items or temporal-content)") }
        }
        if !temporalContent {
            if week != nil { throw ValidationError("--week goes with --split temporal-content") }
            if noSequenceVectors { throw ValidationError("--no-sequence-vectors goes with --split temporal-content") }
            if coldMaxListeners != nil || newTrackShare != nil || newReleaseDays != nil {
                throw ValidationError("--cold-max-listeners, --new-release-days and --new-track-share go with --split temporal-content")
            }
        } else if let c = coldMaxListeners, c < 0 {
            throw ValidationError("--cold-max-listeners must be >= 0, got \(c)")
        } else if let d = newReleaseDays, d < 0 {
            throw ValidationError("--new-release-days must be >= 0, got \(d)")
        } else if let s = newTrackShare, !(s >= 0 && s <= 1) {
            throw ValidationError("--new-track-share must be in [0, 1], got \(s)")
        } else if cutoff != nil {
            throw ValidationError("--cutoff goes with --split temporal; --split temporal-content tests the week --week names (default: the last whole week of the log)")
        }
        if coldItems || split == "random" {
            guard testFraction > 0, testFraction < 1 else {
                throw ValidationError("--test-fraction must be between 0 and 1 (exclusive), got \(testFraction)")
            }
        }
        let files = train != nil || test != nil
        let splitting = input != nil || split != nil
        guard files != splitting else {
            throw ValidationError("give either --train and --test, or --input and --split")
        }
        if files && (train == nil || test == nil) { throw ValidationError("--train and --test go together") }
        if splitting && (input == nil || split == nil) { throw ValidationError("--input and --split go together") }
        guard k > 0 else { throw ValidationError("--k must be positive") }
        if temporalContent, let k = kOption, k > 150 {
            throw ValidationError("--k must be at most 150 with --split temporal-content (Discover Weekly's candidate pool), got \(k)")
        }
    }

    func run() throws {
        if split == "cold-items" { return try runColdItems() }
        if split == "temporal-content" { return try runTemporalContent() }
        guard let bundle else { throw ValidationError("--bundle is required (except with --split cold-items or temporal-content)") }
        let logger = TrainerLogging.logger()
        try BundleCheck.validate(bundle)
        let opened = try PublishedModel.open(path: bundle)
        var stored = try opened.readBundle()
        let model: ImplicitALS
        let trainMatrix: CSRMatrix
        let testMatrix: CSRMatrix
        let weighting = try weightingOptions.confidenceWeighting()

        if let trainPath = train, let testPath = test {
            model = stored.model
            let trainLog = try inputFormat.load(trainPath, logger: logger)
            let testLog = try inputFormat.load(testPath, logger: logger)
            let (tr, trDropped) = try remap(trainLog, users: stored.userIDs, items: stored.itemIDs)
            let (te, teDropped) = try remap(testLog, users: stored.userIDs, items: stored.itemIDs)
            if trDropped + teDropped > 0 {
                logger.warning("rows with users or items unknown to the bundle were ignored", metadata: [
                    "train_rows": "\(trDropped)", "test_rows": "\(teDropped)"])
            }
            trainMatrix = tr
            testMatrix = te
        } else if let inputPath = input, let method = split {
            let log = try inputFormat.load(inputPath, logger: logger)
            let parts: TrainTestSplit
            switch method {
            case "random": parts = try TrainTestSplit.random(log, testFraction: testFraction, seed: seed)
            case "leave-k-out": parts = try TrainTestSplit.leaveKOut(log, k: 1, seed: seed)
            case "temporal":
                guard let cutoff else { throw ValidationError("--split temporal needs --cutoff") }
                parts = try TrainTestSplit.temporal(log, cutoff: try parseDate(cutoff))
            default: throw ValidationError("unknown --split '\(method)'; expected random, leave-k-out, temporal, cold-items or temporal-content")
            }
            trainMatrix = weighting.apply(toUserItems: parts.train.matrix())
            testMatrix = parts.test.matrix()
            var refit = ImplicitALS(parameters: stored.model.parameters)
            let progress = ProgressReporter(stage: "refit", total: stored.model.parameters.iterations, logger: logger)
            try refit.fit(trainMatrix) { progress.update($0.iteration) }
            model = refit
            stored.userIDs = log.userIDs
            stored.itemIDs = log.itemIDs
        } else {
            throw ValidationError("give either --train and --test, or --input and --split")
        }

        let alsLists = try Self.recommendations(model, test: testMatrix, exclude: trainMatrix, k: k)
        let als: BatchRecommender = { users, _ in users.map { alsLists[Int($0)] } }
        let progress = ProgressReporter(stage: "evaluate", total: 2, logger: logger)
        let alsMetrics = try RankingMetrics.evaluate(test: testMatrix, k: k, itemCount: model.itemCount, recommend: als)
        progress.update(1)
        let popMetrics = try RankingMetrics.evaluate(
            test: testMatrix, k: k, itemCount: model.itemCount, recommend: Baselines.popularity(train: trainMatrix))
        progress.update(2)
        print(RankingMetrics.table([("ALS", alsMetrics), ("popularity", popMetrics)]))

        let dict = alsMetrics.asDictionary()
        if let json {
            let data = try JSONSerialization.data(withJSONObject: dict, options: [.prettyPrinted, .sortedKeys])
            try data.write(to: URL(fileURLWithPath: json))
        }
        if !noSave && train != nil {
            stored.metrics = dict
            stored.metrics.merge(popMetrics.asDictionary().map { ("popularity/\($0.key)", $0.value) }) { $1 }
            if let unit = opened.unitDirectory {
                // A published version never changes: the metrics go into a new version with the same indexes.
                try PublishedModel.publish(bundle: stored, indexes: opened.presentIndexPaths, to: unit)
            } else {
                try stored.write(to: bundle)
            }
            logger.info("metrics stored in the bundle", metadata: ["path": .string(bundle)])
        }
    }

    /// The log and the ALS parameters (the bundle's, or the defaults) of the content splits, after checking that the
    /// content files exist.
    func contentSplitInputs() throws -> (input: String, als: ALSParameters) {
        guard let inputPath = input else { throw ValidationError("--input and --split go together") }
        var als = ALSParameters()
        if let bundle {
            try BundleCheck.validate(bundle)
            als = try PublishedModel.open(path: bundle).readBundle().model.parameters
        }
        if let alsSeed { als.seed = alsSeed }
        for (flag, path) in [("--texts", texts), ("--audio-embeddings", audioEmbeddings), ("--track-artists", trackArtists)] {
            if let path, !FileManager.default.fileExists(atPath: path) {
                throw TrainerError("\(flag) \(path): no such file")
            }
        }
        return (inputPath, als)
    }

    /// `--split cold-items`: content predictions for held-out tracks, scored against their real listeners.
    func runColdItems() throws {
        let logger = TrainerLogging.logger()
        let (inputPath, als) = try contentSplitInputs()
        let log = try inputFormat.load(inputPath, logger: logger)
        var artistsPath = trackArtists
        if artistsPath == nil {
            let beside = URL(fileURLWithPath: inputPath).deletingLastPathComponent().appendingPathComponent("tracks.tsv").path
            if FileManager.default.fileExists(atPath: beside) { artistsPath = beside }
        }
        var artists: [(track: String, artist: String)]?
        if let artistsPath {
            let table = try TextCorpus.read(path: artistsPath, idColumn: "item", textColumn: "artist")
            artists = zip(table.ids, table.texts).map { (track: $0, artist: $1) }
            logger.info("read track artists", metadata: ["file": .string(artistsPath), "tracks": "\(table.count)"])
        }
        let corpus = try texts.map { try TextCorpus.read(path: $0) }
        var content: [ColdItemsContent] = []
        if let audioEmbeddings {
            let e = try AudioModelFiles.readEmbeddings(from: audioEmbeddings)
            content.append(ColdItemsContent(
                name: "audio", source: audioEmbeddings, ids: Self.trackIDs(e.ids, in: log.itemIDs), vectors: e.vectors))
        }
        let options = ColdItemsOptions(
            testFraction: testFraction, seed: seed, k: k, als: als, weighting: try weightingOptions.confidenceWeighting())
        let report = try ColdItemsEvaluation.run(
            log: log, texts: corpus, trackArtists: artists, content: content, options: options
        ) { stage in logger.info("cold-items", metadata: ["stage": .string(stage)]) }
        print("cold items: \(report.heldOutTracks) tracks held out, \(report.trainTracks) trained on, "
            + "\(report.users) users, \(report.heldOutPairs) held-out (user, track) pairs, \(report.warmTracks) warm tracks")
        print(report.table(k: k))
        for s in report.sources {
            let note = s.note.map { " (\($0))" } ?? ""
            print("  weight \(s.name): \(String(format: "%.3f", s.weight))\(note)")
        }
        for n in report.notes { print("  note: \(n)") }
        if let json {
            let data = try JSONSerialization.data(withJSONObject: report.asDictionary(k: k), options: [.prettyPrinted, .sortedKeys])
            try data.write(to: URL(fileURLWithPath: json))
        }
    }

    /// `--split temporal-content`: Discover Weekly for the last week with and without content, overall and on new
    /// releases.
    func runTemporalContent() throws {
        let logger = TrainerLogging.logger()
        let (inputPath, als) = try contentSplitInputs()
        var testWeek: PlaylistDate?
        if let week {
            do { testWeek = try PlaylistDate.week(week) } catch { throw TrainerError("--week \(week): \(error)") }
        }
        // Encore's plays.tsv keeps its skips (so the histories know them), as the weekly job reads it.
        var log: Interactions
        var weighting = PlayWeighting.counts
        // Only the header line decides the format: read the first 4 KiB.
        let handle = try? FileHandle(forReadingFrom: URL(fileURLWithPath: inputPath))
        let head = (try? handle?.read(upToCount: 4096)) ?? nil
        try? handle?.close()
        let header = String(decoding: head ?? Data(), as: UTF8.self).split(separator: "\n").first ?? ""
        if inputFormat.isDefault, header.lowercased().split(separator: "\t").contains("ms_played") {
            log = try DelimitedLoader.load(path: inputPath, format: .encorePlaysWithMsPlayed).0
            weighting = PlayWeighting.encorePlays
        } else {
            log = try inputFormat.load(inputPath, logger: logger)
        }
        guard log.hasTimestamps else {
            throw TrainerError("--input \(inputPath): --split temporal-content needs timestamps (a 'timestamp' column, or --timestamp-column)")
        }
        var tracksPath = trackArtists
        if tracksPath == nil {
            let beside = URL(fileURLWithPath: inputPath).deletingLastPathComponent().appendingPathComponent("tracks.tsv").path
            if FileManager.default.fileExists(atPath: beside) { tracksPath = beside }
        }
        var catalog = TrackCatalog.bare(itemCount: log.itemIDs.count)
        var feedback = FeedbackLog()
        if let tracksPath {
            let dir = URL(fileURLWithPath: tracksPath).deletingLastPathComponent()
            func beside(_ name: String) -> String? {
                let p = dir.appendingPathComponent(name).path
                return FileManager.default.fileExists(atPath: p) ? p : nil
            }
            catalog = try TrackCatalog.load(tracks: tracksPath, artists: beside("artists.tsv"), itemIDs: log.itemIDs)
            feedback = try FeedbackLog.load(
                likes: beside("likes.tsv"), dislikes: beside("dislikes.tsv"), follows: beside("follows.tsv"),
                userIDs: log.userIDs, itemIDs: log.itemIDs, artistIDs: catalog.artistIDs).log
            logger.info("read the catalog", metadata: ["file": .string(tracksPath), "artists": "\(catalog.artistCount)"])
        }
        var spaces: [ColdItemsContent] = []
        if let audioEmbeddings {
            let e = try AudioModelFiles.readEmbeddings(from: audioEmbeddings)
            spaces.append(ColdItemsContent(
                name: "audio", source: audioEmbeddings, ids: Self.trackIDs(e.ids, in: log.itemIDs), vectors: e.vectors))
        }
        let inputs = TemporalContentInputs(
            texts: try texts.map { try TextCorpus.read(path: $0) }, spaces: spaces, sequenceVectors: !noSequenceVectors)
        var options = TemporalContentOptions(
            als: als, confidence: try weightingOptions.confidenceWeighting(), testWeek: testWeek, listLength: kOption,
            sampleSeed: seed)
        if let c = coldMaxListeners { options.coldMaxListeners = c }
        if let d = newReleaseDays { options.newReleaseDays = d }
        if let s = newTrackShare { options.newTrackShare = s }
        let report = try PlaylistEvaluation.temporalContent(
            plays: log, weighting: weighting, feedback: feedback, catalog: catalog, content: inputs, options: options
        ) { stage in logger.info("temporal-content", metadata: ["stage": .string(stage)]) }
        print("temporal content: week of \(report.week), \(report.users) users, \(report.testPairs) test pairs, "
            + "\(report.newReleasePairs) on \(report.newReleaseTracks) new releases (tracks with no training play; "
            + "\(report.newReleasePairsReleased) of the pairs released by the Monday)")
        print(report.table())
        print("hits/places per source:")
        print(report.sourceTable())
        for r in report.rows {
            var parts: [String] = []
            if let w = r.weights {
                var listed: [String] = []
                for name in w.keys.sorted() { listed.append(name + " " + String(format: "%.3f", Double(w[name] ?? 0))) }
                parts.append("weights " + listed.joined(separator: ", "))
            }
            if r.coldTracks > 0 { parts.append("\(r.coldTracks) new-for-you candidates, \(r.newReleasesWithVector) new releases with a vector") }
            if let n = r.note { parts.append(n) }
            if !parts.isEmpty { print("  \(r.variant): \(parts.joined(separator: "; "))") }
        }
        for n in report.notes { print("  note: \(n)") }
        if let json {
            let data = try JSONSerialization.data(withJSONObject: report.asDictionary(), options: [.prettyPrinted, .sortedKeys])
            try data.write(to: URL(fileURLWithPath: json))
        }
    }

    /// The track ids of an embeddings file's ids: an id that is not a track of the log but names a file (`embed` over
    /// `analyze` of a folder keeps `t0000042.flac` or `audio/t0000042.flac`) stands for the track named by the file
    /// name without folder and extension, as the weekly job matches recordings.
    static func trackIDs(_ ids: [String], in items: IDMap) -> [String] {
        ids.map { id in items.index(of: id) != nil ? id : AudioModelFiles.trackID(ofFeatureID: id) }
    }

    /// The top `k` items of `model` for every user with a test item, leaving out the user's items in `exclude`;
    /// indexed by user (empty for users without a test item).
    /// - Throws: ``TrainerError`` when the model cannot rank a user's items (a user outside the model, a matrix of
    ///   another shape).
    static func recommendations(_ model: ImplicitALS, test: CSRMatrix, exclude: CSRMatrix, k: Int) throws -> [[Int32]] {
        let users = (0..<test.rows).filter { test.count(ofRow: $0) > 0 }.map { Int32($0) }
        let ranked: [RankedItems]
        do {
            ranked = try model.recommend(users: users, k: k, userItems: exclude)
        } catch {
            throw TrainerError("cannot recommend for the test users: \(error)")
        }
        var lists = [[Int32]](repeating: [], count: test.rows)
        for (u, r) in zip(users, ranked) { lists[Int(u)] = r.items }
        return lists
    }

    /// The log in the bundle's index space, as a users x items matrix; rows with unknown ids are counted and dropped.
    /// - Throws: ``TrainerError`` when the matrix cannot be built.
    func remap(_ log: Interactions, users: IDMap, items: IDMap) throws -> (CSRMatrix, dropped: Int) {
        let userMap = log.userIDs.ids.map { users.index(of: $0) ?? -1 }
        let itemMap = log.itemIDs.ids.map { items.index(of: $0) ?? -1 }
        var r: [Int32] = [], c: [Int32] = [], v: [Float] = []
        r.reserveCapacity(log.count); c.reserveCapacity(log.count); v.reserveCapacity(log.count)
        var dropped = 0
        for t in 0..<log.count {
            let u = userMap[Int(log.users[t])], i = itemMap[Int(log.items[t])]
            if u < 0 || i < 0 { dropped += 1; continue }
            r.append(u); c.append(i); v.append(log.weights[t])
        }
        do {
            return (try CSRMatrix(rows: users.count, cols: items.count, rowIndices: r, colIndices: c, values: v), dropped)
        } catch {
            throw TrainerError("cannot build the users x items matrix in the bundle's ids: \(error)")
        }
    }
}
