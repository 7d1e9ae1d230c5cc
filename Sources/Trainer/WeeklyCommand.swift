import ArgumentParser
import Foundation
import Logging
import RecCore

/// `encore-train weekly`: the weekly batch job, from the play log to a bundle with every user's playlists.
struct WeeklyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "weekly",
        abstract: "Run the weekly job: fit, index, Discover Weekly and Daily Mix for every user, evaluate, write the bundle and a report.",
        discussion: """
            Stages: fit (warm-started from --previous when given), index (HNSW over item and user vectors), \
            discover-weekly, daily-mix, evaluate (a temporal split: train before the last week, test on its first \
            plays), bundle, report. Finished stages are kept in --work-dir, so a job that crashed resumes from the \
            last finished stage when run again with the same inputs and options. The catalogue and feedback files \
            (tracks.tsv, artists.tsv, likes.tsv, dislikes.tsv, follows.tsv) are read from --catalog (default: the \
            play log's folder) when present; from a bare play log (user, item, weight, timestamp) the rules that \
            need artists do not apply.
            """)

    @Option(help: "The play log: Encore's plays.tsv (user, item, timestamp, ms_played) or any log `fit` reads (optional with --event-log).")
    var events: String?

    @Option(help: "The server's event log folder: its plays, skips, likes, dislikes and follows are added to the inputs; the bundle records event_log_through.")
    var eventLog: String?

    @Option(help: "Folder with tracks.tsv, artists.tsv, likes.tsv, dislikes.tsv, follows.tsv (default: the play log's folder).")
    var catalog: String?

    @Flag(help: "Ignore catalogue and feedback files even when present.")
    var noCatalog = false

    @Option(help: "Where to publish the bundle and its HNSW indexes: B.h5 publishes the unit B.h5.d (a folder with current.json and versions).")
    var output: String

    @Option(help: "Last week's bundle: its factors warm-start the fit for the users and tracks it knows.")
    var previous: String?

    @Option(help: "The week (a Monday, YYYY-MM-DD). Default: the Monday after the latest event.")
    var week: String?

    @Option(help: "Folder for the finished stages (default: <output>.work).")
    var workDir: String?

    @Option(help: "Folder for the report (default: <output without .h5>-report).")
    var report: String?

    @Option(help: "Latent factors.") var factors: Int = 64
    @Option(help: "L2 regularisation.") var regularization: Float = 0.05
    @Option(help: "Confidence scale.") var alpha: Float = 1.0
    @Option(help: "ALS iterations.") var iterations: Int = 15
    @Option(help: "Threads (0 = every core).") var threads: Int = 0
    @Option(help: "Seed of the fit, the index and the evaluation sample.") var seed: UInt64 = 42

    @Option(help: "Users sampled for the offline evaluation (0 skips it).")
    var evalUsers: Int = 2000

    @Option(help: "Print this user's playlists at the end (default: the first user).")
    var showUser: String?

    func validate() throws {
        if events == nil && eventLog == nil { throw ValidationError("give --events, --event-log or both") }
    }

    func run() throws {
        let logger = TrainerLogging.logger()
        let job = try WeeklyJob(command: self, logger: logger)
        try job.run()
    }
}

/// The weekly job's state and stages.
final class WeeklyJob {
    let c: WeeklyCommand
    let logger: Logger
    let work: String
    let reportDir: String
    let threads: Int
    let params: ALSParameters

    // Loaded inputs.
    var plays = Interactions()
    var weighting: PlayWeighting = .counts
    var catalogue: TrackCatalog = .bare(itemCount: 0)
    var feedback = FeedbackLog()
    var histories: ListeningHistories?
    var week: PlaylistDate = PlaylistDate(dayNumber: 0)
    var hasCatalog = false
    /// The generator's ground truth of tastes, when its files are beside the catalogue.
    var tasteTruth: TasteTruth?
    var eventLog: EventLogInput?
    var eventLogReport = EventLogInput.Report()

    // Stage outputs.
    var fitted: ModelBundle?
    var itemIP: HNSWIndex?
    var itemCosine: HNSWIndex?
    var userCosine: HNSWIndex?
    var discoverWeekly: DiscoverWeeklyTable?
    var dailyMixes: DailyMixTable?
    var evaluation: [String: Double] = [:]
    var cachedEnvironment: PlaylistEnvironment?
    var loadSeconds = 0.0

    init(command: WeeklyCommand, logger: Logger) throws {
        c = command
        self.logger = logger
        work = command.workDir ?? command.output + ".work"
        let base = command.output.hasSuffix(".h5") ? String(command.output.dropLast(3)) : command.output
        reportDir = command.report ?? base + "-report"
        threads = command.threads == 0 ? Parallel.coreCount : command.threads
        params = ALSParameters(
            factors: command.factors, regularization: command.regularization, alpha: command.alpha,
            iterations: command.iterations, solver: .cg, seed: command.seed, threads: command.threads)
        try params.validate()
    }

    var catalogDir: String? {
        if c.noCatalog { return nil }
        guard let dir = c.catalog ?? c.events.map({ ($0 as NSString).deletingLastPathComponent }) else { return nil }
        return FileManager.default.fileExists(atPath: (dir as NSString).appendingPathComponent("tracks.tsv")) ? dir : nil
    }

    func file(_ name: String) -> String? {
        guard let dir = catalogDir else { return nil }
        let p = (dir as NSString).appendingPathComponent(name)
        return FileManager.default.fileExists(atPath: p) ? p : nil
    }

    func path(_ name: String) -> String { (work as NSString).appendingPathComponent(name) }

    func run() throws {
        let start = Date()
        let cpuStart = StageRunner.processCPUSeconds()
        try load()
        loadSeconds = Date().timeIntervalSince(start)
        let loadCPU = StageRunner.processCPUSeconds() - cpuStart
        let inputs = (c.events.map { [$0] } ?? []) + ["tracks.tsv", "artists.tsv", "likes.tsv", "dislikes.tsv", "follows.tsv"].compactMap(file)
            + (c.previous.map { [$0] } ?? [])
        let options = ["\(params)", week.description, "eval=\(c.evalUsers)", "catalog=\(catalogDir ?? "none")", Encore.version,
                       "eventlog=\(eventLog.map { "\($0.directory)@\($0.through)" } ?? "none")"]
        let runner = try StageRunner(workDir: work, fingerprint: StageRunner.fingerprint(files: inputs, options: options), logger: logger)

        try runner.run("fit", outputs: [path("fit.h5")], resume: { fitted = try ModelBundle.read(from: path("fit.h5")) }) { try fit() }
        try runner.run("index", outputs: ["items-ip.hnsw", "items-cosine.hnsw", "users-cosine.hnsw"].map(path), resume: { try loadIndexes() }) { try buildIndexes() }
        try runner.run("discover-weekly", outputs: [path("discover-weekly.h5")], resume: { discoverWeekly = try DiscoverWeeklyTable(contentsOf: path("discover-weekly.h5")) }) {
            try makeDiscoverWeekly()
        }
        try runner.run("daily-mix", outputs: [path("daily-mix.h5")], resume: { dailyMixes = try DailyMixTable(contentsOf: path("daily-mix.h5")) }) {
            try makeDailyMixes()
        }
        try runner.run("evaluate", outputs: [path("evaluation.json")], resume: { evaluation = try loadJSON(path("evaluation.json")) }) { try evaluate() }
        try runner.run("bundle", outputs: [(PublishedModel.unitDirectory(forOutput: c.output) as NSString).appendingPathComponent(PublishedModel.manifestName)]) { try writeBundle() }
        let reportStart = Date()
        let report = WeeklyReport(
            job: self, timings: runner.timings, loadSeconds: loadSeconds,
            cpuSeconds: runner.cpuSeconds.merging(["load": loadCPU]) { a, _ in a })
        try report.write(to: reportDir)
        logger.info("report written", metadata: [
            "dir": .string(reportDir), "seconds": .string(String(format: "%.2f", Date().timeIntervalSince(reportStart)))])
        print(report.text)
        try showUser()
    }

    // MARK: Load

    func load() throws {
        let (log, w, input) = try loadPlaysAndEventLog()
        plays = log
        weighting = w
        eventLog = input
        if let w = c.week {
            week = try PlaylistDate.week(w)
        } else {
            week = PlaylistDate.mondayAfter(log.timestamps.max() ?? 0)
        }
        if let tracks = file("tracks.tsv") {
            catalogue = try TrackCatalog.load(tracks: tracks, artists: file("artists.tsv"), itemIDs: log.itemIDs)
            hasCatalog = true
            let (fb, fbReport) = try FeedbackLog.load(
                likes: file("likes.tsv"), dislikes: file("dislikes.tsv"), follows: file("follows.tsv"),
                userIDs: log.userIDs, itemIDs: log.itemIDs, artistIDs: catalogue.artistIDs)
            feedback = fb
            logger.info("loaded catalogue and feedback", metadata: [
                "artists": "\(catalogue.artistCount)", "likes": "\(fb.likes.count)", "follows": "\(fb.follows.count)",
                "dislikes": "\(fb.dislikedTracks.count + fb.dislikedArtists.count)", "unknown_rows": "\(fbReport.rowsUnknown)"])
        } else {
            catalogue = .bare(itemCount: log.itemIDs.count)
            logger.info("no catalogue: rules that need artists do not apply")
        }
        if let eventLog {
            feedback = eventLog.applyFeedback(to: feedback, userIDs: log.userIDs, itemIDs: log.itemIDs,
                                              artistIDs: catalogue.artistIDs, report: &eventLogReport)
        }
        if let tracks = file(TasteTruth.trackFile), let users = file(TasteTruth.userFile) {
            tasteTruth = try TasteTruth.load(tracks: tracks, users: users, userIDs: log.userIDs, itemIDs: log.itemIDs)
            logger.info("loaded the ground truth of tastes", metadata: ["labels": "\(tasteTruth?.labelNames.count ?? 0)"])
        }
        histories = try ListeningHistories.build(
            plays: log, weighting: weighting, feedback: feedback, asOf: week.timestamp, threads: threads)
    }

    /// The training matrix: listened plays (skips left out) summed per (user, track), BM25-weighted.
    func trainingMatrix() -> CSRMatrix {
        var r: [Int32] = [], cIdx: [Int32] = [], v: [Float] = []
        r.reserveCapacity(plays.count); cIdx.reserveCapacity(plays.count); v.reserveCapacity(plays.count)
        for t in 0..<plays.count {
            let w: Float
            switch weighting {
            case .milliseconds(let skipBelow): w = plays.weights[t] >= Float(skipBelow) ? 1 : 0
            default: w = plays.weights[t]
            }
            guard w > 0 else { continue }
            r.append(plays.users[t]); cIdx.append(plays.items[t]); v.append(w)
        }
        let m = (try? CSRMatrix(rows: plays.userIDs.count, cols: plays.itemIDs.count, rowIndices: r, colIndices: cIdx, values: v))
            ?? .empty(rows: plays.userIDs.count, cols: plays.itemIDs.count)
        return ConfidenceWeighting.bm25Default.apply(toUserItems: m)
    }

    // MARK: Stages

    func fit() throws {
        let userItems = trainingMatrix()
        var model = ImplicitALS(parameters: params)
        var warm = false
        if let previous = c.previous {
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
        let progress = ProgressReporter(stage: "fit", total: params.iterations, logger: logger)
        progress.update(0)
        try model.fit(userItems, warmStart: warm) { progress.update($0.iteration, fields: [("s/iter", String(format: "%.2f", $0.seconds))]) }
        let bundle = ModelBundle(
            userIDs: plays.userIDs, itemIDs: plays.itemIDs, model: model, userItems: userItems,
            metadata: ["input": c.events ?? c.eventLog ?? "", "week": week.description, "weighting": "\(ConfidenceWeighting.bm25Default)", "command": "weekly"])
        try bundle.write(to: path("fit.h5"))
        fitted = bundle
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
        guard let model = fitted?.model else { throw TrainerError("no model") }
        let items = model.itemFactors, users = model.userFactors
        let specs: [(String, Matrix, VectorMetric)] = [
            ("items-ip.hnsw", items, .innerProduct), ("items-cosine.hnsw", items, .cosine), ("users-cosine.hnsw", users, .cosine),
        ]
        var built: [HNSWIndex] = []
        for (name, vectors, metric) in specs {
            let index = try HNSWIndex(dimension: vectors.cols, metric: metric, m: 16, efConstruction: 100, ef: 100,
                                      seed: params.seed, capacity: vectors.rows)
            let progress = ProgressReporter(stage: "index \(name)", total: 1, logger: logger)
            try index.add(ids: (0..<Int32(vectors.rows)).map { $0 }, vectors: Self.nonZeroRows(vectors), threads: threads)
            progress.update(1)
            try index.save(to: path(name))
            built.append(index)
        }
        itemIP = built[0]; itemCosine = built[1]; userCosine = built[2]
    }

    /// Rows that are all zeros (an item with no listened play) get a tiny constant so cosine indexes accept them;
    /// the item space leaves such items out of every playlist anyway.
    static func nonZeroRows(_ m: Matrix) -> Matrix {
        var out = m
        for r in 0..<m.rows where m.row(r).allSatisfy({ $0 == 0 }) {
            for j in 0..<m.cols { out[r, j] = 1e-6 }
        }
        return out
    }

    func loadIndexes() throws {
        itemIP = try HNSWIndex.load(from: path("items-ip.hnsw"))
        itemCosine = try HNSWIndex.load(from: path("items-cosine.hnsw"))
        userCosine = try HNSWIndex.load(from: path("users-cosine.hnsw"))
    }

    /// Neighbours precomputed per track for the item-to-item queries of the playlists (the heavy-rotation source asks
    /// ten per user; 64 covers its 30 per seed after the user's own tracks are filtered out, and a short list falls
    /// back to the index).
    static let neighbourListSize = 64

    /// The playlists' environment, made once per run: the collaborative item space (with its neighbour lists) is
    /// shared by Discover Weekly and Daily Mix.
    func environment() throws -> PlaylistEnvironment {
        if let cachedEnvironment { return cachedEnvironment }
        guard let b = fitted else { throw TrainerError("no model") }
        let start = Date()
        let progress = ProgressReporter(stage: "neighbour lists", total: b.model.itemCount, logger: logger)
        let space = try ItemSpace.collaborative(b.model, userItems: b.userItems, index: itemCosine)
            .withNeighbourLists(count: Self.neighbourListSize, threads: threads) { progress.update($0) }
        logger.info("item neighbour lists", metadata: [
            "items": "\(space.itemCount)", "per_item": "\(Self.neighbourListSize)",
            "seconds": .string(String(format: "%.1f", Date().timeIntervalSince(start)))])
        let env = try PlaylistEnvironment(catalog: catalogue, space: space, model: b.model)
        cachedEnvironment = env
        return env
    }

    func makeDiscoverWeekly() throws {
        guard let b = fitted, let histories else { throw TrainerError("no model") }
        let config = try DiscoverWeekly.Configuration.standard(
            histories: histories, model: b.model, catalog: catalogue.hasArtists ? catalogue : nil, itemIndex: itemIP,
            userIndex: userCosine)
        let builder = try DiscoverWeekly(environment: try environment(), configuration: config, week: week)
        let users = (0..<Int32(plays.userIDs.count)).map { $0 }
        let progress = ProgressReporter(stage: "discover-weekly", total: users.count, logger: logger)
        let playlists = try builder.buildAll(histories: histories, users: users, threads: threads) { progress.update($0) }
        let rows = playlists.map { p in
            p.tracks.map { t in (item: t.item, score: t.relevance, source: p.sources(of: t).joined(separator: "+")) }
        }
        let table = DiscoverWeeklyTable(week: week.description, rows: rows)
        try table.write(to: path("discover-weekly.h5"))
        discoverWeekly = table
    }

    func makeDailyMixes() throws {
        guard let histories else { throw TrainerError("no histories") }
        let builder = try DailyMix(environment: try environment(), day: week)
        let users = (0..<Int32(plays.userIDs.count)).map { $0 }
        let progress = ProgressReporter(stage: "daily-mix", total: users.count, logger: logger)
        let all = try builder.buildAll(histories: histories, users: users, threads: threads) { progress.update($0) }
        let rows = all.map { m in
            m.mixes.map { mix in
                DailyMixTable.Mix(name: mix.name, cover: mix.cover, tracks: zip(mix.items, mix.isFamiliar).map { ($0, $1) })
            }
        }
        let table = DailyMixTable(day: week.description, rows: rows)
        try table.write(to: path("daily-mix.h5"))
        dailyMixes = table
    }

    func evaluate() throws {
        var out: [String: Double] = [:]
        if c.evalUsers > 0 {
            let progress = ProgressReporter(stage: "evaluate", total: 1, logger: logger)
            do throws(PlaylistError) {
                let (rates, _) = try PlaylistEvaluation.temporalSplit(
                    plays: plays, weighting: weighting, feedback: feedback, catalog: catalogue, parameters: params,
                    sampleUsers: c.evalUsers, sampleSeed: params.seed, threads: threads)
                out["weekly/users"] = Double(rates.users)
                for r in [rates.discoverWeekly, rates.popularity, rates.alsTop] {
                    out["weekly/\(r.method)/hit_rate@\(rates.listLength)"] = r.share
                    out["weekly/\(r.method)/users_with_hit"] = r.usersWithHit
                }
            } catch {
                logger.warning("offline evaluation skipped", metadata: ["reason": .string(error.description)])
            }
            progress.update(1)
        }
        let data = try JSONSerialization.data(withJSONObject: out, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: URL(fileURLWithPath: path("evaluation.json")))
        evaluation = out
    }

    func writeBundle() throws {
        guard var b = fitted else { throw TrainerError("no model") }
        b.discoverWeekly = discoverWeekly
        b.dailyMixes = dailyMixes
        b.metrics = evaluation
        if hasCatalog { b.catalog = catalogue }
        for (key, value) in eventLog?.metadata ?? [:] { b.metadata[key] = value }
        b.metadata["created_at"] = ISO8601DateFormatter().string(from: Date())
        let unit = PublishedModel.unitDirectory(forOutput: c.output)
        let published = try PublishedModel.publish(
            bundle: b, indexes: Dictionary(uniqueKeysWithValues: ["items-ip", "items-cosine", "users-cosine"].map { ($0, path($0 + ".hnsw")) }), to: unit)
        fitted = b
        logger.info("bundle published", metadata: ["unit": .string(unit), "version": .string(published.version ?? "")])
    }

    func loadJSON(_ p: String) throws -> [String: Double] {
        let data = try Data(contentsOf: URL(fileURLWithPath: p))
        return (try JSONSerialization.jsonObject(with: data) as? [String: Double]) ?? [:]
    }

    // MARK: Show one user

    func showUser() throws {
        guard let b = fitted else { return }
        let id = c.showUser ?? b.userIDs.ids.first ?? ""
        guard let u = b.userIDs.index(of: id) else { throw TrainerError("user '\(id)' is not in the play log") }
        func label(_ item: Int32) -> String {
            let a = catalogue.artist(of: item)
            return a >= 0 ? "\(b.itemIDs.id(at: item)) (\(catalogue.name(ofArtist: a)))" : b.itemIDs.id(at: item)
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
    }
}
