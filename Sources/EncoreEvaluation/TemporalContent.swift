import EncoreCore
import EncoreData
import EncoreFactorization
import EncoreHybrid
import EncorePlaylists
import EncoreText

/// One way of giving Discover Weekly content in the temporal evaluation: the content spaces and whether the artist
/// prior feed its cold-start model.
public struct TemporalContentVariant: Sendable, Equatable, Codable {
    /// The row's name: `cf-only`, `+artist`, `+audio`, `+text`, `+sequence`, `+<space>`, `all`.
    public var name: String
    /// The content spaces of the cold-start model (by name); `audio` also adds the `similar-audio` source.
    public var spaces: [String]
    /// Whether the artist prior is a source of the cold-start model.
    public var artistPrior: Bool
    /// Whether the cold-start model is fitted (the `new-for-you` source); `false` keeps only `similar-audio`, as the
    /// weekly job does without its hybrid stage.
    public var coldStart: Bool

    /// A variant from its parts.
    public init(name: String, spaces: [String], artistPrior: Bool, coldStart: Bool = true) {
        self.name = name
        self.spaces = spaces
        self.artistPrior = artistPrior
        self.coldStart = coldStart
    }

    /// Whether the variant gives Discover Weekly any content.
    public var usesContent: Bool { !spaces.isEmpty || artistPrior }

    /// Discover Weekly without content: the standard sources over the collaborative space only.
    public static let cfOnly = TemporalContentVariant(name: "cf-only", spaces: [], artistPrior: false)

    /// The ablation over the given spaces: `cf-only`, `+artist` (with artists), one `+<space>` row per space alone,
    /// and `all` (every space and the artist prior, as the weekly job uses them).
    public static func ablation(spaces: [String], artists: Bool) -> [TemporalContentVariant] {
        var out = [cfOnly]
        if artists { out.append(TemporalContentVariant(name: "+artist", spaces: [], artistPrior: true)) }
        for s in spaces { out.append(TemporalContentVariant(name: "+\(s)", spaces: [s], artistPrior: false)) }
        if !spaces.isEmpty || artists { out.append(TemporalContentVariant(name: "all", spaces: spaces, artistPrior: artists)) }
        return out
    }
}

/// One row of the temporal evaluation with content: Discover Weekly made with one ``TemporalContentVariant``.
public struct TemporalContentRow: Sendable, Equatable, Codable {
    /// The variant's name.
    public var variant: String
    /// The overall hit rate (the same measure as ``PlaylistEvaluation/discoverWeeklyHitRates(builder:histories:test:users:threads:)``).
    public var overall: WeeklyHitRate
    /// Hits on new releases: places holding a track with no training play that the user first played in the week.
    public var newReleaseHits: Int
    /// New-release hits over `users x listLength` (the unit of the overall share).
    public var newReleaseHitRate: Double
    /// New-release hits over the new-release test pairs (the share of them found).
    public var newReleaseRecall: Double
    /// The share of the places given to tracks with no training play.
    public var newTrackSlots: Double
    /// The share of the places holding a track suggested by the `new-for-you` source.
    public var newForYouSlots: Double
    /// The sources that suggested the tracks with no training play in the lists: places per source name (a track
    /// suggested by several sources counts for each).
    public var newTrackSources: [String: Int]
    /// Places per source name over every list (a track suggested by several sources counts for each).
    public var sourceSlots: [String: Int]
    /// Of those places, the ones holding a track the user first played in the test week (hits), per source name.
    public var sourceHits: [String: Int]
    /// The tracks the `new-for-you` source could propose (few listeners and a hybrid vector); 0 without one.
    public var coldTracks: Int
    /// The new-release tracks (no training play) that have a hybrid vector.
    public var newReleasesWithVector: Int
    /// The cold-start model's weight of each source (`nil` without a model).
    public var weights: [String: Float]?
    /// Why the variant has no hybrid space, when it has none.
    public var note: String?
}

/// The result of ``PlaylistEvaluation/temporalContent(plays:weighting:feedback:catalog:content:options:progress:)``.
public struct TemporalContentReport: Sendable {
    /// The test week.
    public var week: String
    /// Discover Weekly's length.
    public var listLength: Int
    /// The users evaluated.
    public var users: Int
    /// Their test pairs (first listened to in the week).
    public var testPairs: Int
    /// Tracks of those pairs with no training play (new releases), and their pairs.
    public var newReleaseTracks: Int, newReleasePairs: Int
    /// New-release pairs whose track is released by the week's Monday (a Monday playlist can hold no later track).
    public var newReleasePairsReleased: Int
    /// One row per variant, in the order asked.
    public var rows: [TemporalContentRow]
    /// The most popular tracks and plain ALS top lists on the same users (``WeeklyHitRates``' baselines).
    public var popularity: WeeklyHitRate, alsTop: WeeklyHitRate
    /// Coverage of each content space, spaces left out, and why.
    public var notes: [String]

    /// The row of `variant`, if any.
    public func row(_ variant: String) -> TemporalContentRow? { rows.first { $0.variant == variant } }

    /// A plain-text table, one row per variant.
    public func table() -> String {
        let k = listLength
        let header = ["variant", "hit_rate@\(k)", "users_with_hit", "new_release_hits", "new_release_hit_rate@\(k)",
                      "new_release_recall", "new_track_slots", "new_for_you_slots"]
        var lines = [header]
        for r in rows {
            lines.append([
                r.variant, fmt(r.overall.share), fmt(r.overall.usersWithHit), "\(r.newReleaseHits)", fmt(r.newReleaseHitRate),
                fmt(r.newReleaseRecall), fmt(r.newTrackSlots), fmt(r.newForYouSlots),
            ])
        }
        for b in [popularity, alsTop] {
            lines.append([b.method, fmt(b.share), fmt(b.usersWithHit), "-", "-", "-", "-", "-"])
        }
        let widths = header.indices.map { c in lines.map { $0[c].count }.max() ?? 0 }
        var out = lines.map { row in
            row.enumerated().map { c, v in c == 0 ? v.padding(toLength: widths[c], withPad: " ", startingAt: 0)
                : String(repeating: " ", count: widths[c] - v.count) + v }.joined(separator: "  ")
        }
        out.insert(String(repeating: "-", count: out[0].count), at: 1)
        return out.joined(separator: "\n")
    }

    /// A plain-text table of the places each source filled and the hits among them: one line per source name, one
    /// `hits/places` column per variant (a track suggested by several sources counts for each).
    public func sourceTable() -> String {
        var names: [String] = []
        for r in rows { for s in r.sourceSlots.keys.sorted() where !names.contains(s) { names.append(s) } }
        var lines = [["source"] + rows.map(\.variant)]
        for s in names {
            lines.append([s] + rows.map { r in r.sourceSlots[s].map { "\(r.sourceHits[s] ?? 0)/\($0)" } ?? "-" })
        }
        let widths = lines[0].indices.map { c in lines.map { $0[c].count }.max() ?? 0 }
        var out = lines.map { row in
            row.enumerated().map { c, v in c == 0 ? v.padding(toLength: widths[c], withPad: " ", startingAt: 0)
                : String(repeating: " ", count: widths[c] - v.count) + v }.joined(separator: "  ")
        }
        out.insert(String(repeating: "-", count: out[0].count), at: 1)
        return out.joined(separator: "\n")
    }

    /// The report as a JSON-ready dictionary.
    public func asDictionary() -> [String: Any] {
        let k = listLength
        return [
            "split": "temporal-content", "week": week, "list_length": k, "users": users, "test_pairs": testPairs,
            "new_release_tracks": newReleaseTracks, "new_release_pairs": newReleasePairs,
            "new_release_pairs_released": newReleasePairsReleased, "notes": notes,
            "baselines": [popularity, alsTop].map { b -> [String: Any] in
                ["method": b.method, "hit_rate@\(k)": b.share, "users_with_hit": b.usersWithHit, "hits": b.hits]
            },
            "rows": rows.map { r -> [String: Any] in
                var d: [String: Any] = [
                    "variant": r.variant, "hit_rate@\(k)": r.overall.share, "users_with_hit": r.overall.usersWithHit,
                    "hits": r.overall.hits, "mean_length": r.overall.meanLength, "new_release_hits": r.newReleaseHits,
                    "new_release_hit_rate@\(k)": r.newReleaseHitRate, "new_release_recall": r.newReleaseRecall,
                    "new_track_slots": r.newTrackSlots, "new_for_you_slots": r.newForYouSlots,
                    "cold_tracks": r.coldTracks, "new_releases_with_vector": r.newReleasesWithVector,
                    "new_track_sources": r.newTrackSources, "source_slots": r.sourceSlots, "source_hits": r.sourceHits,
                ]
                if let w = r.weights { d["weights"] = w.mapValues { Double($0) } }
                if let n = r.note { d["note"] = n }
                return d
            },
        ]
    }

    private func fmt(_ v: Double) -> String { String(format: "%.4f", v) }
}

/// The content the temporal evaluation may give Discover Weekly.
public struct TemporalContentInputs: Sendable {
    /// Documents about tracks and artists (`texts.tsv`): text vectors are fitted from them (catalogue text, so the
    /// test week's plays never enter), tracks without text inheriting their artist's.
    public var texts: TextCorpus?
    /// Vectors made elsewhere, keyed by track id (audio embeddings from `embed`, or text vectors already made).
    public var spaces: [ColdItemsContent]
    /// Whether sequence vectors are fitted, from the listening sessions before the test week only.
    public var sequenceVectors: Bool

    /// Inputs from their parts.
    public init(texts: TextCorpus? = nil, spaces: [ColdItemsContent] = [], sequenceVectors: Bool = true) {
        self.texts = texts
        self.spaces = spaces
        self.sequenceVectors = sequenceVectors
    }
}

/// The options of the temporal evaluation with content; the content defaults are the weekly job's.
public struct TemporalContentOptions: Sendable {
    /// The ALS fitted on the weeks before the test week.
    public var als: ALSParameters
    /// How plays become confidences.
    public var confidence: ConfidenceWeighting
    /// The cold-start model and evidence blend.
    public var coldStart: ColdStartOptions
    /// A track is a `new-for-you` candidate with at most this many listeners before the week.
    public var coldMaxListeners: Int
    /// A track is also a `new-for-you` candidate when released within this many days before the week (0: none).
    public var newReleaseDays: Int
    /// The share of Discover Weekly reserved for new tracks.
    public var newTrackShare: Float
    /// The LSA options of the text vectors.
    public var text: LSAOptions
    /// The skip-gram options of the sequence vectors.
    public var sequence: SkipGramOptions
    /// Sessions split where two listens of a user are further apart than this many seconds.
    public var sessionGapSeconds: Int64
    /// The test week; `nil`: the last whole week of the log.
    public var testWeek: PlaylistDate?
    /// Discover Weekly's length; `nil`: the standard configuration's (30).
    public var listLength: Int?
    /// Evaluate a seeded sample of this many users (all when `nil`).
    public var sampleUsers: Int?
    /// The seed of the user sample.
    public var sampleSeed: UInt64
    /// The variants; `nil`: ``TemporalContentVariant/ablation(spaces:artists:)`` over the spaces available.
    public var variants: [TemporalContentVariant]?
    /// Worker threads (0: every core).
    public var threads: Int

    /// Options with their defaults unless given.
    public init(
        als: ALSParameters = ALSParameters(), confidence: ConfidenceWeighting = .bm25Default,
        coldStart: ColdStartOptions = ColdStartOptions(), coldMaxListeners: Int = 0, newReleaseDays: Int = 14, newTrackShare: Float = 0.2,
        text: LSAOptions = LSAOptions(), sequence: SkipGramOptions = SkipGramOptions(), sessionGapSeconds: Int64 = 1800,
        testWeek: PlaylistDate? = nil, listLength: Int? = nil, sampleUsers: Int? = nil, sampleSeed: UInt64 = 0,
        variants: [TemporalContentVariant]? = nil, threads: Int = 0
    ) {
        self.als = als
        self.confidence = confidence
        self.coldStart = coldStart
        self.coldMaxListeners = coldMaxListeners
        self.newReleaseDays = newReleaseDays
        self.newTrackShare = newTrackShare
        self.text = text
        self.sequence = sequence
        self.sessionGapSeconds = sessionGapSeconds
        self.testWeek = testWeek
        self.listLength = listLength
        self.sampleUsers = sampleUsers
        self.sampleSeed = sampleSeed
        self.variants = variants
        self.threads = threads
    }
}

extension PlaylistEvaluation {
    /// The temporal split with content: Discover Weekly for the test week made the weekly job's way, with each
    /// variant's content, scored on the pairs first played in the week, overall and on the new releases (test
    /// tracks with no training play).
    ///
    /// 1. The split of ``weeklyTestSet(plays:weighting:feedback:testWeek:sampleUsers:sampleSeed:threads:)``; ALS on
    ///    the weeks before, the tracks with no training play given zero vectors (as the weekly job gives the
    ///    catalog's unplayed tracks), so no collaborative source can rank them.
    /// 2. Content without the test week: text vectors from the documents (catalogue text), sequence vectors from the
    ///    listening sessions before the week only, the given vectors (audio embeddings) aligned by track id.
    /// 3. Per variant, ``HybridSpace/fit(itemFactors:listeners:artists:spaces:options:)`` on the training listeners
    ///    and ``DiscoverWeekly/Content/weekly(audio:hybridItems:hybridVectors:histories:catalog:coldMaxListeners:newReleaseDays:referenceTime:newTrackShare:)``
    ///    (the weekly job's own calls), then the standard Discover Weekly with that content. Neighbors of the heavy
    ///    rotation in the collaborative space come from an HNSW index, as in the weekly job (built on `threads`
    ///    threads, so figures from a run on more than one thread may differ from another run's in the last digits).
    ///
    /// - Throws: ``EvaluationError`` naming the input or the stage that failed.
    public static func temporalContent(
        plays: Interactions, weighting: PlayWeighting = .counts, feedback: FeedbackLog = FeedbackLog(),
        catalog: TrackCatalog, content: TemporalContentInputs, options: TemporalContentOptions,
        progress: ((String) -> Void)? = nil
    ) throws(EvaluationError) -> TemporalContentReport {
        let n = plays.itemIDs.count
        guard catalog.itemCount == n else {
            throw .shapeMismatch("the catalog has \(catalog.itemCount) tracks, the play log \(n)")
        }
        if let k = options.listLength, k < 1 || k > 150 {
            throw .invalidParameter(name: "k", value: "\(k)", expected: "a Discover Weekly length in 1...150")
        }
        guard options.newReleaseDays >= 0 else {
            throw .invalidParameter(name: "newReleaseDays", value: "\(options.newReleaseDays)", expected: ">= 0 (0: no window)")
        }
        guard options.coldMaxListeners >= 0 else {
            throw .invalidParameter(name: "coldMaxListeners", value: "\(options.coldMaxListeners)", expected: ">= 0")
        }
        let threads = options.threads == 0 ? Parallel.coreCount : options.threads
        progress?("split")
        let set: WeeklyTestSet
        do {
            set = try weeklyTestSet(
                plays: plays, weighting: weighting, feedback: feedback, testWeek: options.testWeek,
                sampleUsers: options.sampleUsers, sampleSeed: options.sampleSeed, threads: threads)
        } catch { throw .failed(stage: "temporal split", reason: "\(error)") }
        guard !set.users.isEmpty else { throw .noTestUsers }

        progress?("fit")
        let userItems = options.confidence.apply(toUserItems: set.train)
        var model = ImplicitALS(parameters: options.als)
        do { try model.fit(userItems) } catch { throw .failed(stage: "ALS fit", reason: "\(error)") }
        let listeners = ColdStartModel.listeners(userItems: userItems)
        // A track with no training play has no collaborative vector: zero, as the weekly job gives the catalog's
        // unplayed tracks, not the solver's leftover (which would let the user-vector source rank it by noise).
        if listeners.contains(0) {
            var y = model.itemFactors
            for i in 0..<n where listeners[i] == 0 { for c in 0..<y.cols { y[i, c] = 0 } }
            do { model = try ImplicitALS(parameters: options.als, userFactors: model.userFactors, itemFactors: y) } catch {
                throw .failed(stage: "ALS fit", reason: "\(error)")
            }
        }

        // Content spaces, none of them seeing the test week's plays.
        var spaces: [ContentSpace] = []
        var notes: [String] = []
        let artists: [Int32]? = catalog.hasArtists ? catalog.trackArtist : nil
        if let texts = content.texts {
            progress?("text")
            var trackArtists: [(track: String, artist: String)] = []
            for i in 0..<n where catalog.artist(of: Int32(i)) >= 0 {
                trackArtists.append((plays.itemIDs.id(at: Int32(i)), catalog.artistIDs.id(at: catalog.artist(of: Int32(i)))))
            }
            let result: TextVectorsResult
            do {
                result = try TextVectorsResult.fit(
                    texts, options: options.text, trackArtists: trackArtists.isEmpty ? nil : trackArtists, threads: threads)
            } catch { throw .failed(stage: "text vectors", reason: "\(error)") }
            let space = try ColdItemsEvaluation.align(
                name: "text", source: "the texts", ids: result.vectors.ids, vectors: result.vectors.vectors, to: plays.itemIDs)
            spaces.append(space)
            notes.append("text: \(space.presentCount) of \(n) tracks have a vector (fitted from \(texts.count) documents)")
        }
        for c in content.spaces {
            guard !spaces.contains(where: { $0.name == c.name }) else {
                throw .invalidParameter(name: "content", value: c.name, expected: "one space of each name")
            }
            let space = try ColdItemsEvaluation.align(name: c.name, source: c.source, ids: c.ids, vectors: c.vectors, to: plays.itemIDs)
            spaces.append(space)
            notes.append("\(c.name): \(space.presentCount) of \(n) tracks have a vector (\(c.source))")
        }
        var leftOut: Set<String> = []
        if content.sequenceVectors {
            progress?("sequence")
            switch try trainingSequenceSpace(plays: plays, weighting: weighting, before: set.week.timestamp, options: options, threads: threads) {
            case .success(let space):
                spaces.append(space)
                notes.append("sequence: \(space.presentCount) of \(n) tracks have a vector (sessions before the week)")
            case .failure(let error):
                // As in the weekly job: too little listening for sequence vectors leaves them out.
                notes.append("sequence: not fitted, left out (\(error))")
                leftOut.insert("sequence")
            }
        }
        // Content goes audio, text, sequence, then any other space, as the weekly job orders them.
        let order = ["audio", "text", "sequence"]
        spaces.sort { (order.firstIndex(of: $0.name) ?? order.count) < (order.firstIndex(of: $1.name) ?? order.count) }
        var variants = options.variants ?? TemporalContentVariant.ablation(spaces: spaces.map(\.name), artists: artists != nil)
        // A space asked for but not fitted (too little listening for sequence vectors) is left out of every variant.
        for k in variants.indices { variants[k].spaces.removeAll { leftOut.contains($0) } }
        for v in variants {
            for s in v.spaces where !spaces.contains(where: { $0.name == s }) {
                throw .invalidParameter(
                    name: "variant \(v.name)", value: s,
                    expected: "a content space given (\(spaces.map(\.name).joined(separator: ", ")))")
            }
        }

        // The test pairs of the evaluated users, and which are new releases.
        let newRelease = listeners.map { $0 == 0 }
        var testPairs = 0, newPairs = 0, newPairsReleased = 0
        var newTracks = Set<Int32>()
        for u in set.users {
            for i in set.test.columns(ofRow: Int(u)) {
                testPairs += 1
                guard newRelease[Int(i)] else { continue }
                newPairs += 1
                newTracks.insert(i)
                let r = catalog.release(of: i)
                if r == TrackCatalog.unknownTime || r <= set.week.timestamp { newPairsReleased += 1 }
            }
        }

        let environment: PlaylistEnvironment
        do {
            environment = try PlaylistEnvironment(
                catalog: catalog, space: try ItemSpace.collaborative(model, userItems: set.train).indexed(threads: threads),
                model: model)
        } catch { throw .failed(stage: "item space", reason: "\(error)") }
        var rows: [TemporalContentRow] = []
        var baselines: (WeeklyHitRate, WeeklyHitRate)?
        var size = options.listLength ?? 30
        for v in variants {
            progress?("discover-weekly \(v.name)")
            var row = TemporalContentRow(
                variant: v.name, overall: WeeklyHitRate(method: v.name, share: 0, usersWithHit: 0, meanLength: 0, hits: 0),
                newReleaseHits: 0, newReleaseHitRate: 0, newReleaseRecall: 0, newTrackSlots: 0, newForYouSlots: 0,
                newTrackSources: [:], sourceSlots: [:], sourceHits: [:], coldTracks: 0, newReleasesWithVector: 0, weights: nil, note: nil)
            var dwContent: DiscoverWeekly.Content?
            if v.usesContent {
                let used = spaces.filter { v.spaces.contains($0.name) }
                var hybrid: HybridSpace?
                if !v.coldStart {
                    row.note = "no cold-start model"
                } else if v.artistPrior && artists == nil {
                    row.note = "no artists in the catalog"
                } else {
                    var cold = options.coldStart
                    cold.artistPrior = v.artistPrior
                    do {
                        hybrid = try HybridSpace.fit(
                            itemFactors: model.itemFactors, listeners: listeners, artists: v.artistPrior ? artists : nil,
                            spaces: used, options: cold)
                    } catch {
                        // As in the weekly job: no hybrid space, the rest of the content still stands.
                        row.note = "no hybrid space: \(error)"
                    }
                }
                if let hybrid {
                    row.weights = Dictionary(uniqueKeysWithValues: zip(hybrid.model.sourceNames, hybrid.model.weights))
                    row.newReleasesWithVector = newTracks.filter { hybrid.blended.provenance[Int($0)].kind != .none }.count
                }
                let audio = used.first { $0.name == "audio" }?.vectors
                do {
                    // New tracks compete for places on the scale of warm tracks' learned and predicted scores.
                    var calibration: NewTrackCalibration?
                    if let h = hybrid, !h.referenceTracks.isEmpty {
                        calibration = try NewTrackCalibration.reference(
                            learned: model.itemFactors, predicted: h.predicted.vectors, items: h.referenceTracks,
                            seed: options.coldStart.seed)
                    }
                    dwContent = try DiscoverWeekly.Content.weekly(
                        audio: audio, hybridItems: hybrid?.items ?? [], hybridVectors: hybrid?.blended.vectors,
                        histories: set.histories, catalog: catalog, coldMaxListeners: options.coldMaxListeners,
                        newReleaseDays: options.newReleaseDays, referenceTime: set.week.timestamp,
                        newTrackShare: options.newTrackShare, calibration: calibration)
                } catch { throw .failed(stage: "Discover Weekly content (\(v.name))", reason: "\(error)") }
                row.coldTracks = dwContent?.coldItems.map { c in (0..<Int32(n)).filter { c.contains($0) }.count } ?? 0
            }
            let lists: [(items: [Int32], sources: [[String]])]
            do throws(PlaylistError) {
                var config = try DiscoverWeekly.Configuration.standard(
                    histories: set.histories, model: model, catalog: catalog.hasArtists ? catalog : nil, content: dwContent)
                if let k = options.listLength { config.size = k }
                size = config.size
                let builder = try DiscoverWeekly(environment: environment, configuration: config, week: set.week)
                lists = try PlaylistBatch.run(set.users, threads: threads, progress: nil) {
                    (u: Int32) throws(PlaylistError) -> (items: [Int32], sources: [[String]]) in
                    let p = try builder.build(for: try set.histories.history(of: u))
                    return (p.items, p.tracks.map { p.sources(of: $0) })
                }
                if baselines == nil {
                    let b = try baselineLists(set: set, model: model, size: config.size, threads: threads)
                    baselines = (
                        hitRate(method: "popularity", lists: b.map(\.popularity), users: set.users, test: set.test, size: config.size),
                        hitRate(method: "als-top", lists: b.map(\.als), users: set.users, test: set.test, size: config.size))
                }
                row.overall = hitRate(method: v.name, lists: lists.map(\.items), users: set.users, test: set.test, size: config.size)
                var newHits = 0, newSlots = 0, forYou = 0
                for (k, u) in set.users.enumerated() {
                    let test = set.test.columns(ofRow: Int(u))
                    for (i, sources) in zip(lists[k].items, lists[k].sources) {
                        if sources.contains("new-for-you") { forYou += 1 }
                        let hit = UserHistory.search(test, i) != nil
                        for s in sources {
                            row.sourceSlots[s, default: 0] += 1
                            if hit { row.sourceHits[s, default: 0] += 1 }
                        }
                        guard newRelease[Int(i)] else { continue }
                        newSlots += 1
                        for s in sources { row.newTrackSources[s, default: 0] += 1 }
                        if hit { newHits += 1 }
                    }
                }
                let places = Double(set.users.count * config.size)
                row.newReleaseHits = newHits
                row.newReleaseHitRate = Double(newHits) / places
                row.newReleaseRecall = newPairs > 0 ? Double(newHits) / Double(newPairs) : 0
                row.newTrackSlots = Double(newSlots) / places
                row.newForYouSlots = Double(forYou) / places
            } catch { throw .failed(stage: "Discover Weekly (\(v.name))", reason: "\(error)") }
            rows.append(row)
        }
        let empty = WeeklyHitRate(method: "", share: 0, usersWithHit: 0, meanLength: 0, hits: 0)
        return TemporalContentReport(
            week: set.week.description, listLength: size, users: set.users.count, testPairs: testPairs,
            newReleaseTracks: newTracks.count, newReleasePairs: newPairs, newReleasePairsReleased: newPairsReleased,
            rows: rows, popularity: baselines?.0 ?? empty, alsTop: baselines?.1 ?? empty, notes: notes)
    }

    /// Sequence vectors from the listens before `before` only, aligned to the log's items; the skip-gram's error when
    /// the sessions cannot make any (no session of two listens, no track listened often enough).
    static func trainingSequenceSpace(
        plays: Interactions, weighting: PlayWeighting, before: Int64, options: TemporalContentOptions, threads: Int
    ) throws(EvaluationError) -> Result<ContentSpace, TextError> {
        var rows: [Int] = []
        for t in 0..<plays.count where plays.timestamps[t] < before && weighting.listens(rowWeight: plays.weights[t]) > 0 {
            rows.append(t)
        }
        var sequenceOptions = options.sequence
        sequenceOptions.threads = threads
        let result: SequenceVectorsResult
        do {
            result = try SequenceVectorsResult.fit(
                log: plays.subset(rows), sessionGapSeconds: options.sessionGapSeconds, options: sequenceOptions)
        } catch { return .failure(error) }
        return .success(try ColdItemsEvaluation.align(
            name: "sequence", source: "the sequence vectors", ids: result.vectors.ids, vectors: result.vectors.vectors,
            to: plays.itemIDs))
    }
}
