import Foundation
import EncoreCore
import EncoreIndex

/// Keeps the `k` best (item, score) pairs, best first, ties by lower item.
func topScored(_ scores: [Int32: Float], k: Int, source: String) -> [Candidate] {
    var top = TopK(k: k)
    for (i, s) in scores where s > 0 && s.isFinite { top.push(i, s) }
    top.finish()
    return zip(top.indices, top.scores).map { Candidate(item: $0, score: $1, source: source) }
}

/// Candidates from the user's collaborative-filtering vector: the items of largest score `x·yᵢ`, searched in a
/// ``VectorIndex`` over the model's item factors (inner product; HNSW for a large catalog), or by an exact scan of
/// the factors without an index. Scores are the exact `x·yᵢ`.
public struct UserVectorCandidates: CandidateSource {
    /// The source's name.
    public let name: String
    /// The index over the model's item factors (ids = item indices), or `nil` for an exact scan.
    public let index: (any VectorIndex)?

    /// A source searching `index` (or scanning the factors when it is `nil`).
    public init(index: (any VectorIndex)? = nil, name: String = "user-vector") {
        self.index = index
        self.name = name
    }

    public func candidates(for context: PlaylistContext, limit: Int) throws(PlaylistError) -> [Candidate] {
        guard limit > 0, let vector = context.userVector, let model = context.environment.model else { return [] }
        guard vector.count == model.itemFactors.cols else {
            throw .shapeMismatch("user vector of \(vector.count) values, model of \(model.itemFactors.cols) factors")
        }
        var out: [Candidate] = []
        if let index {
            let found: [Neighbor]
            do { found = try index.search(vector, k: limit, filter: context.filter) } catch { throw .index(error) }
            out = found.compactMap { n in
                context.allows(n.id) ? Candidate(item: n.id, score: context.environment.score(n.id, vector: vector), source: name) : nil
            }
            out.sort { $0.score != $1.score ? $0.score > $1.score : $0.item < $1.item }
        } else {
            let n = model.itemCount, f = vector.count
            var scores = [Float](repeating: 0, count: n)
            model.itemFactors.storage.withUnsafeBufferPointer { y in
                vector.withUnsafeBufferPointer { x in
                    scores.withUnsafeMutableBufferPointer { s in
                        BLAS.gemv(y.baseAddress!, m: n, n: f, x.baseAddress!, s.baseAddress!)
                    }
                }
            }
            let picked = scores.withUnsafeBufferPointer { s in
                TopK.select(s, k: limit, exclude: { !context.allows($0) })
            }
            out = zip(picked.indices, picked.scores).map { Candidate(item: $0, score: $1, source: name) }
        }
        return out
    }
}

/// Candidates from users like this one: the tracks liked by the user's nearest neighbors in the model's user space
/// (cosine of user vectors), each scored by the sum of the similarities of the neighbors who like it.
///
/// A track counts as liked by a user when the user liked it explicitly or listened to it at least `minPlays` times
/// (so the source also works from a bare play log, without likes).
public struct SimilarUsersLikes: CandidateSource {
    /// The source's name.
    public let name: String
    /// The number of neighbors asked.
    public let neighborCount: Int
    /// L2-normalized user vectors (one row per user of the model).
    let userVectors: Matrix
    /// An index over the user vectors (ids = user indices, cosine), or `nil` for an exact scan.
    let userIndex: (any VectorIndex)?
    /// What each user likes.
    let liked: GroupedLists

    /// A source over the users of `histories` and their vectors.
    ///
    /// - Parameters:
    ///   - histories: every user's history (likes and play counts).
    ///   - userVectors: the model's user factors (row `u` is user `u` of the histories).
    ///   - index: an index over the user vectors (ids = user indices; cosine), or `nil` for an exact scan.
    ///   - neighbors: how many similar users to ask.
    ///   - minPlays: the listened plays that count as a like.
    /// - Throws: ``PlaylistError/invalidParameter(name:value:expected:)`` for `neighbors < 1`,
    ///   ``PlaylistError/shapeMismatch(_:)`` when the vectors or the index do not fit.
    public init(
        histories: ListeningHistories, userVectors: Matrix, index: (any VectorIndex)? = nil, neighbors: Int = 50,
        minPlays: Float = 3, name: String = "similar-users"
    ) throws(PlaylistError) {
        guard neighbors >= 1 else {
            throw .invalidParameter(name: "neighbors", value: "\(neighbors)", expected: "at least 1")
        }
        guard userVectors.rows <= histories.userCount else {
            throw .shapeMismatch("\(userVectors.rows) user vectors for \(histories.userCount) users")
        }
        if let index, index.dimension != userVectors.cols {
            throw .shapeMismatch("the user index has dimension \(index.dimension), the user vectors \(userVectors.cols)")
        }
        var events: [FeedbackLog.Event] = []
        for u in 0..<Int32(histories.userCount) {
            for i in histories.likedItems(of: u) { events.append(.init(user: u, target: i)) }
            for (i, p) in zip(histories.items(of: u), histories.plays(of: u)) where p >= minPlays {
                events.append(.init(user: u, target: i))
            }
        }
        self.name = name
        self.neighborCount = neighbors
        self.userVectors = userVectors.rowNormalized()
        self.userIndex = index
        self.liked = GroupedLists(userCount: histories.userCount, events: events)
    }

    public func candidates(for context: PlaylistContext, limit: Int) throws(PlaylistError) -> [Candidate] {
        guard limit > 0, let vector = context.userVector, userVectors.rows > 0 else { return [] }
        guard vector.count == userVectors.cols else {
            throw .shapeMismatch("user vector of \(vector.count) values, user space of \(userVectors.cols)")
        }
        var norm: Float = 0
        for x in vector { norm += x * x }
        norm = norm.squareRoot()
        guard norm > 0 else { return [] }
        let q = vector.map { $0 / norm }
        let me = context.history.user ?? -1
        var neighbors: [(user: Int32, similarity: Float)] = []
        let dims = userVectors.cols
        if let userIndex {
            // One more than needed without a filter, the user dropped after: an unfiltered search walks the graph
            // as plain HNSW does (a filter closure per visited node costs more than the extra neighbor).
            let found: [Neighbor]
            do { found = try userIndex.search(q, k: neighborCount + 1, filter: nil) } catch { throw .index(error) }
            neighbors = userVectors.storage.withUnsafeBufferPointer { s in
                q.withUnsafeBufferPointer { qb in
                    found.compactMap { n in
                        n.id != me && n.id >= 0 && Int(n.id) < userVectors.rows
                            ? (n.id, Kernels.dot(s.baseAddress! + Int(n.id) * dims, qb.baseAddress!, dims)) : nil
                    }
                }
            }
            if neighbors.count > neighborCount { neighbors.removeLast(neighbors.count - neighborCount) }
        } else {
            var scores = [Float](repeating: 0, count: userVectors.rows)
            userVectors.storage.withUnsafeBufferPointer { s in
                q.withUnsafeBufferPointer { qb in
                    scores.withUnsafeMutableBufferPointer { out in
                        BLAS.gemv(s.baseAddress!, m: userVectors.rows, n: dims, qb.baseAddress!, out.baseAddress!)
                    }
                }
            }
            let picked = scores.withUnsafeBufferPointer { TopK.select($0, k: neighborCount, exclude: { $0 == me }) }
            neighbors = zip(picked.indices, picked.scores).map { ($0, $1) }
        }
        var score: [Int32: Float] = [:]
        score.reserveCapacity(4 * limit)
        for (v, s) in neighbors where s > 0 {
            for i in liked.list(v) where context.allows(i) { score[i, default: 0] += s }
        }
        return topScored(score, k: limit, source: name)
    }
}

/// Candidates from artists the user cares about: tracks released in the last `windowDays` days (up to the playlist's
/// reference time) by the artists the user follows or plays.
///
/// An artist's affinity is `followWeight` when followed plus its share of the user's recency-weighted listening
/// (relative to the user's top artist); the `maxArtists` artists of highest affinity are read. A track's score is its
/// artist's affinity times a freshness `1 − age / (2 · window)`. Without artists or release dates in the catalog
/// the source gives nothing.
public struct ArtistReleases: CandidateSource {
    /// The source's name.
    public let name: String
    /// How far back a release counts as recent, in days.
    public let windowDays: Int
    /// How many of the user's artists are read.
    public let maxArtists: Int
    /// The affinity a follow adds.
    public let followWeight: Float

    /// A source.
    /// - Throws: ``PlaylistError/invalidParameter(name:value:expected:)`` for a window or artist count below 1.
    public init(windowDays: Int = 28, maxArtists: Int = 50, followWeight: Float = 1, name: String = "new-releases") throws(PlaylistError) {
        guard windowDays >= 1 else { throw .invalidParameter(name: "windowDays", value: "\(windowDays)", expected: ">= 1") }
        guard maxArtists >= 1 else { throw .invalidParameter(name: "maxArtists", value: "\(maxArtists)", expected: ">= 1") }
        self.windowDays = windowDays
        self.maxArtists = maxArtists
        self.followWeight = followWeight
        self.name = name
    }

    public func candidates(for context: PlaylistContext, limit: Int) throws(PlaylistError) -> [Candidate] {
        let catalog = context.catalog
        guard limit > 0, catalog.hasArtists else { return [] }
        let artists = Self.affinities(context.history, catalog: catalog, followWeight: followWeight).prefix(maxArtists)
        let window = Int64(windowDays) * Timestamp.secondsPerDay
        let now = context.referenceTime
        var score: [Int32: Float] = [:]
        for (a, w) in artists where w > 0 {
            for i in catalog.tracks(ofArtist: a) {
                let r = catalog.release(of: i)
                if r == TrackCatalog.unknownTime || r < now - window { break }
                guard r <= now, context.allows(i) else { continue }
                let age = Float(now - r) / Float(window)
                score[i] = max(score[i] ?? 0, w * (1 - 0.5 * age))
            }
        }
        return topScored(score, k: limit, source: name)
    }

    /// The user's artists by decreasing affinity (ties by artist): the artist's share of the user's familiar tracks,
    /// plus `followWeight` when followed; disliked artists left out.
    static func trackAffinities(_ h: UserHistory, catalog: TrackCatalog, followWeight: Float) -> [(key: Int32, value: Float)] {
        var affinity: [Int32: Float] = [:]
        var n: Float = 0
        for p in 0..<h.count where h.isFamiliar(at: p) {
            let a = catalog.artist(of: h.items[p])
            if a >= 0 { affinity[a, default: 0] += 1; n += 1 }
        }
        if n > 0 { for a in affinity.keys { affinity[a]! /= n } }
        for a in h.followedArtists { affinity[a, default: 0] += followWeight }
        for a in h.dislikedArtists { affinity[a] = nil }
        return affinity.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
    }

    /// The user's artists by decreasing affinity (ties by artist): the artist's share of the user's recency-weighted
    /// listening relative to the top artist, plus `followWeight` when followed; disliked artists left out.
    static func affinities(_ h: UserHistory, catalog: TrackCatalog, followWeight: Float) -> [(key: Int32, value: Float)] {
        var affinity: [Int32: Float] = [:]
        for p in 0..<h.count where h.plays[p] > 0 {
            let a = catalog.artist(of: h.items[p])
            if a >= 0 { affinity[a, default: 0] += h.recency[p] > 0 ? h.recency[p] : 1e-6 * h.plays[p] }
        }
        let top = affinity.values.max() ?? 0
        if top > 0 { for a in affinity.keys { affinity[a]! /= top } }
        for a in h.followedArtists { affinity[a, default: 0] += followWeight }
        for a in h.dislikedArtists { affinity[a] = nil }
        return affinity.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
    }
}

/// Candidates near what the user plays most these days: the user's top tracks by recency-weighted plays ("heavy
/// rotation") are looked up in an item space, and each neighbor is scored by `Σ weight(seed) · cos(seed, track)`
/// over the seeds it is near, a seed's weight being its recency weight relative to the top seed.
///
/// The space defaults to the environment's; give another (audio, text) to draw neighbors from it.
public struct HeavyRotationNeighbors: CandidateSource {
    /// The source's name.
    public let name: String
    /// The item space searched, or `nil` for the environment's.
    public let space: ItemSpace?
    /// How many top tracks seed the search.
    public let seeds: Int
    /// Neighbors asked per seed.
    public let perSeed: Int

    /// A source.
    /// - Throws: ``PlaylistError/invalidParameter(name:value:expected:)`` for counts below 1.
    public init(space: ItemSpace? = nil, seeds: Int = 10, perSeed: Int = 30, name: String? = nil) throws(PlaylistError) {
        guard seeds >= 1 else { throw .invalidParameter(name: "seeds", value: "\(seeds)", expected: ">= 1") }
        guard perSeed >= 1 else { throw .invalidParameter(name: "perSeed", value: "\(perSeed)", expected: ">= 1") }
        self.space = space
        self.seeds = seeds
        self.perSeed = perSeed
        self.name = name ?? (space.map { "heavy-rotation-\($0.name)" } ?? "heavy-rotation")
    }

    public func candidates(for context: PlaylistContext, limit: Int) throws(PlaylistError) -> [Candidate] {
        let space = self.space ?? context.space
        guard limit > 0, space.itemCount == context.catalog.itemCount else { return [] }
        let h = context.history
        let top = h.positionsByRecency(limit: seeds) { p in
            h.isFamiliar(at: p) && space.hasVector.contains(h.items[p]) && !h.dislikes(h.items[p], catalog: context.catalog)
        }
        guard let first = top.first else { return [] }
        let useRecency = h.recency[first] > 0
        let best = useRecency ? h.recency[first] : h.plays[first]
        var score: [Int32: Float] = [:]
        score.reserveCapacity(top.count * perSeed)
        for p in top {
            let w = (useRecency ? h.recency[p] : h.plays[p]) / best
            for (i, s) in try space.neighbors(ofItem: h.items[p], k: perSeed, filter: context.filter)
            where s > 0 && context.allows(i) {
                score[i, default: 0] += w * s
            }
        }
        return topScored(score, k: limit, source: name)
    }
}

/// Candidates among every recent release, for this user: the tracks released in the last `windowDays` days (up to the
/// playlist's reference time), scored by the user's model score times an exposure factor `(7 / (age + 7))^γ` (age in
/// days), since a track out for a few days has had little time to be found and is found most in its first weeks.
/// Needs release dates in the catalog and a user vector.
public struct RecentReleases: CandidateSource {
    /// The source's name.
    public let name: String
    /// How far back a release counts, in days.
    public let windowDays: Int
    /// The exponent `γ` of the exposure factor (0: none).
    public let exposureExponent: Float
    /// Items with a known release time, newest first, and their release times.
    let byRelease: [Int32]
    let releases: [Int64]

    /// A source over the releases of `catalog`.
    /// - Throws: ``PlaylistError/invalidParameter(name:value:expected:)`` for a window below 1 day.
    public init(
        catalog: TrackCatalog, windowDays: Int = 28, exposureExponent: Float = 1, name: String = "recent-releases"
    ) throws(PlaylistError) {
        guard windowDays >= 1 else { throw .invalidParameter(name: "windowDays", value: "\(windowDays)", expected: ">= 1") }
        var items: [Int32] = []
        for i in 0..<catalog.itemCount where catalog.trackRelease[i] != TrackCatalog.unknownTime { items.append(Int32(i)) }
        let r = catalog.trackRelease
        items.sort { (a: Int32, b: Int32) -> Bool in
            let ra = r[Int(a)], rb = r[Int(b)]
            return ra != rb ? ra > rb : a < b
        }
        self.name = name
        self.windowDays = windowDays
        self.exposureExponent = exposureExponent
        self.byRelease = items
        self.releases = items.map { r[Int($0)] }
    }

    public func candidates(for context: PlaylistContext, limit: Int) throws(PlaylistError) -> [Candidate] {
        guard limit > 0, let v = context.userVector, context.environment.model != nil else { return [] }
        let now = context.referenceTime
        let oldest = now - Int64(windowDays) * Timestamp.secondsPerDay
        // First item released at or before now (releases are descending).
        var lo = 0, hi = releases.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if releases[mid] > now { lo = mid + 1 } else { hi = mid }
        }
        var top = TopK(k: limit)
        var p = lo
        while p < releases.count && releases[p] >= oldest {
            let i = byRelease[p]
            if context.allows(i) {
                let s = context.environment.score(i, vector: v)
                if s > 0 {
                    let ageDays = Float(now - releases[p]) / Float(Timestamp.secondsPerDay)
                    top.push(i, s * Float(Foundation.pow(Double(7 / (ageDays + 7)), Double(exposureExponent))))
                }
            }
            p += 1
        }
        top.finish()
        return zip(top.indices, top.scores).map { Candidate(item: $0, score: $1, source: name) }
    }
}

/// Candidates by the artists the user listens to: each of the user's top `maxArtists` artists proposes its unplayed
/// tracks, scored by `P(artist | user) · P(track | artist)`: the artist's share of the user's familiar tracks (plus
/// `followWeight` when followed) times the track's share of the artist's listeners (`(listeners + 1) / Σ (listeners
/// + 1)` over the artist's tracks). Under the playlists' per-artist caps this picks the likeliest tracks of each
/// artist the user cares about. Needs artists in the catalog.
public struct ArtistAffinityTracks: CandidateSource {
    /// The source's name.
    public let name: String
    /// How many of the user's artists are read.
    public let maxArtists: Int
    /// The affinity a follow adds.
    public let followWeight: Float
    /// Distinct listeners of each item.
    let listeners: [Float]

    /// A source with the listener counts of `histories`.
    /// - Throws: ``PlaylistError/invalidParameter(name:value:expected:)`` for `maxArtists < 1`.
    public init(
        histories: ListeningHistories, maxArtists: Int = 50, followWeight: Float = 0.5, name: String = "artist-affinity"
    ) throws(PlaylistError) {
        guard maxArtists >= 1 else { throw .invalidParameter(name: "maxArtists", value: "\(maxArtists)", expected: ">= 1") }
        var count = [Float](repeating: 0, count: histories.itemCount)
        for (i, p) in zip(histories.pairItems, histories.pairPlays) where p > 0 { count[Int(i)] += 1 }
        self.name = name
        self.maxArtists = maxArtists
        self.followWeight = followWeight
        self.listeners = count
    }

    public func candidates(for context: PlaylistContext, limit: Int) throws(PlaylistError) -> [Candidate] {
        let catalog = context.catalog
        guard limit > 0, catalog.hasArtists else { return [] }
        let artists = ArtistReleases.trackAffinities(context.history, catalog: catalog, followWeight: followWeight)
            .prefix(maxArtists)
        var score: [Int32: Float] = [:]
        for (a, w) in artists where w > 0 {
            let tracks = catalog.tracks(ofArtist: a)
            var total: Float = 0
            for i in tracks where Int(i) < listeners.count { total += listeners[Int(i)] + 1 }
            for i in tracks where context.allows(i) && Int(i) < listeners.count {
                score[i] = w * (listeners[Int(i)] + 1) / total
            }
        }
        return topScored(score, k: limit, source: name)
    }
}

/// Candidates from the genres the user listens to: `P(genre | user) · P(track | genre)`, the genre's share of the
/// user's familiar tracks times the track's share of the genre's listeners (`(listeners + 1) / Σ (listeners + 1)`),
/// reading each genre's tracks from the most listened. Needs genres in the catalog.
public struct GenreAffinityTracks: CandidateSource {
    /// The source's name.
    public let name: String
    /// Genre `g`'s items are `genreItems[genreStart[g]..<genreStart[g + 1]]`, most listeners first.
    let genreStart: [Int]
    let genreItems: [Int32]
    /// Each item's share of its genre's listeners.
    let share: [Float]

    /// A source with the listener counts of `histories` and the genres of `catalog`.
    /// - Throws: ``PlaylistError/shapeMismatch(_:)`` when they do not have the same items.
    public init(histories: ListeningHistories, catalog: TrackCatalog, name: String = "genre-affinity") throws(PlaylistError) {
        guard histories.itemCount == catalog.itemCount else {
            throw .shapeMismatch("histories of \(histories.itemCount) items, catalog of \(catalog.itemCount)")
        }
        var listeners = [Float](repeating: 1, count: catalog.itemCount)
        for (i, p) in zip(histories.pairItems, histories.pairPlays) where p > 0 { listeners[Int(i)] += 1 }
        let g = catalog.genreNames.count
        var start = [Int](repeating: 0, count: g + 1)
        var total = [Float](repeating: 0, count: g)
        for (i, x) in catalog.trackGenre.enumerated() where x >= 0 {
            start[Int(x) + 1] += 1
            total[Int(x)] += listeners[i]
        }
        for x in 0..<g { start[x + 1] += start[x] }
        var fill = start
        var items = [Int32](repeating: 0, count: start[g])
        var share = [Float](repeating: 0, count: catalog.itemCount)
        for (i, x) in catalog.trackGenre.enumerated() where x >= 0 {
            items[fill[Int(x)]] = Int32(i)
            fill[Int(x)] += 1
            share[i] = listeners[i] / total[Int(x)]
        }
        for x in 0..<g where start[x + 1] - start[x] > 1 {
            items[start[x]..<start[x + 1]].sort { (a: Int32, b: Int32) -> Bool in
                share[Int(a)] != share[Int(b)] ? share[Int(a)] > share[Int(b)] : a < b
            }
        }
        self.name = name
        self.genreStart = start
        self.genreItems = items
        self.share = share
    }

    public func candidates(for context: PlaylistContext, limit: Int) throws(PlaylistError) -> [Candidate] {
        guard limit > 0, genreStart.count > 1 else { return [] }
        let h = context.history
        var counts: [Int32: Float] = [:]
        var n: Float = 0
        for p in 0..<h.count where h.isFamiliar(at: p) {
            let g = context.catalog.trackGenre[Int(h.items[p])]
            if g >= 0 && Int(g) < genreStart.count - 1 { counts[g, default: 0] += 1; n += 1 }
        }
        guard n > 0 else { return [] }
        var top = TopK(k: limit)
        for (g, c) in counts.sorted(by: { $0.key < $1.key }) {
            let w = c / n
            var taken = 0
            for i in genreItems[genreStart[Int(g)]..<genreStart[Int(g) + 1]] where context.allows(i) {
                let s = w * share[Int(i)]
                if s < top.threshold { break }
                top.push(i, s)
                taken += 1
                if taken >= limit { break }
            }
        }
        top.finish()
        return zip(top.indices, top.scores).map { Candidate(item: $0, score: $1, source: name) }
    }
}
