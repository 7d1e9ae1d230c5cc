import Foundation
import EncoreCore
import EncoreFactorization
import EncoreIndex

/// Discover Weekly: once a week (a Monday), `size` (30) tracks each user has never played or skipped.
///
/// For each user:
/// 1. every configured ``CandidateSource`` proposes tracks (only tracks the rules allow: never played, not disliked
///    nor by a disliked artist, long enough, not flagged, already released);
/// 2. ``CandidateMerge`` merges them per track, keeping every source, into a relevance, then applies the
///    ``RelevancePrior``s (by default ``ReleaseExposure``: fresh releases first);
/// 3. a seeded perturbation (``Configuration/exploration``) lets the list vary between weeks: each relevance is
///    multiplied by `exp(τ · g)` with `g` a Gumbel variate drawn from the (user, week) seed and the item;
/// 4. maximal marginal relevance (``Diversifier``) picks `size` tracks from the best ``Configuration/poolSize`` under
///    the artist and album caps, then the rest of the candidates fill any gap;
/// 5. the new-track sources (``Configuration/newTrackSources``, by default `new-for-you`) are kept out of steps 2-4:
///    their candidates without a learned vector may take up to `round(newTrackShare · size)` places, each only
///    from the least relevant listed track, and only when its calibrated score beats that track's
///    (``Configuration/newTrackShare``, ``NewTrackCalibration``);
/// 6. ``FlowOrdering`` orders them (no two tracks of one artist side by side when avoidable).
///
/// The result depends only on the inputs: the (user, week) seed is a stable hash of the user's id and the week's date
/// (``StableSeed``), so a user gets the same playlist for a week from the same model and history, and another one the
/// next week. The builder is a value; ``build(for:userVector:)`` may run on any number of threads at once.
public struct DiscoverWeekly: Sendable {
    /// A candidate source with its weight in the merge and how many candidates it is asked for.
    public struct Source: Sendable {
        /// The source.
        public var source: any CandidateSource
        /// Its weight in the relevance (see ``CandidateMerge``).
        public var weight: Float
        /// The most candidates asked from it.
        public var limit: Int

        /// A weighted source.
        public init(_ source: any CandidateSource, weight: Float, limit: Int) {
            self.source = source
            self.weight = weight
            self.limit = limit
        }
    }

    /// How Discover Weekly is made.
    public struct Configuration: Sendable {
        /// Tracks per playlist.
        public var size: Int
        /// What may be suggested, and the caps per artist and album.
        public var rules: PlaylistRules
        /// The candidate sources, in the order their scores are recorded.
        public var sources: [Source]
        /// The weight of the model's score of each candidate in the relevance (`w_cf` of ``CandidateMerge``).
        public var userScoreWeight: Float
        /// Factors on every candidate's relevance after the merge.
        public var priors: [any RelevancePrior]
        /// Maximal marginal relevance.
        public var diversity: Diversifier
        /// The playing order.
        public var flow: FlowOrdering
        /// The temperature of the weekly perturbation of relevances (0: none).
        public var exploration: Float
        /// How many of the best candidates maximal marginal relevance chooses from.
        public var poolSize: Int
        /// Mixed into every seed (change it to reshuffle every user's playlists).
        public var salt: UInt64
        /// The most of the playlist, a share in `[0, 1]`, that candidates of the ``newTrackSources`` may take: a cap,
        /// not a reservation. The list is first made from the other sources; then each new track without a learned
        /// vector, best first, takes the place of the list's least relevant track if it beats that track's score
        /// (and the artist and album caps allow it), until `round(newTrackShare · size)` places are taken or a new
        /// track does not beat the track it would displace. Scores are on the scale of learned scores `x·ℓ`: a new
        /// track's predicted score `x·ŷ` becomes the learned score expected of it (``newTrackCalibration``; without
        /// one, `x·ŷ` itself). 0: the new-track sources place nothing.
        public var newTrackShare: Float
        /// The sources whose candidates count as new tracks for ``newTrackShare``; their scores must be the user
        /// vector against predicted vectors (as ``PredictedVectorCandidates``'), and they never enter the merge.
        public var newTrackSources: [String]
        /// The scale on which new tracks compete with the list's tracks for places, or `nil` for raw scores.
        public var newTrackCalibration: NewTrackCalibration?

        /// A configuration; the defaults are the ones measured in the tests.
        public init(
            sources: [Source], size: Int = 30, rules: PlaylistRules = PlaylistRules(), userScoreWeight: Float = 1,
            priors: [any RelevancePrior] = [], diversity: Diversifier = Diversifier(lambda: 0.9), flow: FlowOrdering = FlowOrdering(),
            exploration: Float = 0.05, poolSize: Int = 150, salt: UInt64 = 0, newTrackShare: Float = 0,
            newTrackSources: [String] = ["new-for-you"], newTrackCalibration: NewTrackCalibration? = nil
        ) {
            self.newTrackCalibration = newTrackCalibration
            self.newTrackShare = newTrackShare
            self.newTrackSources = newTrackSources
            self.size = size
            self.rules = rules
            self.sources = sources
            self.userScoreWeight = userScoreWeight
            self.priors = priors
            self.diversity = diversity
            self.flow = flow
            self.exploration = exploration
            self.poolSize = poolSize
            self.salt = salt
        }

        /// The standard sources and prior, as measured on the synthetic world's temporal split
        /// (``PlaylistEvaluation/temporalSplit(plays:weighting:feedback:catalog:testWeek:parameters:confidence:sampleUsers:sampleSeed:threads:configure:)``):
        ///
        /// | source | weight | limit |
        /// |---|---|---|
        /// | ``UserVectorCandidates`` (the user's vector through `itemIndex`) | 1 | 150 |
        /// | ``SimilarUsersLikes`` (through `userIndex`) | 0.3 | 100 |
        /// | ``ArtistReleases`` (last 28 days) | 0.6 | 50 |
        /// | ``HeavyRotationNeighbors`` | 0.3 | 100 |
        /// | ``ArtistAffinityTracks`` | 2 | 100 |
        /// | ``GenreAffinityTracks`` | 3 | 100 |
        /// | ``PopularTracks`` (fills gaps) | 0.05 | 50 |
        ///
        /// plus the model's score of every candidate (weight 1) and the ``ReleaseExposure`` prior (γ = 0.5). The
        /// catalog sources give nothing for a bare catalog, leaving the collaborative ones.
        ///
        /// The weights were chosen on worlds whose tracks are drawn by genre taste, artist and popularity, where the
        /// genre and artist sources are strong; re-measure them with the same test on real data.
        ///
        /// - Parameters:
        ///   - histories: every user's history (for similar users, artist and genre popularity, popularity).
        ///   - model: the factor model (its user factors are the user space).
        ///   - catalog: the catalog whose genres feed ``GenreAffinityTracks``; without it that source is left out.
        ///   - itemIndex: an index over the model's item factors (inner product) for the user-vector source, or `nil`
        ///     for exact scans.
        ///   - userIndex: an index over the model's user factors (cosine) for similar users, or `nil`.
        ///   - content: content spaces and cold tracks (see ``DiscoverWeekly/Content``): each space adds a
        ///     `similar-<space>` source (``HeavyRotationNeighbors`` over it; `similar-audio` for the audio space),
        ///     the cold tracks a `new-for-you` source (``PredictedVectorCandidates``), placed before the popular
        ///     tracks, and ``Configuration/newTrackShare`` is the content's share (0 without cold tracks). Their weights and limits are the
        ///     content's; they were not measured (re-measure them with the temporal split as above).
        /// - Throws: as the sources' initializers and ``DiscoverWeekly/Content/sources(itemCount:factors:)``.
        public static func standard(
            histories: ListeningHistories, model: ImplicitALS, catalog: TrackCatalog? = nil,
            itemIndex: (any VectorIndex)? = nil, userIndex: (any VectorIndex)? = nil, content: Content? = nil
        ) throws(PlaylistError) -> Configuration {
            var sources = [
                Source(UserVectorCandidates(index: itemIndex), weight: 1, limit: 150),
                Source(try SimilarUsersLikes(histories: histories, userVectors: model.userFactors, index: userIndex),
                       weight: 0.3, limit: 100),
                Source(try ArtistReleases(), weight: 0.6, limit: 50),
                Source(try HeavyRotationNeighbors(), weight: 0.3, limit: 100),
                Source(try ArtistAffinityTracks(histories: histories), weight: 2, limit: 100),
            ]
            if let catalog {
                sources.append(Source(try GenreAffinityTracks(histories: histories, catalog: catalog), weight: 3, limit: 100))
            }
            if let content {
                sources += try content.sources(
                    itemCount: histories.itemCount, factors: model.itemFactors.cols, learned: model.itemFactors)
            }
            sources.append(Source(PopularTracks(histories: histories), weight: 0.05, limit: 50))
            return Configuration(
                sources: sources, priors: [try ReleaseExposure(gamma: 0.5)],
                newTrackShare: content?.coldItems != nil ? content!.newTrackShare : 0,
                newTrackCalibration: content?.coldItems != nil ? content!.calibration : nil)
        }

        /// Checks a new-track share.
        static func checkNewTrackShare(_ share: Float) throws(PlaylistError) {
            guard share >= 0, share <= 1 else {
                throw .invalidParameter(name: "newTrackShare", value: "\(share)", expected: "a share in [0, 1]")
            }
        }

        /// The most places new tracks may take: `round(newTrackShare · size)`.
        public var reservedNewTracks: Int { Int((newTrackShare * Float(size)).rounded()) }

        /// Checks every value.
        /// - Throws: ``PlaylistError/invalidParameter(name:value:expected:)``.
        public func validate() throws(PlaylistError) {
            guard size >= 1 else { throw .invalidParameter(name: "size", value: "\(size)", expected: ">= 1") }
            guard poolSize >= size else {
                throw .invalidParameter(name: "poolSize", value: "\(poolSize)", expected: ">= size (\(size))")
            }
            guard exploration >= 0, exploration.isFinite else {
                throw .invalidParameter(name: "exploration", value: "\(exploration)", expected: ">= 0")
            }
            guard sources.count <= 32 else {
                throw .invalidParameter(name: "sources", value: "\(sources.count)", expected: "at most 32 sources")
            }
            for s in sources where s.limit < 0 || !s.weight.isFinite {
                throw .invalidParameter(name: "source '\(s.source.name)'", value: "weight \(s.weight), limit \(s.limit)",
                                        expected: "a finite weight and a limit >= 0")
            }
            let names = sources.map(\.source.name)
            guard Set(names).count == names.count else {
                throw .invalidParameter(name: "sources", value: names.joined(separator: ", "), expected: "distinct names")
            }
            try Self.checkNewTrackShare(newTrackShare)
            if newTrackShare > 0 {
                let known = Set(names)
                for n in newTrackSources where !known.contains(n) {
                    throw .invalidParameter(name: "newTrackSources", value: n,
                                            expected: "the name of a configured source (\(names.joined(separator: ", ")))")
                }
            }
            try rules.validate()
            try diversity.validate()
        }
    }

    /// One track of a playlist.
    public struct Track: Sendable, Equatable, Hashable {
        /// The item.
        public var item: Int32
        /// Its relevance (before the weekly perturbation).
        public var relevance: Float
        /// Bit `s` is set when source `s` of ``Playlist/sourceNames`` suggested it.
        public var sourceMask: UInt32
    }

    /// One user's Discover Weekly.
    public struct Playlist: Sendable, Equatable {
        /// The user's id.
        public var userKey: String
        /// The user's index, when known.
        public var user: Int32?
        /// The week (a Monday).
        public var week: PlaylistDate
        /// The seed of the (user, week).
        public var seed: UInt64
        /// The tracks in playing order.
        public var tracks: [Track]
        /// The configured sources' names (shared by every playlist of a builder).
        public var sourceNames: [String]

        /// The items in playing order.
        public var items: [Int32] { tracks.map(\.item) }

        /// The names of the sources that suggested `track`.
        public func sources(of track: Track) -> [String] {
            sourceNames.indices.filter { track.sourceMask & (1 << UInt32($0)) != 0 }.map { sourceNames[$0] }
        }

        /// Why `track` is in the playlist: the explanation of each source that suggested it
        /// (``DiscoverWeekly/explanation(ofSource:)``), joined by "; ".
        public func explanation(of track: Track) -> String {
            sources(of: track).map { DiscoverWeekly.explanation(ofSource: $0) }.joined(separator: "; ")
        }
    }

    /// The catalog, item space and model.
    public let environment: PlaylistEnvironment
    /// The configuration.
    public let configuration: Configuration
    /// The week.
    public let week: PlaylistDate
    /// Items nobody may be suggested this week (flagged, too short, unreleased).
    public let unavailable: IDBitset
    let sourceNames: [String]

    /// A builder for `week`.
    /// - Throws: ``PlaylistError/invalidDate(_:reason:)`` when the week is not a Monday, or as
    ///   ``Configuration/validate()``.
    public init(environment: PlaylistEnvironment, configuration: Configuration, week: PlaylistDate) throws(PlaylistError) {
        guard week.isMonday else { throw .invalidDate(week.description, reason: "a week is named by its Monday") }
        try configuration.validate()
        self.environment = environment
        self.configuration = configuration
        self.week = week
        self.unavailable = configuration.rules.unavailableItems(in: environment.catalog, at: week.timestamp)
        self.sourceNames = configuration.sources.map(\.source.name)
    }

    /// The seed of a user's playlist this week.
    public func seed(for userKey: String) -> UInt64 {
        StableSeed.make([userKey, week.description, "discover-weekly"], salt: configuration.salt)
    }

    /// The context a user's sources see this week.
    /// - Throws: ``PlaylistError/model(_:)`` when the user vector must be folded in and the fold-in fails.
    public func context(for history: UserHistory, userVector: [Float]? = nil) throws(PlaylistError) -> PlaylistContext {
        var vector = userVector
        if vector == nil { vector = try environment.userVector(for: history) }
        let excluded = configuration.rules.excludedItems(for: history, catalog: environment.catalog, unavailable: unavailable)
        return PlaylistContext(
            environment: environment, history: history, userVector: vector, referenceTime: week.timestamp,
            seed: seed(for: history.userKey), excluded: excluded)
    }

    /// Every source's candidates for a user, merged (before diversity and capping), best first; the new-track
    /// sources' too, which ``build(for:userVector:)`` keeps out of the merge and places under the cap instead.
    /// - Throws: as the sources.
    public func candidates(for history: UserHistory, userVector: [Float]? = nil) throws(PlaylistError) -> [MergedCandidate] {
        try candidates(in: context(for: history, userVector: userVector))
    }

    func candidates(in context: PlaylistContext) throws(PlaylistError) -> [MergedCandidate] {
        var lists: [(weight: Float, candidates: [Candidate])] = []
        for s in configuration.sources {
            lists.append((s.weight, try s.source.candidates(for: context, limit: s.limit)))
        }
        return CandidateMerge.merge(
            lists, context: context, userScoreWeight: configuration.userScoreWeight, priors: configuration.priors)
    }

    /// A user's Discover Weekly for the week.
    ///
    /// - Parameters:
    ///   - history: the user's history (events before the week's Monday).
    ///   - userVector: the user's vector; by default the model's row for a known user or a fold-in of the history.
    /// - Throws: as the sources, or ``PlaylistError/model(_:)`` when the fold-in fails.
    public func build(for history: UserHistory, userVector: [Float]? = nil) throws(PlaylistError) -> Playlist {
        let context = try context(for: history, userVector: userVector)
        let newSources = Set(configuration.newTrackSources)
        var lists: [(weight: Float, candidates: [Candidate])] = [], newLists: [[Candidate]] = []
        for s in configuration.sources {
            let c = try s.source.candidates(for: context, limit: s.limit)
            if newSources.contains(s.source.name) { newLists.append(c) } else { lists.append((s.weight, c)) }
        }
        let merged = CandidateMerge.merge(
            lists, context: context, userScoreWeight: configuration.userScoreWeight, priors: configuration.priors)
        let catalog = environment.catalog
        // Weekly perturbation, from the (user, week) seed and the item alone (independent of the candidates' order).
        let tau = configuration.exploration
        let keyed: [Float] = merged.map { c in
            guard tau > 0 else { return c.relevance }
            var rng = SplitMix64(seed: StableSeed.derive(context.seed, UInt64(UInt32(bitPattern: c.item))))
            let u = max(1e-12, rng.nextDouble())
            let g = -Foundation.log(-Foundation.log(u))
            return c.relevance * Float(Foundation.exp(Double(tau) * g))
        }
        var order = Array(merged.indices)
        order.sort { keyed[$0] != keyed[$1] ? keyed[$0] > keyed[$1] : merged[$0].item < merged[$1].item }
        let picked = fill(from: order, count: configuration.size, after: [], merged: merged, keyed: keyed)
        let places = try placeNewTracks(
            picked.map { Place(candidate: merged[$0], keyed: keyed[$0]) }, newLists: newLists, context: context)
        let flow = configuration.flow.order(
            places.map(\.candidate.item), relevance: places.map(\.keyed), space: environment.space, catalog: catalog)
        let sourceIndex = Dictionary(uniqueKeysWithValues: sourceNames.enumerated().map { ($1, $0) })
        let tracks = flow.map { f -> Track in
            let c = places[f].candidate
            var mask: UInt32 = 0
            for s in c.sources { if let i = sourceIndex[s.source] { mask |= 1 << UInt32(i) } }
            return Track(item: c.item, relevance: c.relevance, sourceMask: mask)
        }
        return Playlist(
            userKey: history.userKey, user: history.user, week: week, seed: context.seed, tracks: tracks,
            sourceNames: sourceNames)
    }

    /// `after` then up to `count - after.count` more of `order` (positions in `merged`, best first): maximal
    /// marginal relevance over the best ``Configuration/poolSize`` of them, then the rest of `order` by perturbed
    /// relevance, under the caps (which hold `after`'s tracks).
    func fill(from order: [Int], count: Int, after: [Int], merged: [MergedCandidate], keyed: [Float]) -> [Int] {
        let catalog = environment.catalog
        var picked = after
        var chosen = Set(after)
        var caps = CapCounter(rules: configuration.rules)
        for p in after { caps.add(merged[p].item, catalog: catalog) }
        guard picked.count < count else { return picked }
        let pool = Array(order.lazy.filter { !chosen.contains($0) }.prefix(configuration.poolSize))
        let selected = configuration.diversity.select(
            pool.map { merged[$0].item }, relevance: pool.map { keyed[$0] }, count: count - picked.count,
            space: environment.space, catalog: catalog, caps: caps, placed: after.map { merged[$0].item }
        ).map { pool[$0] }
        for p in selected {
            picked.append(p)
            chosen.insert(p)
            caps.add(merged[p].item, catalog: catalog)
        }
        // Fill from every remaining candidate, by perturbed relevance, under the caps.
        for p in order where picked.count < count && !chosen.contains(p) && caps.admits(merged[p].item, catalog: catalog) {
            picked.append(p)
            chosen.insert(p)
            caps.add(merged[p].item, catalog: catalog)
        }
        return picked
    }

    /// Every listed user's Discover Weekly, built in parallel, in the order of `users`.
    ///
    /// - Parameters:
    ///   - histories: every user's history.
    ///   - users: the users (default: every user with an event).
    ///   - threads: worker threads; 0 uses every core. The result does not depend on it.
    ///   - progress: called with the number of users done so far (from worker threads).
    /// - Throws: the first error of any user, in user order.
    public func buildAll(
        histories: ListeningHistories, users: [Int32]? = nil, threads: Int = 0,
        progress: (@Sendable (Int) -> Void)? = nil
    ) throws(PlaylistError) -> [Playlist] {
        let list = users ?? histories.activeUsers
        return try PlaylistBatch.run(list, threads: threads, progress: progress) { (u: Int32) throws(PlaylistError) -> Playlist in
            let history = try histories.history(of: u)
            return try build(for: history)
        }
    }
}

/// Runs a per-user job on many threads, results in input order, the first error (in input order) thrown.
package enum PlaylistBatch {
    package static func run<T: Sendable>(
        _ users: [Int32], threads: Int, progress: (@Sendable (Int) -> Void)?,
        _ job: (Int32) throws(PlaylistError) -> T
    ) throws(PlaylistError) -> [T] {
        let n = users.count
        let slots = OrderedSlots<[Result<T, PlaylistError>]>(count: (n + 63) / 64)
        let done = AtomicCounter()
        Parallel.forEach((n + 63) / 64, threads: threads > 0 ? threads : Parallel.coreCount) { b in
            var out: [Result<T, PlaylistError>] = []
            for k in (b * 64)..<min(n, (b + 1) * 64) {
                do throws(PlaylistError) { out.append(.success(try job(users[k]))) } catch { out.append(.failure(error)) }
            }
            slots.set(b, out)
            let finished = done.add(out.count) + out.count
            progress?(finished)
        }
        var results: [T] = []
        results.reserveCapacity(n)
        for block in slots.take() {
            for r in block {
                switch r {
                case .success(let v): results.append(v)
                case .failure(let e): throw e
                }
            }
        }
        return results
    }
}
