import EncoreCore
import EncoreData
import EncoreFactorization
import EncoreHybrid
import EncoreText

/// The options of the cold-items evaluation.
public struct ColdItemsOptions: Sendable {
    /// The share of tracks held out entirely (all their plays), in (0, 1).
    public var testFraction: Double
    /// The seed of the held-out draw.
    public var seed: UInt64
    /// The cut-off of precision, recall, NDCG and hit rate.
    public var k: Int
    /// The ALS fitted on the remaining plays.
    public var als: ALSParameters
    /// How plays become confidences.
    public var weighting: ConfidenceWeighting
    /// The cold-start model's options.
    public var coldStart: ColdStartOptions
    /// The LSA options of the text vectors.
    public var text: LSAOptions
    /// Threads of the text vectors (0: every core).
    public var threads: Int

    /// Options with their defaults unless given (ALS and weighting as `encore-train fit`'s).
    public init(
        testFraction: Double = 0.2, seed: UInt64 = 42, k: Int = 10, als: ALSParameters = ALSParameters(),
        weighting: ConfidenceWeighting = .bm25Default, coldStart: ColdStartOptions = ColdStartOptions(),
        text: LSAOptions = LSAOptions(), threads: Int = 0
    ) {
        self.testFraction = testFraction
        self.seed = seed
        self.k = k
        self.als = als
        self.weighting = weighting
        self.coldStart = coldStart
        self.text = text
        self.threads = threads
    }
}

/// Content given to the cold-items evaluation: a named set of vectors keyed by track id (audio embeddings, or any
/// precomputed space).
public struct ColdItemsContent: Sendable {
    /// The space's name (`audio`, ...).
    public var name: String
    /// Where the vectors came from (a path), for messages.
    public var source: String
    /// The track id of each row.
    public var ids: [String]
    /// One vector per id.
    public var vectors: Matrix

    /// Content from its parts.
    public init(name: String, source: String, ids: [String], vectors: Matrix) {
        self.name = name
        self.source = source
        self.ids = ids
        self.vectors = vectors
    }
}

/// One row of the cold-items table: a way of scoring the held-out tracks.
public struct ColdItemsRow: Sendable, Equatable, Codable {
    /// The space (`random`, `artist`, `text`, `audio`, `hybrid`).
    public var space: String
    /// Held-out tracks with a prediction from this space (the others are scored with the mean vector).
    public var tracksPredicted: Int
    /// Mean over users of the full AUC among the held-out tracks (ties count one half).
    public var auc: Double
    /// Precision, recall, NDCG and hit rate at k among the held-out tracks (``RankingMetrics``' definitions).
    public var metrics: RankingMetrics
}

/// The result of a cold-items evaluation.
public struct ColdItemsReport: Sendable {
    /// The rows: `random` first, then the single sources, then `hybrid`.
    public var rows: [ColdItemsRow]
    /// The tracks held out, the tracks trained on.
    public var heldOutTracks: Int, trainTracks: Int
    /// The users scored (a training play and a play of a held-out track).
    public var users: Int
    /// The held-out plays (user, track pairs) scored.
    public var heldOutPairs: Int
    /// The hybrid model's sources (weights, penalties, validation errors).
    public var sources: [ColdStartSource]
    /// The hybrid model's warm tracks.
    public var warmTracks: Int
    /// Remarks (a space that does not apply, coverage).
    public var notes: [String]

    /// A plain-text table: one row per space, with the held-out tracks it predicted and the metrics.
    public func table(k: Int) -> String {
        let header = ["space", "tracks", "auc", "precision@\(k)", "recall@\(k)", "ndcg@\(k)", "hit_rate@\(k)"]
        var lines = [header]
        for r in rows {
            lines.append([
                r.space, r.space == "random" ? "-" : "\(r.tracksPredicted)/\(heldOutTracks)", fmt(r.auc), fmt(r.metrics.precision),
                fmt(r.metrics.recall), fmt(r.metrics.ndcg), fmt(r.metrics.hitRate),
            ])
        }
        let widths = header.indices.map { c in lines.map { $0[c].count }.max() ?? 0 }
        var out = lines.map { row in
            row.enumerated().map { c, v in c == 0 ? v.padding(toLength: widths[c], withPad: " ", startingAt: 0)
                : String(repeating: " ", count: widths[c] - v.count) + v }.joined(separator: "  ")
        }
        out.insert(out[0].map { _ in "-" }.joined(), at: 1)
        return out.joined(separator: "\n")
    }

    /// The report as a JSON-ready dictionary.
    public func asDictionary(k: Int) -> [String: Any] {
        [
            "split": "cold-items", "k": k, "held_out_tracks": heldOutTracks, "train_tracks": trainTracks,
            "users": users, "held_out_pairs": heldOutPairs, "warm_tracks": warmTracks, "notes": notes,
            "rows": rows.map { r -> [String: Any] in
                [
                    "space": r.space, "tracks_predicted": r.tracksPredicted, "auc": r.auc,
                    "precision@\(k)": r.metrics.precision, "recall@\(k)": r.metrics.recall,
                    "ndcg@\(k)": r.metrics.ndcg, "hit_rate@\(k)": r.metrics.hitRate, "users": r.metrics.usersEvaluated,
                ]
            },
            "sources": sources.map { s -> [String: Any] in
                var d: [String: Any] = [
                    "name": s.name, "weight": Double(s.weight), "fit_tracks": s.fitTracks,
                    "validation_tracks": s.validationTracks,
                ]
                if let v = s.lambda { d["lambda"] = Double(v) }
                if let v = s.relativeLambda { d["relative_lambda"] = Double(v) }
                if let v = s.validationError { d["validation_error"] = v }
                if let v = s.meanVectorError { d["mean_vector_error"] = v }
                if let v = s.note { d["note"] = v }
                return d
            },
        ]
    }

    private func fmt(_ v: Double) -> String { String(format: "%.4f", v) }
}

/// The cold-items evaluation: how well tracks no one has played are placed by their content.
///
/// A share of the tracks is held out entirely (every play of them leaves the training log). ALS is fitted on the
/// rest; a ``ColdStartModel`` learns, on the trained tracks, to predict CF vectors from content (text vectors from
/// the documents, tracks inheriting their artist's; audio embeddings; the artist prior); the held-out tracks get
/// predicted vectors. Each user with a training play and a held-out play ranks the held-out tracks by
/// `user vector · predicted vector`, and the tracks the user really played are the relevant ones. One row per source
/// alone (a model fitted with that source only), one for all together (`hybrid`) and a seeded random ranking.
///
/// A held-out track without a prediction from a row's sources is scored with the warm tracks' mean vector (the
/// prediction knowing nothing), tied with every other such track; ties are broken by a seeded random order for the
/// top-k metrics and count one half in AUC. AUC is the full one over the held-out tracks (Mann-Whitney), not
/// implicit's truncated AUC; precision, recall, NDCG and hit rate are ``RankingMetrics``' over the held-out tracks.
/// Sequence vectors cannot apply here: a held-out track is in no training session.
public enum ColdItemsEvaluation {
    /// Runs the evaluation.
    /// - Parameters:
    ///   - log: the play log.
    ///   - texts: documents keyed by track or artist id (`texts.tsv`), or `nil`.
    ///   - trackArtists: each track's artist id (`tracks.tsv`), or `nil`.
    ///   - content: precomputed spaces keyed by track id (audio embeddings).
    ///   - options: the options.
    ///   - progress: called with a stage name as each starts.
    /// - Throws: ``EvaluationError`` naming the parameter, the input or the stage that failed.
    public static func run(
        log: Interactions, texts: TextCorpus?, trackArtists: [(track: String, artist: String)]?,
        content: [ColdItemsContent], options: ColdItemsOptions, progress: ((String) -> Void)? = nil
    ) throws(EvaluationError) -> ColdItemsReport {
        guard options.testFraction > 0, options.testFraction < 1, options.testFraction.isFinite else {
            throw .invalidParameter(name: "test-fraction", value: "\(options.testFraction)", expected: "a value in (0, 1)")
        }
        guard options.k >= 1 else { throw .invalidParameter(name: "k", value: "\(options.k)", expected: "an integer >= 1") }
        let n = log.itemIDs.count
        guard n >= 2, log.count > 0 else {
            throw .inconsistentLog("the cold-items split needs at least 2 tracks; the log has \(n) tracks and \(log.count) rows")
        }
        // Hold out tracks (partial Fisher-Yates).
        let heldCount = min(n - 1, max(1, Int((options.testFraction * Double(n)).rounded())))
        var order = Array(0..<n)
        var rng = SplitMix64(seed: options.seed)
        for i in 0..<heldCount { order.swapAt(i, i + Int(rng.next() % UInt64(n - i))) }
        let held = order[0..<heldCount].sorted()
        var heldLocal = [Int](repeating: -1, count: n)
        for (j, t) in held.enumerated() { heldLocal[t] = j }

        // Training log over the kept tracks only, so ALS never sees the held-out columns.
        progress?("fit")
        var keptIndex = [Int32](repeating: -1, count: n)
        var keptIDs: [String] = []
        for t in 0..<n where heldLocal[t] < 0 { keptIndex[t] = Int32(keptIDs.count); keptIDs.append(log.itemIDs.ids[t]) }
        var tu: [Int32] = [], ti: [Int32] = [], tw: [Float] = []
        var testPairs: [(user: Int32, item: Int32)] = []
        for r in 0..<log.count {
            let t = Int(log.items[r])
            if heldLocal[t] >= 0 {
                testPairs.append((log.users[r], Int32(heldLocal[t])))
            } else {
                tu.append(log.users[r]); ti.append(keptIndex[t]); tw.append(log.weights[r])
            }
        }
        let trainMatrix: CSRMatrix
        do {
            trainMatrix = try CSRMatrix(rows: log.userIDs.count, cols: keptIDs.count, rowIndices: tu, colIndices: ti, values: tw)
        } catch { throw .inconsistentLog("cannot build the training matrix: \(error)") }
        var als = ImplicitALS(parameters: options.als)
        do { try als.fit(options.weighting.apply(toUserItems: trainMatrix)) } catch {
            throw .failed(stage: "ALS fit", reason: "\(error)")
        }
        let f = als.itemFactors.cols
        // The catalogue in the log's item order: learned vectors of kept tracks, zero rows for held-out ones.
        var learned = Matrix(rows: n, cols: f)
        var listeners = [Int](repeating: 0, count: n)
        let keptListeners = ColdStartModel.listeners(userItems: trainMatrix)
        for t in 0..<n where keptIndex[t] >= 0 {
            learned.setRow(t, als.itemFactors.row(Int(keptIndex[t])))
            listeners[t] = keptListeners[Int(keptIndex[t])]
        }

        // Artists and content spaces aligned to the log's tracks.
        var artists: [Int32]?
        var notes: [String] = []
        if let trackArtists {
            var artistIDs = IDMap()
            var a = [Int32](repeating: -1, count: n)
            for (track, artist) in trackArtists {
                if let t = log.itemIDs.index(of: track) { a[Int(t)] = artistIDs.intern(artist) }
            }
            let known = a.filter { $0 >= 0 }.count
            if known == 0 {
                throw .contentMismatch(source: "track artists", reason: "none of its \(trackArtists.count) tracks is in the play log")
            }
            artists = a
        }
        var spaces: [ContentSpace] = []
        if let texts {
            progress?("text")
            let result: TextVectorsResult
            do {
                result = try TextVectorsResult.fit(
                    texts, options: options.text, trackArtists: trackArtists,
                    threads: options.threads == 0 ? Parallel.coreCount : options.threads)
            } catch { throw .failed(stage: "text vectors", reason: "\(error)") }
            let space = try align(name: "text", source: "the texts", ids: result.vectors.ids, vectors: result.vectors.vectors, to: log.itemIDs)
            spaces.append(space)
            let inherited = zip(result.vectors.ids, result.vectors.inherited).filter { $1 && log.itemIDs.index(of: $0) != nil }.count
            notes.append("text: \(space.presentCount) of \(n) tracks have a vector (\(inherited) inherited from their artist)")
        }
        for c in content {
            let space = try align(name: c.name, source: c.source, ids: c.ids, vectors: c.vectors, to: log.itemIDs)
            spaces.append(space)
            notes.append("\(c.name): \(space.presentCount) of \(n) tracks have a vector")
        }
        notes.append("sequence: does not apply (a held-out track is in no training session, so it has no sequence vector)")

        // Users: a training play and a held-out play.
        var testRows: [Int32: [Int32]] = [:]
        for (u, j) in testPairs where trainMatrix.count(ofRow: Int(u)) > 0 { testRows[u, default: []].append(j) }
        let users = testRows.keys.sorted()
        guard !users.isEmpty else { throw .noTestUsers }
        var rIdx: [Int32] = [], cIdx: [Int32] = []
        for (row, u) in users.enumerated() {
            for j in Set(testRows[u]!) { rIdx.append(Int32(row)); cIdx.append(j) }
        }
        let test: CSRMatrix
        do {
            test = try CSRMatrix(rows: users.count, cols: heldCount, rowIndices: rIdx, colIndices: cIdx,
                                 values: [Float](repeating: 1, count: rIdx.count))
        } catch { throw .inconsistentLog("cannot build the held-out matrix: \(error)") }
        var userVectors = Matrix(rows: users.count, cols: f)
        for (row, u) in users.enumerated() { userVectors.setRow(row, als.userFactors.row(Int(u))) }

        // The models: each source alone, then all together.
        progress?("cold-start")
        var variants: [(name: String, spaces: [ContentSpace], artist: Bool)] = []
        if artists != nil { variants.append(("artist", [], true)) }
        for s in spaces { variants.append((s.name, [s], false)) }
        guard !variants.isEmpty else {
            throw .invalidParameter(
                name: "content", value: "none", expected: "texts, audio embeddings or track artists to predict from")
        }
        variants.append(("hybrid", spaces, artists != nil))
        let tieOrder = randomOrder(heldCount, seed: options.seed &+ 1)
        var rows: [ColdItemsRow] = []
        progress?("score")
        rows.append(try score(
            name: "random", users: userVectors, items: nil, predicted: 0, test: test, k: options.k, tieOrder: tieOrder,
            seed: options.seed))
        var hybridSources: [ColdStartSource] = []
        var warm = 0
        for v in variants {
            var coldOptions = options.coldStart
            coldOptions.artistPrior = v.artist
            let model: ColdStartModel
            let prediction: ColdStartPrediction
            do {
                model = try ColdStartModel.fit(
                    itemFactors: learned, listeners: listeners, artists: v.artist ? artists : nil, spaces: v.spaces,
                    options: coldOptions)
                prediction = try model.predict(artists: v.artist ? artists : nil, spaces: v.spaces)
            } catch { throw .failed(stage: "cold-start model (\(v.name))", reason: "\(error)") }
            if v.name == "hybrid" { hybridSources = model.sourceReports; warm = model.warmTracks }
            var items = Matrix(rows: heldCount, cols: f)
            var predicted = 0
            for (j, t) in held.enumerated() {
                if prediction.hasPrediction(t) {
                    items.setRow(j, prediction.vectors.row(t)); predicted += 1
                } else {
                    items.setRow(j, model.mean)
                }
            }
            rows.append(try score(
                name: v.name, users: userVectors, items: items, predicted: predicted, test: test, k: options.k,
                tieOrder: tieOrder, seed: options.seed))
        }
        return ColdItemsReport(
            rows: rows, heldOutTracks: heldCount, trainTracks: n - heldCount, users: users.count, heldOutPairs: test.nnz,
            sources: hybridSources, warmTracks: warm, notes: notes)
    }

    static func align(name: String, source: String, ids: [String], vectors: Matrix, to itemIDs: IDMap) throws(EvaluationError) -> ContentSpace {
        let space: ContentSpace
        do { space = try ContentSpace.aligning(name: name, ids: ids, vectors: vectors, to: itemIDs) } catch {
            throw .contentMismatch(source: source, reason: "\(error)")
        }
        guard space.presentCount > 0 else {
            let example = ids.prefix(3).map { "'\($0)'" }.joined(separator: ", ")
            throw .contentMismatch(
                source: source,
                reason: "none of its \(ids.count) ids (\(example)\(ids.count > 3 ? ", ..." : "")) is a track of the play log")
        }
        return space
    }

    /// A seeded random permutation rank of `n` items (lower ranks first among ties).
    static func randomOrder(_ n: Int, seed: UInt64) -> [Int32] {
        var perm = Array(0..<n)
        var rng = SplitMix64(seed: seed)
        if n > 1 { for i in 0..<(n - 1) { perm.swapAt(i, i + Int(rng.next() % UInt64(n - i))) } }
        var rank = [Int32](repeating: 0, count: n)
        for (r, i) in perm.enumerated() { rank[i] = Int32(r) }
        return rank
    }

    /// Scores every user's ranking of the held-out tracks: `users · itemsᵀ` (or seeded random scores when `items`
    /// is `nil`), in blocks of users.
    static func score(
        name: String, users: Matrix, items: Matrix?, predicted: Int, test: CSRMatrix, k: Int, tieOrder: [Int32],
        seed: UInt64
    ) throws(EvaluationError) -> ColdItemsRow {
        let m = test.cols, f = users.cols, block = 512
        var lists = [[Int32]](repeating: [], count: users.rows)
        var aucSum = 0.0, aucUsers = 0
        var scores = [Float](repeating: 0, count: block * m)
        var start = 0
        while start < users.rows {
            let count = min(block, users.rows - start)
            if let items {
                users.storage.withUnsafeBufferPointer { u in
                    items.storage.withUnsafeBufferPointer { v in
                        scores.withUnsafeMutableBufferPointer { s in
                            BLAS.gemmABt(u.baseAddress! + start * f, v.baseAddress!, s.baseAddress!, m: count, n: m, k: f)
                        }
                    }
                }
            } else {
                for r in 0..<count {
                    var rng = SplitMix64(seed: seed ^ (UInt64(start + r) &* 0x9E37_79B9_7F4A_7C15))
                    for j in 0..<m { scores[r * m + j] = rng.nextFloat() }
                }
            }
            for r in 0..<count {
                let u = start + r
                let row = Array(scores[(r * m)..<((r + 1) * m)])
                let relevant = test.columns(ofRow: u)
                if let auc = fullAUC(row, relevant: relevant) { aucSum += auc; aucUsers += 1 }
                let order = (0..<m).sorted { a, b in
                    row[a] != row[b] ? row[a] > row[b] : tieOrder[a] < tieOrder[b]
                }
                lists[u] = order.prefix(k).map { Int32($0) }
            }
            start += count
        }
        let metrics = try RankingMetrics.evaluate(
            users: (0..<users.rows).map { Int32($0) }, recommendations: lists, test: test, k: k, itemCount: m)
        return ColdItemsRow(space: name, tracksPredicted: predicted, auc: aucUsers > 0 ? aucSum / Double(aucUsers) : 0.5, metrics: metrics)
    }

    /// The AUC of `scores` for the relevant items against all others (Mann-Whitney, ties one half); `nil` when every
    /// item is relevant.
    static func fullAUC(_ scores: [Float], relevant: ArraySlice<Int32>) -> Double? {
        let m = scores.count, p = relevant.count
        guard p > 0, p < m else { return nil }
        var isRelevant = [Bool](repeating: false, count: m)
        for j in relevant { isRelevant[Int(j)] = true }
        let order = (0..<m).sorted { scores[$0] < scores[$1] }
        var rankSum = 0.0
        var i = 0
        while i < m {
            var j = i
            while j + 1 < m && scores[order[j + 1]] == scores[order[i]] { j += 1 }
            let midrank = Double(i + j) / 2 + 1
            for q in i...j where isRelevant[order[q]] { rankSum += midrank }
            i = j + 1
        }
        let pd = Double(p)
        return (rankSum - pd * (pd + 1) / 2) / (pd * Double(m - p))
    }
}
