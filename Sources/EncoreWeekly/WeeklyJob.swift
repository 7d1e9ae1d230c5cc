import Foundation
import Logging
import EncoreCore
import EncoreHybrid
import EncoreData
import EncoreFactorization
import EncoreIndex
import EncorePlaylists
import EncoreStorage
import EncoreEventLog
import EncoreEvaluation
import EncoreAnalysis

/// The weekly job's state and stages.
public final class WeeklyJob {
    /// What the job reads, writes and how.
    public let config: WeeklyConfiguration
    let logger: Logger
    let work: String
    let reportDir: String
    let threads: Int
    let params: ALSParameters

    // Loaded inputs.
    var plays = Interactions()
    var weighting: PlayWeighting = .counts
    var catalog: TrackCatalog = .bare(itemCount: 0)
    var feedback = FeedbackLog()
    var histories: ListeningHistories?
    var week: PlaylistDate = PlaylistDate(dayNumber: 0)
    var hasCatalog = false
    /// The generator's ground truth of tastes, when its files are beside the catalog.
    var tasteTruth: TasteTruth?
    /// Whether ``load()`` reads the generator's truth files when they are beside the catalog (the report's only).
    var readsTasteTruth = true
    var eventLog: EventLogInput?
    var eventLogReport = EventLogInput.Report()
    /// The format the play log was read in.
    var playsFormat: DelimitedFormat?

    // Stage outputs.
    var fitted: ModelBundle?
    var itemIP: HNSWIndex?
    var itemCosine: HNSWIndex?
    var userCosine: HNSWIndex?
    /// The index over the hybrid space (Daily Mix's new tracks), when the job has one.
    var hybridCosine: HNSWIndex?
    var discoverWeekly: DiscoverWeeklyTable?
    var dailyMixes: DailyMixTable?
    var evaluation: [String: Double] = [:]
    var cachedEnvironment: PlaylistEnvironment?
    var loadSeconds = 0.0

    // Content.
    /// Catalog tracks no one has played, added after the play log's items (the last ones of the item ids).
    public internal(set) var catalogOnlyTracks = 0
    /// The recordings of `--audio` matched to items.
    var audioInputs: [(item: Int32, input: AudioInput)] = []
    /// What the content stages found (files analysed, from the cache, ...).
    public internal(set) var contentSummary = ContentStageSummary()
    /// The content spaces made (or reloaded) by the content stages, aligned to the play log's items.
    public internal(set) var content = ContentSpaces()

    /// A job for `config`, logging to `logger`.
    /// - Throws: ``FactorizationError`` for invalid ALS parameters.
    public init(configuration config: WeeklyConfiguration, logger: Logger) throws {
        self.config = config
        self.logger = logger
        work = config.workDir ?? config.output + ".work"
        let base = config.output.hasSuffix(".h5") ? String(config.output.dropLast(3)) : config.output
        reportDir = config.reportDir ?? base + "-report"
        threads = config.threads == 0 ? Parallel.coreCount : config.threads
        params = config.parameters
        try params.validate()
    }

    var catalogDir: String? {
        if !config.useCatalog { return nil }
        guard let dir = config.catalog ?? config.events.map({ ($0 as NSString).deletingLastPathComponent }) else { return nil }
        return FileManager.default.fileExists(atPath: (dir as NSString).appendingPathComponent("tracks.tsv")) ? dir : nil
    }

    func file(_ name: String) -> String? {
        guard let dir = catalogDir else { return nil }
        let p = (dir as NSString).appendingPathComponent(name)
        return FileManager.default.fileExists(atPath: p) ? p : nil
    }

    func path(_ name: String) -> String { (work as NSString).appendingPathComponent(name) }

    /// Runs every stage (resuming finished ones), writes the bundle and the report, and returns the report.
    @discardableResult
    public func run() throws -> WeeklyReport {
        let start = Date()
        let cpuStart = StageRunner.processCPUSeconds()
        let loadPeakIsOwn = ResidentMemory.resetPeak()
        try load()
        loadSeconds = Date().timeIntervalSince(start)
        let loadCPU = StageRunner.processCPUSeconds() - cpuStart
        let loadPeak = ResidentMemory.peakBytes()
        let contentInputs = contentFingerprint
        let inputs = (config.events.map { [$0] } ?? []) + ["tracks.tsv", "artists.tsv", "likes.tsv", "dislikes.tsv", "follows.tsv"].compactMap(file)
            + (config.previous.map { [$0] } ?? []) + (config.model.map { [$0] } ?? []) + contentInputs.files
        let options = ["\(params)", week.description, "model=\(config.model ?? "fit")", "playlists=\(config.makesPlaylists)", "eval=\(config.evaluationUsers)", "catalog=\(catalogDir ?? "none")", Encore.version,
                       "eventlog=\(eventLog.map { "\($0.directory)@\($0.through)" } ?? "none")"]
            + (config.hasInputOptions ? ["input=\(playsFormat.map { "\($0)" } ?? "none")"] : []) + contentInputs.options
            + (config.index.quantization == .none ? [] : ["index-quantization=\(config.index.quantization.rawValue)"])
            + (config.index.contentSpaces ? [] : ["content-indexes=none"])
        let runner = try StageRunner(workDir: work, fingerprint: StageRunner.fingerprint(files: inputs, options: options), logger: logger)

        try runner.run("fit", outputs: [path("fit.h5")], resume: { fitted = try ModelBundle.read(from: path("fit.h5")) }) { try fit() }
        if config.content.audio != nil {
            try runner.run("audio", outputs: [contentPath("audio")], resume: { try resumeContent("audio") }) { try makeAudioSpace() }
        }
        if textsFile != nil {
            try runner.run("text", outputs: [contentPath("text")], resume: { try resumeContent("text") }) { try makeTextSpace() }
        }
        if config.content.sequenceVectors {
            try runner.run("sequence", outputs: [contentPath("sequence")], resume: { try resumeContent("sequence") }) { try makeSequenceSpace() }
        }
        if config.content.hybrid {
            try runner.run("hybrid", outputs: [contentPath("hybrid")], resume: { try resumeContent("hybrid") }) { try makeHybridSpace() }
        }
        try runner.run("index", outputs: indexFiles.map { path($0 + ".hnsw") }, resume: { try loadIndexes() }) { try buildIndexes() }
        if config.makesPlaylists {
            try runner.run("discover-weekly", outputs: [path("discover-weekly.h5")], resume: { discoverWeekly = try DiscoverWeeklyTable(contentsOf: path("discover-weekly.h5")) }) {
                try makeDiscoverWeekly()
            }
            try runner.run("daily-mix", outputs: [path("daily-mix.h5")], resume: { dailyMixes = try DailyMixTable(contentsOf: path("daily-mix.h5")) }) {
                try makeDailyMixes()
            }
        }
        // What remains (evaluation, bundle, report) needs neither the histories nor the playlists' item space and
        // indexes (the bundle stage publishes the index files): free them before the evaluation's refit.
        releasePlaylistInputs()
        try runner.run("evaluate", outputs: [path("evaluation.json")], resume: { evaluation = try loadJSON(path("evaluation.json")) }) { try evaluate() }
        try runner.run("bundle", outputs: [(PublishedModel.unitDirectory(forOutput: config.output) as NSString).appendingPathComponent(PublishedModel.manifestName)]) { try writeBundle() }
        let reportStart = Date()
        let report = WeeklyReport(
            job: self, timings: runner.timings, loadSeconds: loadSeconds,
            cpuSeconds: runner.cpuSeconds.merging(["load": loadCPU]) { a, _ in a },
            peakResidentBytes: runner.peakResidentBytes.merging(loadPeak.map { ["load": $0] } ?? [:]) { a, _ in a },
            peaksArePerStage: runner.peaksArePerStage && loadPeakIsOwn)
        try report.write(to: reportDir)
        logger.info("report written", metadata: [
            "dir": .string(reportDir), "seconds": .string(String(format: "%.2f", Date().timeIntervalSince(reportStart)))])
        return report
    }

    // MARK: Load

    func load() throws {
        try config.content.validate()
        var (log, w, input) = try loadPlaysAndEventLog()
        weighting = w
        eventLog = input
        if let w = config.week {
            week = try PlaylistDate.week(w)
        } else {
            week = PlaylistDate.mondayAfter(log.timestamps.max() ?? 0)
        }
        if let tracks = file("tracks.tsv"), config.includeUnplayedCatalogTracks {
            // Tracks released by the week's date (or undated) that no one has played: items without plays.
            let before = log.itemIDs.count
            for id in try TrackCatalog.trackIDs(inCatalog: tracks, releasedBefore: week.adding(days: 1).timestamp) {
                log.itemIDs.intern(id)
            }
            catalogOnlyTracks = log.itemIDs.count - before
            logger.info("catalog tracks without plays added", metadata: ["tracks": "\(catalogOnlyTracks)", "played": "\(before)"])
        }
        plays = log
        if let tracks = file("tracks.tsv") {
            catalog = try TrackCatalog.load(tracks: tracks, artists: file("artists.tsv"), itemIDs: log.itemIDs)
            hasCatalog = true
            let (fb, fbReport) = try FeedbackLog.load(
                likes: file("likes.tsv"), dislikes: file("dislikes.tsv"), follows: file("follows.tsv"),
                userIDs: log.userIDs, itemIDs: log.itemIDs, artistIDs: catalog.artistIDs)
            feedback = fb
            logger.info("loaded catalog and feedback", metadata: [
                "artists": "\(catalog.artistCount)", "likes": "\(fb.likes.count)", "follows": "\(fb.follows.count)",
                "dislikes": "\(fb.dislikedTracks.count + fb.dislikedArtists.count)", "unknown_rows": "\(fbReport.rowsUnknown)"])
        } else {
            catalog = .bare(itemCount: log.itemIDs.count)
            logger.info("no catalog: rules that need artists do not apply")
        }
        if let eventLog {
            feedback = eventLog.applyFeedback(to: feedback, userIDs: log.userIDs, itemIDs: log.itemIDs,
                                              artistIDs: catalog.artistIDs, report: &eventLogReport)
        }
        if readsTasteTruth, let tracks = file(TasteTruth.trackFile), let users = file(TasteTruth.userFile) {
            tasteTruth = try TasteTruth.load(tracks: tracks, users: users, userIDs: log.userIDs, itemIDs: log.itemIDs)
            logger.info("loaded the ground truth of tastes", metadata: ["labels": "\(tasteTruth?.labelNames.count ?? 0)"])
        }
        histories = try ListeningHistories.build(
            plays: log, weighting: weighting, feedback: feedback, asOf: week.timestamp, threads: threads)
        try checkContentInputs()
    }

    /// Listens (skips left out) summed per (user, track), before the confidence weighting the fit applies.
    /// - Throws: ``WeeklyError`` when the play log's indices do not fit its id maps.
    func listenMatrix() throws -> CSRMatrix {
        var r: [Int32] = [], cIdx: [Int32] = [], v: [Float] = []
        r.reserveCapacity(plays.count); cIdx.reserveCapacity(plays.count); v.reserveCapacity(plays.count)
        for t in 0..<plays.count {
            let w = weighting.listens(rowWeight: plays.weights[t])
            guard w > 0 else { continue }
            r.append(plays.users[t]); cIdx.append(plays.items[t]); v.append(w)
        }
        let m: CSRMatrix
        do {
            m = try CSRMatrix(rows: plays.userIDs.count, cols: plays.itemIDs.count, rowIndices: r, colIndices: cIdx, values: v)
        } catch {
            throw WeeklyError("cannot build the training matrix from the play log: \(error)")
        }
        return m
    }

    // MARK: Stages

    func fit() throws {
        let listens = try listenMatrix()
        let userItems = config.weighting.apply(toUserItems: listens)
        var model = ImplicitALS(parameters: params)
        var warm = false
        if let fixed = config.model {
            model = try importedModel(fixed)
        } else if let previous = config.previous {
            let old = try PublishedModel.readBundle(at: previous)
            if old.model.parameters.factors == params.factors {
                let x = Self.carryOver(old.model.userFactors, from: old.userIDs, to: plays.userIDs, seed: params.seed)
                let y = Self.carryOver(old.model.itemFactors, from: old.itemIDs, to: plays.itemIDs, seed: params.seed &+ 1)
                model = try ImplicitALS(parameters: params, userFactors: x.matrix, itemFactors: y.matrix)
                warm = true
                logger.info("warm start", metadata: ["previous": .string(previous), "users_carried": "\(x.carried)", "items_carried": "\(y.carried)"])
            } else {
                logger.warning("previous bundle has another factor count; starting cold", metadata: ["previous": .string(previous)])
            }
        }
        if config.model == nil {
            let progress = ProgressReporter(stage: "fit", total: params.iterations, logger: logger)
            progress.update(0)
            try model.fit(userItems, warmStart: warm) { progress.update($0.iteration, fields: [("s/iter", String(format: "%.2f", $0.seconds))]) }
        }
        if catalogOnlyTracks > 0 {
            // Catalog-only tracks have no play: their collaborative vector is zero (not the solver's leftover), so
            // every space and index treats them as having none.
            var y = model.itemFactors
            for i in (y.rows - catalogOnlyTracks)..<y.rows { for j in 0..<y.cols { y[i, j] = 0 } }
            model = try ImplicitALS(parameters: model.parameters, userFactors: model.userFactors, itemFactors: y)
        }
        var bundle = ModelBundle(
            userIDs: plays.userIDs, itemIDs: plays.itemIDs, model: model, userItems: userItems,
            metadata: ["input": config.events ?? config.eventLog ?? "", "week": week.description, "weighting": "\(config.weighting)", "command": "weekly"]
                .merging(config.model.map { ["model": $0] } ?? [:]) { a, _ in a })
        bundle.confidence = ConfidenceContext(weighting: config.weighting, rawUserItems: listens)
        try bundle.write(to: path("fit.h5"))
        fitted = bundle
    }

    /// The factors of the model at `path` (`--model`: trained elsewhere, e.g. imported from Spark) in the play log's
    /// user and item order, unchanged; users and tracks the model lacks (only skips, or catalog-only tracks) get
    /// zero vectors.
    func importedModel(_ path: String) throws -> ImplicitALS {
        let imported = try PublishedModel.readBundle(at: path)
        let f = imported.model.parameters.factors
        func rows(_ m: Matrix, _ from: IDMap, _ to: IDMap) -> (Matrix, Int) {
            var out = Matrix(rows: to.count, cols: f)
            var found = 0
            for (i, id) in to.ids.enumerated() {
                if let o = from.index(of: id) { out.setRow(i, m.row(Int(o))); found += 1 }
            }
            return (out, found)
        }
        let (x, users) = rows(imported.model.userFactors, imported.userIDs, plays.userIDs)
        let (y, items) = rows(imported.model.itemFactors, imported.itemIDs, plays.itemIDs)
        guard users > 0, items > 0 else {
            throw WeeklyError("--model \(path): none of its \(users == 0 ? "users" : "items") is in the play log")
        }
        logger.info("model given: no fit", metadata: [
            "model": .string(path), "factors": "\(f)", "users": "\(users) of \(plays.userIDs.count)",
            "items": "\(items) of \(plays.itemIDs.count)"])
        do {
            return try ImplicitALS(parameters: imported.model.parameters, userFactors: x, itemFactors: y)
        } catch { throw WeeklyError("--model \(path): \(error)") }
    }

    /// Rows of `old` moved to the order of `new` ids; ids the old model lacks start random like a fresh fit.
    static func carryOver(_ old: Matrix, from oldIDs: IDMap, to newIDs: IDMap, seed: UInt64) -> (matrix: Matrix, carried: Int) {
        var m = Matrix.random(rows: newIDs.count, cols: old.cols, scale: 0.01, seed: seed)
        var carried = 0
        for (i, id) in newIDs.ids.enumerated() {
            if let o = oldIDs.index(of: id) {
                m.setRow(i, old.row(Int(o)))
                carried += 1
            }
        }
        return (m, carried)
    }

    func buildIndexes() throws {
        guard let model = fitted?.model else { throw WeeklyError("no model") }
        let items = model.itemFactors, users = model.userFactors
        let specs: [(String, Matrix, VectorMetric)] = [
            ("items-ip.hnsw", items, .innerProduct), ("items-cosine.hnsw", items, .cosine), ("users-cosine.hnsw", users, .cosine),
        ]
        var built: [HNSWIndex] = []
        for (name, vectors, metric) in specs {
            let index = try HNSWIndex(dimension: vectors.cols, metric: metric, m: config.index.m, efConstruction: config.index.efConstruction, ef: config.index.ef,
                                      seed: params.seed, capacity: vectors.rows, quantization: config.index.quantization)
            let progress = ProgressReporter(stage: "index \(name)", total: 1, logger: logger)
            let rows = try Self.nonZeroRows(vectors)
            try index.add(ids: rows.ids, vectors: rows.vectors, threads: threads)
            progress.update(1)
            try index.save(to: path(name))
            built.append(index)
        }
        itemIP = built[0]; itemCosine = built[1]; userCosine = built[2]
        if indexFiles.contains("hybrid-cosine") {
            let progress = ProgressReporter(stage: "index hybrid-cosine.hnsw", total: 1, logger: logger)
            let index = try hybridItemSpace()?.index as? HNSWIndex
            progress.update(1)
            guard let index else { throw WeeklyError("the hybrid space has no index") }
            try index.save(to: path("hybrid-cosine.hnsw"))
            hybridCosine = index
        }
        // The content spaces' indexes are for the server's `similar?space=` (the playlists do not read them).
        for (space, set) in contentIndexSpaces {
            let name = space + "-cosine.hnsw"
            let progress = ProgressReporter(stage: "index \(name)", total: 1, logger: logger)
            let indexed = try ItemSpace(name: space, vectors: set.aligned(itemCount: model.itemCount).vectors)
                .indexed(efConstruction: config.index.efConstruction, ef: config.index.ef, seed: params.seed, threads: threads)
            progress.update(1)
            guard let index = indexed.index as? HNSWIndex else { throw WeeklyError("the \(space) space has no index") }
            try index.save(to: path(name))
        }
    }

    /// The content spaces (audio, text, sequence) with vectors, whose cosine indexes the index stage publishes
    /// (none when ``WeeklyConfiguration/IndexParameters/contentSpaces`` is off).
    var contentIndexSpaces: [(String, ItemVectorSet)] {
        guard fitted != nil, config.index.contentSpaces else { return [] }
        let spaces: [(String, ItemVectorSet?)] = [("audio", content.audioEmbeddings), ("text", content.text), ("sequence", content.sequence)]
        return spaces.compactMap { name, set in set.flatMap { $0.count > 0 ? (name, $0) : nil } }
    }

    /// The index files the index stage makes (without `.hnsw`): the collaborative ones, the content spaces' and the
    /// hybrid space's when the job has them.
    var indexFiles: [String] {
        ["items-ip", "items-cosine", "users-cosine"] + contentIndexSpaces.map { $0.0 + "-cosine" }
            + (content.hybrid != nil && fitted != nil ? ["hybrid-cosine"] : [])
    }

    /// The rows that are not all zeros, with their row numbers: what the collaborative indexes hold. An all-zero row
    /// (a catalog track no one played) has no direction, and thousands of identical placeholder vectors would knot
    /// the graph around one point, so such rows are left out of the index (no playlist returns them anyway).
    static func nonZeroRows(_ m: Matrix) throws -> (ids: [Int32], vectors: Matrix) {
        let d = m.cols
        var ids: [Int32] = []
        var storage: [Float] = []
        storage.reserveCapacity(m.storage.count)
        m.storage.withUnsafeBufferPointer { s in
            for r in 0..<m.rows where !m.isZeroRow(r) {
                ids.append(Int32(r))
                storage.append(contentsOf: s[(r * d)..<((r + 1) * d)])
            }
        }
        return (ids, try Matrix(rows: ids.count, cols: d, storage: storage))
    }

    func loadIndexes() throws {
        itemIP = try HNSWIndex.load(from: path("items-ip.hnsw"))
        itemCosine = try HNSWIndex.load(from: path("items-cosine.hnsw"))
        userCosine = try HNSWIndex.load(from: path("users-cosine.hnsw"))
        if indexFiles.contains("hybrid-cosine") { hybridCosine = try HNSWIndex.load(from: path("hybrid-cosine.hnsw")) }
    }

    /// Lets the listening histories, the playlists' environment and the in-memory indexes go.
    func releasePlaylistInputs() {
        histories = nil
        cachedEnvironment = nil
        itemIP = nil
        itemCosine = nil
        userCosine = nil
        hybridCosine = nil
    }

    /// The playlists' environment, made once per run: the collaborative item space (with its neighbor lists) is
    /// shared by Discover Weekly and Daily Mix.
    func environment() throws -> PlaylistEnvironment {
        if let cachedEnvironment { return cachedEnvironment }
        guard let b = fitted else { throw WeeklyError("no model") }
        let start = Date()
        let progress = ProgressReporter(stage: "neighbor lists", total: b.model.itemCount, logger: logger)
        let space = try ItemSpace.collaborative(b.model, userItems: b.userItems, index: itemCosine)
            .withNeighborLists(count: config.neighborListSize, threads: threads) { progress.update($0) }
        logger.info("item neighbor lists", metadata: [
            "items": "\(space.itemCount)", "per_item": "\(config.neighborListSize)",
            "seconds": .string(String(format: "%.1f", Date().timeIntervalSince(start)))])
        let env = try PlaylistEnvironment(catalog: catalog, space: space, model: b.model)
        cachedEnvironment = env
        return env
    }

    func makeDiscoverWeekly() throws {
        let table = try discoverWeeklyTable(users: (0..<Int32(plays.userIDs.count)).map { $0 })
        try table.write(to: path("discover-weekly.h5"))
        discoverWeekly = table
    }

    /// Discover Weekly of `users` (rows in that order): the one function behind the weekly stage and the shard
    /// parts of `encore-train playlists`, so the two cannot drift.
    func discoverWeeklyTable(users: [Int32]) throws -> DiscoverWeeklyTable {
        guard let b = fitted, let histories else { throw WeeklyError("no model") }
        let config = try DiscoverWeekly.Configuration.standard(
            histories: histories, model: b.model, catalog: catalog.hasArtists ? catalog : nil, itemIndex: itemIP,
            userIndex: userCosine, content: try discoverWeeklyContent(histories: histories))
        let builder = try DiscoverWeekly(environment: try environment(), configuration: config, week: week)
        let progress = ProgressReporter(stage: "discover-weekly", total: users.count, logger: logger)
        let playlists = try builder.buildAll(histories: histories, users: users, threads: threads) { progress.update($0) }
        // One label string per combination of sources (a few hundred), shared by the tracks, not one per track: the
        // playlists of one builder share its source names, so a source mask names the same sources in all of them.
        var labels: [UInt32: String] = [:]
        let rows = playlists.map { p in
            p.tracks.map { t in
                let label: String
                if let known = labels[t.sourceMask] {
                    label = known
                } else {
                    label = p.sources(of: t).joined(separator: "+")
                    labels[t.sourceMask] = label
                }
                return (item: t.item, score: t.relevance, source: label)
            }
        }
        return try DiscoverWeeklyTable(week: week.description, rows: rows)
    }

    func makeDailyMixes() throws {
        let table = try dailyMixTable(users: (0..<Int32(plays.userIDs.count)).map { $0 })
        try table.write(to: path("daily-mix.h5"))
        dailyMixes = table
    }

    /// Daily Mixes of `users` (rows in that order), for the weekly stage and the shard parts alike.
    func dailyMixTable(users: [Int32]) throws -> DailyMixTable {
        guard let histories else { throw WeeklyError("no histories") }
        let builder = try DailyMix(environment: try environment(), day: week, descriptors: try trackDescriptors(),
                                   newTrackSpace: try hybridItemSpace())
        let progress = ProgressReporter(stage: "daily-mix", total: users.count, logger: logger)
        let all = try builder.buildAll(histories: histories, users: users, threads: threads) { progress.update($0) }
        let rows = all.map { m in
            m.mixes.map { mix in
                DailyMixTable.Mix(name: mix.name, cover: mix.cover, tracks: zip(mix.items, mix.isFamiliar).map { ($0, $1) })
            }
        }
        return DailyMixTable(day: week.description, rows: rows)
    }

    func evaluate() throws {
        var out: [String: Double] = [:]
        if config.evaluationUsers > 0 {
            let progress = ProgressReporter(stage: "evaluate", total: 1, logger: logger)
            do {
                out = try evaluationMetrics()
            } catch {
                logger.warning("offline evaluation skipped", metadata: ["reason": .string("\(error)")])
            }
            progress.update(1)
        }
        let data = try JSONSerialization.data(withJSONObject: out, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: URL(fileURLWithPath: path("evaluation.json")))
        evaluation = out
    }

    /// The temporal split of the play log (train before the last week, test on its first plays): Discover Weekly
    /// made as this job makes it (with its content when it has some) and without content, beside popularity and
    /// plain ALS; the text vectors and audio embeddings are the job's (catalogue content), the sequence vectors are
    /// refitted on the weeks before the test week.
    func evaluationMetrics() throws -> [String: Double] {
        var spaces: [ColdItemsContent] = []
        for (name, set) in [("audio", content.audioEmbeddings), ("text", content.text)] {
            guard let set, set.count > 0 else { continue }
            spaces.append(ColdItemsContent(
                name: name, source: "the job's \(name) vectors", ids: set.items.map { plays.itemIDs.id(at: $0) }, vectors: set.vectors))
        }
        let sequence = config.content.sequenceVectors && (content.sequence?.count ?? 0) > 0
        let names = spaces.map(\.name) + (sequence ? ["sequence"] : [])
        let hybrid = config.content.hybrid
        let job = TemporalContentVariant(
            name: "job", spaces: hybrid ? names : names.filter { $0 == "audio" }, artistPrior: hybrid && catalog.hasArtists,
            coldStart: hybrid)
        var options = TemporalContentOptions(
            als: params, confidence: config.weighting, coldStart: config.content.coldStart,
            coldMaxListeners: config.content.coldMaxListeners, newReleaseDays: config.content.newReleaseDays,
            newTrackShare: config.content.newTrackShare,
            sequence: config.content.sequenceOptions,
            sessionGapSeconds: Int64((config.content.sessionGapMinutes * 60).rounded()),
            sampleUsers: config.evaluationUsers, sampleSeed: params.seed, threads: threads)
        options.variants = job.usesContent ? [.cfOnly, job] : [.cfOnly]
        let report = try PlaylistEvaluation.temporalContent(
            plays: plays, weighting: weighting, feedback: feedback, catalog: catalog,
            content: TemporalContentInputs(spaces: job.usesContent ? spaces : [], sequenceVectors: job.usesContent && sequence),
            options: options)
        let k = report.listLength
        var out: [String: Double] = [
            "weekly/users": Double(report.users), "weekly/new_release_pairs": Double(report.newReleasePairs),
            "weekly/new_release_pairs_released": Double(report.newReleasePairsReleased),
        ]
        for b in [report.popularity, report.alsTop] {
            out["weekly/\(b.method)/hit_rate@\(k)"] = b.share
            out["weekly/\(b.method)/users_with_hit"] = b.usersWithHit
        }
        for r in report.rows {
            // The playlists this job makes are `discover-weekly`; without content, `discover-weekly-no-content`.
            let method = r.variant == "job" || !job.usesContent ? "discover-weekly" : "discover-weekly-no-content"
            out["weekly/\(method)/hit_rate@\(k)"] = r.overall.share
            out["weekly/\(method)/users_with_hit"] = r.overall.usersWithHit
            out["weekly/\(method)/new_release_hits"] = Double(r.newReleaseHits)
            out["weekly/\(method)/new_release_hit_rate@\(k)"] = r.newReleaseHitRate
            out["weekly/\(method)/new_track_slots"] = r.newTrackSlots
        }
        return out
    }

    func writeBundle() throws {
        guard var b = fitted else { throw WeeklyError("no model") }
        b.discoverWeekly = discoverWeekly
        b.dailyMixes = dailyMixes
        b.metrics = evaluation
        if hasCatalog { b.catalog = catalog }
        b.contentSpaces = content.isEmpty ? nil : content
        if catalogOnlyTracks > 0 { b.metadata["catalog_only_tracks"] = "\(catalogOnlyTracks)" }
        for (key, value) in playlistSettings { b.metadata[key] = value }
        for (key, value) in eventLog?.metadata ?? [:] { b.metadata[key] = value }
        b.metadata["created_at"] = ISO8601DateFormatter().string(from: Date())
        let unit = PublishedModel.unitDirectory(forOutput: config.output)
        let published = try PublishedModel.publish(
            bundle: b, indexes: Dictionary(uniqueKeysWithValues: indexFiles.map { ($0, path($0 + ".hnsw")) }), to: unit)
        fitted = b
        logger.info("bundle published", metadata: ["unit": .string(unit), "version": .string(published.version ?? "")])
    }

    func loadJSON(_ p: String) throws -> [String: Double] {
        let data = try Data(contentsOf: URL(fileURLWithPath: p))
        return (try JSONSerialization.jsonObject(with: data) as? [String: Double]) ?? [:]
    }

    // MARK: Show one user

    /// One user's playlists as text (`id` `nil`: the first user), as `encore-train weekly --show-user` prints them.
    /// - Throws: ``WeeklyError`` when the user is not in the play log.
    public func userPlaylists(_ user: String?) throws -> String {
        var out = ""
        func print(_ line: String) { out += line + "\n" }
        guard let b = fitted else { return out }
        let id = user ?? b.userIDs.ids.first ?? ""
        guard let u = b.userIDs.index(of: id) else { throw WeeklyError("user '\(id)' is not in the play log") }
        func label(_ item: Int32) -> String {
            let a = catalog.artist(of: item)
            return a >= 0 ? "\(b.itemIDs.id(at: item)) (\(catalog.name(ofArtist: a)))" : b.itemIDs.id(at: item)
        }
        if let dw = discoverWeekly {
            print("\nDiscover Weekly for \(id), week of \(dw.week):")
            for (n, t) in dw.tracks(ofUser: Int(u)).enumerated() {
                print(String(format: "%3d  %@  %.3f  %@", n + 1, label(t.item), t.score, t.source))
            }
        }
        if let dm = dailyMixes {
            for mix in dm.mixes(ofUser: Int(u)) {
                let familiar = mix.tracks.filter(\.familiar).count
                print("\n\(mix.name) (cover \(label(mix.cover)); \(mix.tracks.count) tracks, \(familiar) familiar):")
                for t in mix.tracks.prefix(8) { print("     \(t.familiar ? " " : "+") \(label(t.item))") }
                if mix.tracks.count > 8 { print("     ...") }
            }
        }
        return out
    }
}
