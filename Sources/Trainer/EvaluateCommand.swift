import ArgumentParser
import Foundation
import RecCore

/// `encore-train evaluate`: ranking metrics of a bundle's model on held-out data.
struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Score a model bundle on held-out interactions: precision, recall, MAP, NDCG, AUC, hit rate, coverage at k; or score cold-start vectors on held-out tracks (--split cold-items).",
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
            """)

    @Option(help: "The model bundle (optional with --split cold-items: it then only supplies the ALS parameters).")
    var bundle: String?

    @Option(help: "Training interactions (those are excluded from each user's recommendations).")
    var train: String?

    @Option(help: "Held-out interactions to score.")
    var test: String?

    @Option(help: "An interaction log to split here (with --split), instead of --train/--test.")
    var input: String?

    @Option(help: "random, leave-k-out, temporal or cold-items (with --input).")
    var split: String?

    @Option(help: "Held-out share of pairs for --split random, of tracks for --split cold-items.")
    var testFraction: Double = 0.2

    @Option(help: "Documents about tracks and artists (generate's texts.tsv; TSV, CSV or JSON Lines with id and text) for --split cold-items.")
    var texts: String?

    @Option(help: "Audio embeddings (embed's output: /tracks/ids, /embeddings) for --split cold-items.")
    var audioEmbeddings: String?

    @Option(help: "A table with columns item and artist for --split cold-items (default: tracks.tsv beside --input, when present).")
    var trackArtists: String?

    @Option(help: "Temporal cutoff for --split temporal: epoch seconds or YYYY-MM-DD.")
    var cutoff: String?

    @Option(help: "Seed of the split.")
    var seed: UInt64 = 42

    @OptionGroup var inputFormat: InputFormatOptions
    @OptionGroup var weightingOptions: WeightingOptions

    @Option(help: "Cut-off rank k of the metrics.")
    var k: Int = 10

    @Option(help: "Write the metrics as JSON to this file.")
    var json: String?

    @Flag(help: "Do not store the metrics in the bundle.")
    var noSave = false

    static let splits = ["random", "leave-k-out", "temporal", "cold-items"]

    func validate() throws {
        if let split, !Self.splits.contains(split) {
            throw ValidationError("unknown --split '\(split)'; expected random, leave-k-out, temporal or cold-items")
        }
        let coldItems = split == "cold-items"
        if !coldItems {
            if texts != nil || audioEmbeddings != nil || trackArtists != nil {
                throw ValidationError("--texts, --audio-embeddings and --track-artists go with --split cold-items")
            }
            guard bundle != nil else { throw ValidationError("--bundle is required (except with --split cold-items)") }
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
    }

    func run() throws {
        if split == "cold-items" { return try runColdItems() }
        guard let bundle else { throw ValidationError("--bundle is required (except with --split cold-items)") }
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
            default: throw ValidationError("unknown --split '\(method)'; expected random, leave-k-out, temporal or cold-items")
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

    /// `--split cold-items`: content predictions for held-out tracks, scored against their real listeners.
    func runColdItems() throws {
        let logger = TrainerLogging.logger()
        guard let inputPath = input else { throw ValidationError("--input and --split go together") }
        var als = ALSParameters()
        if let bundle {
            try BundleCheck.validate(bundle)
            als = try PublishedModel.open(path: bundle).readBundle().model.parameters
        }
        for (flag, path) in [("--texts", texts), ("--audio-embeddings", audioEmbeddings), ("--track-artists", trackArtists)] {
            if let path, !FileManager.default.fileExists(atPath: path) {
                throw TrainerError("\(flag) \(path): no such file")
            }
        }
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
            content.append(ColdItemsContent(name: "audio", source: audioEmbeddings, ids: e.ids, vectors: e.vectors))
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
