import Foundation
import EncoreCore

/// Daily Mix: up to six mixes per user, one per taste found in the user's recent listening, each about 50 tracks,
/// roughly three quarters familiar (the user's own tracks of that taste) and one quarter new (unplayed tracks near
/// it), interleaved.
///
/// For each user and day:
/// 1. the user's top ``Configuration/seedTracks`` familiar tracks by recency-weighted plays are clustered in the item
///    space (``SphericalKMeans``, weights = listening weight); the number of clusters `k` in `1...maxMixes` is the
///    one of best weighted silhouette among the clusterings whose clusters all hold at least
///    ``Configuration/minClusterTracks`` tracks and ``Configuration/minClusterShare`` of the weight, and 1 unless
///    that silhouette reaches ``Configuration/minSilhouette``: a narrow taste gets one mix, a broad one several;
/// 2. every familiar track of the user (not disliked, by artist or itself) joins the cluster of its nearest centroid;
///    the clusters are ordered by their share of the listening;
/// 3. each mix draws `round(mixSize · (1 − newShare))` familiar tracks from its cluster (weighted sampling without
///    replacement, seeded by the (user, day): the favorites come back most days, the rest rotates) and
///    `round(familiar · newShare / (1 − newShare))` new tracks among the nearest allowed unplayed tracks to the
///    centroid (the new-track rules of ``PlaylistRules``; a seeded perturbation rotates them); no track is in two
///    mixes. With a new-track space (``newTrackSpace``, such as the hybrid space, where tracks without plays have
///    vectors too), the new tracks are the ones nearest, in that space, to the weighted mean of the cluster's
///    familiar tracks' vectors there;
/// 4. familiar and new tracks are interleaved evenly, each part in ``FlowOrdering``, then neighboring tracks of one
///    artist are separated by swaps when possible. With track descriptors (``descriptors``: tempo, key, energy),
///    the mix is ordered to flow instead: the same even spread of familiar and new places, filled in the order of
///    least ``DescriptorFlow`` cost (``Configuration/descriptorFlow``);
/// 5. the mix is named after its cluster's top three artists ("A, B, C and more") and its cover is its most listened
///    familiar track nearest the centroid.
///
/// The silhouette threshold (0.35) comes from the synthetic world: users with one true taste have a median best
/// silhouette of 0.22 (a split of one blob), users with two or three tastes a 10th percentile of 0.36 to 0.44 and a
/// median near 0.6.
///
/// Clusters are seeded by the user alone, so a user's mixes keep their identity from day to day; the tracks in them
/// change with the day's seed. The builder is a value and may run on any number of threads at once.
public struct DailyMix: Sendable {
    /// How the mixes are made.
    public struct Configuration: Sendable {
        /// The most mixes per user.
        public var maxMixes: Int
        /// Tracks per mix when the user has enough.
        public var mixSize: Int
        /// The share of new tracks in a mix.
        public var newShare: Float
        /// How many of the user's top tracks are clustered.
        public var seedTracks: Int
        /// The fewest seed tracks in a cluster.
        public var minClusterTracks: Int
        /// The least share of the listening weight in a cluster.
        public var minClusterShare: Float
        /// The silhouette a clustering into 2 or more mixes must reach.
        public var minSilhouette: Float
        /// The fewest familiar tracks a mix needs to be made.
        public var minFamiliar: Int
        /// New-track rules and per-mix caps (no caps by default: a mix may hold several tracks of its artists).
        public var rules: PlaylistRules
        /// The clusterer.
        public var clustering: SphericalKMeans
        /// The playing order within the familiar and new parts.
        public var flow: FlowOrdering
        /// The spread of the daily perturbation of the new tracks' closeness (0: always the nearest).
        public var newVariety: Float
        /// Mixed into every seed.
        public var salt: UInt64
        /// The playing order when track descriptors are given: the cost of consecutive tracks and its weights.
        public var descriptorFlow: DescriptorFlow

        /// A configuration.
        public init(
            maxMixes: Int = 6, mixSize: Int = 50, newShare: Float = 0.25, seedTracks: Int = 100,
            minClusterTracks: Int = 4, minClusterShare: Float = 0.1, minSilhouette: Float = 0.35, minFamiliar: Int = 3,
            rules: PlaylistRules = PlaylistRules(maxPerArtist: 0, maxPerAlbum: 0), clustering: SphericalKMeans = SphericalKMeans(),
            flow: FlowOrdering = FlowOrdering(), newVariety: Float = 0.03, salt: UInt64 = 0,
            descriptorFlow: DescriptorFlow = DescriptorFlow()
        ) {
            self.descriptorFlow = descriptorFlow
            self.maxMixes = maxMixes
            self.mixSize = mixSize
            self.newShare = newShare
            self.seedTracks = seedTracks
            self.minClusterTracks = minClusterTracks
            self.minClusterShare = minClusterShare
            self.minSilhouette = minSilhouette
            self.minFamiliar = minFamiliar
            self.rules = rules
            self.clustering = clustering
            self.flow = flow
            self.newVariety = newVariety
            self.salt = salt
        }

        /// Checks every value.
        /// - Throws: ``PlaylistError/invalidParameter(name:value:expected:)``.
        public func validate() throws(PlaylistError) {
            func check(_ ok: Bool, _ name: String, _ value: Any, _ expected: String) throws(PlaylistError) {
                if !ok { throw .invalidParameter(name: name, value: "\(value)", expected: expected) }
            }
            try check(maxMixes >= 1, "maxMixes", maxMixes, ">= 1")
            try check(mixSize >= 1, "mixSize", mixSize, ">= 1")
            try check(newShare >= 0 && newShare < 1, "newShare", newShare, "a value in [0, 1)")
            try check(seedTracks >= 1, "seedTracks", seedTracks, ">= 1")
            try check(minClusterTracks >= 1, "minClusterTracks", minClusterTracks, ">= 1")
            try check(minClusterShare >= 0 && minClusterShare < 1, "minClusterShare", minClusterShare, "a value in [0, 1)")
            try check(minFamiliar >= 1, "minFamiliar", minFamiliar, ">= 1")
            try check(newVariety >= 0 && newVariety.isFinite, "newVariety", newVariety, ">= 0")
            try check(clustering.iterations >= 1 && clustering.restarts >= 1, "clustering",
                      "\(clustering.iterations) iterations, \(clustering.restarts) restarts", ">= 1 each")
            try rules.validate()
            try descriptorFlow.validate()
        }

        /// The familiar tracks wanted in a full mix.
        public var familiarTarget: Int { max(1, Int((Float(mixSize) * (1 - newShare)).rounded())) }

        /// The new tracks wanted beside `familiar` familiar ones.
        public func newTarget(familiar: Int) -> Int {
            guard newShare > 0 else { return 0 }
            return max(0, min(mixSize - familiar, Int((Float(familiar) * newShare / (1 - newShare)).rounded())))
        }
    }

    /// One mix.
    public struct Mix: Sendable, Equatable {
        /// Its number, from 1, by decreasing share of the user's listening.
        public var number: Int
        /// "Daily Mix 1".
        public var title: String
        /// The name from the top artists ("A, B, C and more"), or the title without artists.
        public var name: String
        /// The cluster's top artists (at most 3).
        public var topArtists: [Int32]
        /// The cover track.
        public var cover: Int32
        /// The tracks in playing order.
        public var items: [Int32]
        /// Whether each track is familiar (played by the user) or new.
        public var isFamiliar: [Bool]
        /// The cluster's share of the user's (weighted) listening among the clustered tracks.
        public var share: Float
        /// The cluster's centroid in the item space (unit length).
        public var centroid: [Float]

        /// The familiar tracks, in playing order.
        public var familiarItems: [Int32] { zip(items, isFamiliar).filter { $0.1 }.map(\.0) }
        /// The new tracks, in playing order.
        public var newItems: [Int32] { zip(items, isFamiliar).filter { !$0.1 }.map(\.0) }
    }

    /// One user's mixes for one day.
    public struct Mixes: Sendable, Equatable {
        /// The user's id.
        public var userKey: String
        /// The user's index, when known.
        public var user: Int32?
        /// The day.
        public var day: PlaylistDate
        /// The (user, day) seed.
        public var seed: UInt64
        /// The mixes, by decreasing share of the listening.
        public var mixes: [Mix]
    }

    /// The catalog, item space and model.
    public let environment: PlaylistEnvironment
    /// The configuration.
    public let configuration: Configuration
    /// The day.
    public let day: PlaylistDate
    /// Items nobody may be given as new today.
    public let unavailable: IDBitset
    /// Tempo, key and energy of the tracks, for a mix that flows; `nil` for the similarity order.
    public let descriptors: TrackDescriptors?
    /// The space new tracks are drawn from (the hybrid space), or `nil` for the environment's.
    public let newTrackSpace: ItemSpace?

    /// A builder for `day`.
    ///
    /// - Parameters:
    ///   - descriptors: the tracks' descriptors, to order each mix so it flows (tracks without them are placed where
    ///     they cost least).
    ///   - newTrackSpace: a space (the hybrid one) to draw each mix's new tracks from instead of the environment's.
    /// - Throws: as ``Configuration/validate()``; ``PlaylistError/shapeMismatch(_:)`` when the descriptors or the
    ///   new-track space do not cover the catalog's items.
    public init(
        environment: PlaylistEnvironment, configuration: Configuration = Configuration(), day: PlaylistDate,
        descriptors: TrackDescriptors? = nil, newTrackSpace: ItemSpace? = nil
    ) throws(PlaylistError) {
        try configuration.validate()
        let items = environment.catalog.itemCount
        if let descriptors, descriptors.itemCount != items {
            throw .shapeMismatch("descriptors for \(descriptors.itemCount) items, the catalog has \(items)")
        }
        if let newTrackSpace, newTrackSpace.itemCount != items {
            throw .shapeMismatch("the new-track space '\(newTrackSpace.name)' has \(newTrackSpace.itemCount) items, the catalog \(items)")
        }
        self.environment = environment
        self.configuration = configuration
        self.day = day
        self.unavailable = configuration.rules.unavailableItems(in: environment.catalog, at: day.timestamp)
        self.descriptors = descriptors
        self.newTrackSpace = newTrackSpace
    }

    /// The (user, day) seed.
    public func seed(for userKey: String) -> UInt64 {
        StableSeed.make([userKey, day.description, "daily-mix"], salt: configuration.salt)
    }

    /// The clusters of a user's listening (stable across days): each familiar position of the history with its
    /// cluster, the centroids and each cluster's share.
    public struct Clusters: Sendable, Equatable {
        /// The centroids, `k x d`, ordered by decreasing share.
        public var centroids: Matrix
        /// Each cluster's share of the clustered weight.
        public var shares: [Float]
        /// The silhouette of the chosen clustering (0 for one cluster).
        public var silhouette: Float
        /// The history positions clustered (the seeds) and their clusters.
        public var seedPositions: [Int]
        /// The cluster of each seed.
        public var seedClusters: [Int]
    }

    /// The weight of each history position in the mixes: recency relative to the top plus a tenth of the plays
    /// relative to the top, so old favorites still count a little.
    func weights(_ h: UserHistory) -> [Float] {
        let maxRecency = h.recency.max() ?? 0
        let maxPlays = h.plays.max() ?? 0
        return (0..<h.count).map { p in
            (maxRecency > 0 ? h.recency[p] / maxRecency : 0) + (maxPlays > 0 ? 0.1 * h.plays[p] / maxPlays : 0)
        }
    }

    /// Whether history position `p` may appear in a mix as a familiar track.
    func familiarAllowed(_ h: UserHistory, _ p: Int) -> Bool {
        h.isFamiliar(at: p) && environment.space.hasVector.contains(h.items[p])
            && configuration.rules.allowsFamiliar(h.items[p], history: h, catalog: environment.catalog)
    }

    /// Clusters a user's recent listening.
    public func clusters(for history: UserHistory) -> Clusters {
        let space = environment.space
        let h = history
        let w = weights(h)
        let seeds = h.positionsByRecency(limit: configuration.seedTracks) { familiarAllowed(h, $0) }
        let n = seeds.count, d = space.dimension
        guard n > 0 else {
            return Clusters(centroids: Matrix(rows: 0, cols: d), shares: [], silhouette: 0, seedPositions: [], seedClusters: [])
        }
        var points = Matrix(rows: n, cols: d)
        for (r, p) in seeds.enumerated() { points.setRow(r, space.vector(h.items[p])) }
        let pw = seeds.map { max(w[$0], 1e-4) }
        let totalWeight = pw.reduce(0, +)
        var cosines = [Float](repeating: 0, count: n * n)
        for i in 0..<n { for j in i..<n {
            let c = space.cosine(h.items[seeds[i]], h.items[seeds[j]])
            cosines[i * n + j] = c
            cosines[j * n + i] = c
        } }
        let clusterSeed = StableSeed.make([h.userKey, "daily-mix-clusters"], salt: configuration.salt)
        var chosen = configuration.clustering.fit(points, weights: pw, k: 1, seed: clusterSeed)
        var chosenSilhouette: Float = 0
        let kMax = min(configuration.maxMixes, n / max(1, configuration.minClusterTracks))
        if kMax >= 2 {
            var best: (SphericalKMeans.Result, Float)? = nil
            for k in 2...kMax {
                let r = configuration.clustering.fit(points, weights: pw, k: k, seed: StableSeed.derive(clusterSeed, UInt64(k)))
                guard r.k == k,
                      r.clusterSizes.allSatisfy({ $0 >= configuration.minClusterTracks }),
                      r.clusterWeights.allSatisfy({ $0 >= configuration.minClusterShare * totalWeight })
                else { continue }
                let s = SphericalKMeans.silhouette(cosines: cosines, assignment: r.assignment, weights: pw, k: k)
                if best == nil || s > best!.1 + 1e-6 { best = (r, s) }
            }
            if let best, best.1 >= configuration.minSilhouette {
                chosen = best.0
                chosenSilhouette = best.1
            }
        }
        // Order clusters by weight.
        let order = (0..<chosen.k).sorted {
            chosen.clusterWeights[$0] != chosen.clusterWeights[$1] ? chosen.clusterWeights[$0] > chosen.clusterWeights[$1] : $0 < $1
        }
        var rank = [Int](repeating: 0, count: chosen.k)
        for (r, c) in order.enumerated() { rank[c] = r }
        var centroids = Matrix(rows: chosen.k, cols: d)
        for (r, c) in order.enumerated() { centroids.setRow(r, chosen.centroids.row(c)) }
        let total = chosen.clusterWeights.reduce(0, +)
        return Clusters(
            centroids: centroids, shares: order.map { total > 0 ? chosen.clusterWeights[$0] / total : 0 },
            silhouette: chosenSilhouette, seedPositions: seeds, seedClusters: chosen.assignment.map { rank[$0] })
    }

    /// A user's mixes for the day.
    ///
    /// - Parameters:
    ///   - history: the user's history (events before the day).
    ///   - userVector: unused by the mixes today; accepted so every builder is called alike.
    /// - Throws: ``PlaylistError/index(_:)`` when the item space's index fails.
    public func build(for history: UserHistory, userVector: [Float]? = nil) throws(PlaylistError) -> Mixes {
        let h = history
        let seed = seed(for: h.userKey)
        let catalog = environment.catalog, space = environment.space
        let clusters = clusters(for: h)
        let k = clusters.centroids.rows
        guard k > 0 else { return Mixes(userKey: h.userKey, user: h.user, day: day, seed: seed, mixes: []) }
        let w = weights(h)
        // Every allowed familiar track joins its nearest centroid.
        var members = [[Int]](repeating: [], count: k)
        for p in 0..<h.count where familiarAllowed(h, p) {
            var best = 0, bestS = -Float.infinity
            for c in 0..<k {
                let s = space.cosine(h.items[p], toUnit: clusters.centroids.row(c))
                if s > bestS { bestS = s; best = c }
            }
            members[best].append(p)
        }
        var used = configuration.rules.excludedItems(for: h, catalog: catalog, unavailable: unavailable)
        var mixes: [Mix] = []
        for c in 0..<k where members[c].count >= configuration.minFamiliar {
            let centroid = clusters.centroids.row(c)
            var rng = SplitMix64(seed: StableSeed.derive(seed, UInt64(c)))
            // Familiar: weighted sampling without replacement (Efraimidis-Spirakis keys log(u) / w).
            let pool = members[c]
            let keys = pool.map { p -> Double in
                let u = max(1e-300, rng.nextDouble())
                return Foundation.log(u) / Double(max(w[p], 1e-6))
            }
            let familiarCount = min(pool.count, configuration.familiarTarget)
            var caps = CapCounter(rules: configuration.rules)
            var familiar: [Int32] = []
            for j in pool.indices.sorted(by: { keys[$0] != keys[$1] ? keys[$0] > keys[$1] : pool[$0] < pool[$1] }) {
                if familiar.count >= familiarCount { break }
                let item = h.items[pool[j]]
                guard caps.admits(item, catalog: catalog) else { continue }
                familiar.append(item)
                caps.add(item, catalog: catalog)
            }
            // New: near the centroid, unplayed, allowed, not in an earlier mix; rotated by a daily perturbation.
            let wanted = configuration.newTarget(familiar: familiar.count)
            var fresh: [Int32] = []
            var freshScore: [Float] = []
            if wanted > 0 {
                let snapshot = used
                let near: [(item: Int32, similarity: Float)]
                if let newSpace = newTrackSpace, let query = Self.centroid(of: pool.map { h.items[$0] }, weights: pool.map { w[$0] }, in: newSpace) {
                    near = try newSpace.neighbors(of: query, k: wanted * 4 + 10, filter: .excluded(snapshot))
                } else {
                    near = try space.neighbors(of: centroid, k: wanted * 4 + 10, filter: .excluded(snapshot))
                }
                let variety = Double(configuration.newVariety)
                let keyed = near.map { n -> (Int32, Float, Double) in
                    let u = max(1e-12, rng.nextDouble())
                    return (n.item, n.similarity, Double(n.similarity) + variety * -Foundation.log(-Foundation.log(u)))
                }.sorted { $0.2 != $1.2 ? $0.2 > $1.2 : $0.0 < $1.0 }
                for (item, s, _) in keyed where fresh.count < wanted && caps.admits(item, catalog: catalog) {
                    fresh.append(item)
                    freshScore.append(s)
                    caps.add(item, catalog: catalog)
                }
            }
            for i in fresh { used.insert(i) }
            for i in familiar { used.insert(i) }
            let items = try interleave(
                familiar: familiar, familiarRelevance: familiar.map { w[h.position(of: $0) ?? 0] },
                fresh: fresh, freshRelevance: freshScore)
            // Name and cover from the whole cluster.
            var artistWeight: [Int32: Float] = [:]
            for p in pool {
                let a = catalog.artist(of: h.items[p])
                if a >= 0 { artistWeight[a, default: 0] += w[p] }
            }
            let ranked = artistWeight.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
            let top = ranked.prefix(3).map(\.key)
            let title = "Daily Mix \(mixes.count + 1)"
            let cover = familiar.max { a, b in
                let sa = w[h.position(of: a) ?? 0] * max(0, space.cosine(a, toUnit: centroid))
                let sb = w[h.position(of: b) ?? 0] * max(0, space.cosine(b, toUnit: centroid))
                return sa != sb ? sa < sb : a > b
            } ?? items.first?.0 ?? -1
            mixes.append(Mix(
                number: mixes.count + 1, title: title,
                name: Self.name(artists: top.map { catalog.name(ofArtist: $0) }, more: ranked.count > top.count) ?? title,
                topArtists: top, cover: cover, items: items.map(\.0), isFamiliar: items.map(\.1),
                share: clusters.shares[c], centroid: centroid))
        }
        return Mixes(userKey: h.userKey, user: h.user, day: day, seed: seed, mixes: mixes)
    }

    /// The weighted mean of the unit vectors of `items` in `space` (those with a vector), or `nil` when none has one.
    static func centroid(of items: [Int32], weights: [Float], in space: ItemSpace) -> [Float]? {
        var sum = [Float](repeating: 0, count: space.dimension)
        var any = false
        for (i, wt) in zip(items, weights) where space.hasVector.contains(i) {
            let v = space.vector(i)
            for c in sum.indices { sum[c] += max(wt, 1e-6) * v[c] }
            any = true
        }
        return any ? sum : nil
    }

    /// "A", "A and B", "A, B and C", or "A, B, C and more" when the cluster has more artists; `nil` without artists.
    public static func name(artists: [String], more: Bool) -> String? {
        let names = artists.filter { !$0.isEmpty }
        guard !names.isEmpty else { return nil }
        if more { return names.joined(separator: ", ") + " and more" }
        if names.count == 1 { return names[0] }
        return names.dropLast().joined(separator: ", ") + " and " + names[names.count - 1]
    }

    /// Whether each place of a mix of `familiar` and `fresh` tracks holds a familiar one: the new tracks spread
    /// evenly.
    static func spread(familiar: Int, fresh: Int) -> [Bool] {
        let total = familiar + fresh
        var out: [Bool] = []
        var fi = 0, ni = 0
        for t in 0..<total {
            // A new track at slot t when the even spread calls for one more.
            if ni < fresh && ((t + 1) * fresh) / total > ni || fi >= familiar {
                out.append(false); ni += 1
            } else {
                out.append(true); fi += 1
            }
        }
        return out
    }

    /// Familiar and new tracks, each part in flow order, spread evenly (`(item, isFamiliar)`), then same-artist
    /// neighbors separated by swaps within a part when a swap removes a clash. With descriptors, that order is the
    /// input of ``DescriptorFlow``, which keeps the familiar and new places and finds an order of least cost.
    func interleave(
        familiar: [Int32], familiarRelevance: [Float], fresh: [Int32], freshRelevance: [Float]
    ) throws(PlaylistError) -> [(Int32, Bool)] {
        let catalog = environment.catalog, space = environment.space
        let pattern = Self.spread(familiar: familiar.count, fresh: fresh.count)
        let f = configuration.flow.order(familiar, relevance: familiarRelevance, space: space, catalog: catalog).map { familiar[$0] }
        let nw = configuration.flow.order(fresh, relevance: freshRelevance, space: space, catalog: catalog).map { fresh[$0] }
        var out: [(Int32, Bool)] = []
        var fi = 0, ni = 0
        for isFamiliar in pattern {
            if isFamiliar { out.append((f[fi], true)); fi += 1 } else { out.append((nw[ni], false)); ni += 1 }
        }
        func clash(_ i: Int, _ j: Int) -> Bool {
            guard i >= 0, j < out.count else { return false }
            let a = catalog.artist(of: out[i].0)
            return a >= 0 && a == catalog.artist(of: out[j].0)
        }
        func clashes(around positions: [Int]) -> Int {
            var seen = Set<Int>()
            var c = 0
            for p in positions {
                for q in [p - 1, p] where q >= 0 && q + 1 < out.count && !seen.contains(q) {
                    seen.insert(q)
                    if clash(q, q + 1) { c += 1 }
                }
            }
            return c
        }
        var t = 1
        while t < out.count {
            if clash(t - 1, t) {
                for j in out.indices where j != t && out[j].1 == out[t].1 {
                    let before = clashes(around: [t, j])
                    out.swapAt(t, j)
                    if clashes(around: [t, j]) < before { break }
                    out.swapAt(t, j)
                }
            }
            t += 1
        }
        if let descriptors {
            // The same places for familiar and new tracks, in the order of least flow cost (never above this one's).
            let items = out.map(\.0)
            let kinds = out.map { $0.1 ? 1 : 0 }
            let order = try configuration.descriptorFlow.order(
                items, kinds: kinds, pattern: kinds, descriptors: descriptors, catalog: catalog)
            return order.map { (items[$0], kinds[$0] == 1) }
        }
        return out
    }

    /// Every listed user's mixes, built in parallel, in the order of `users`.
    /// - Throws: the first error of any user, in user order.
    public func buildAll(
        histories: ListeningHistories, users: [Int32]? = nil, threads: Int = 0,
        progress: (@Sendable (Int) -> Void)? = nil
    ) throws(PlaylistError) -> [Mixes] {
        let list = users ?? histories.activeUsers
        return try PlaylistBatch.run(list, threads: threads, progress: progress) { (u: Int32) throws(PlaylistError) -> Mixes in
            let history = try histories.history(of: u)
            return try build(for: history)
        }
    }
}
