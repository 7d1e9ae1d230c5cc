import Foundation
import EncoreFactorization
import EncoreIndex
import EncorePlaylists

/// One item of a ranked answer.
public struct ScoredItem: Sendable, Equatable {
    /// The external item id.
    public var id: String
    /// The item index in the bundle.
    public var index: Int32
    /// The score (model score `x·y`, cosine, or listener count for popularity).
    public var score: Float
}

/// Where a user's recommendations came from.
public enum RecommendationSource: String, Sendable, Equatable {
    /// The bundle's trained user vector (no real-time change to it).
    case model
    /// A vector folded in from the bundle history and the real-time events.
    case foldIn = "fold_in"
    /// The most listened tracks (a user with no vector yet).
    case popular
}

/// A user's recommendations.
public struct Recommendations: Sendable, Equatable {
    /// The user.
    public var user: String
    /// Whether the bundle knows the user.
    public var known: Bool
    /// Where the ranking came from.
    public var source: RecommendationSource
    /// The items, best first.
    public var items: [ScoredItem]
    /// The model version that answered.
    public var version: String
}

/// A user's Discover Weekly as served.
public struct ServedDiscoverWeekly: Sendable, Equatable {
    /// One track.
    public struct Track: Sendable, Equatable {
        /// The item id.
        public var id: String
        /// The ranking score.
        public var score: Float
        /// The candidate source(s).
        public var source: String
    }
    /// The user.
    public var user: String
    /// The week (a Monday), empty when the bundle has no table.
    public var week: String
    /// The tracks in order, without those played or disliked since the bundle.
    public var tracks: [Track]
}

/// A user's Daily Mixes as served.
public struct ServedDailyMixes: Sendable, Equatable {
    /// One mix.
    public struct Mix: Sendable, Equatable {
        /// The mix name.
        public var name: String
        /// The cover item id.
        public var cover: String
        /// The tracks: id and whether the user played it (the bundle's mark or a play since).
        public var tracks: [(id: String, familiar: Bool)]

        public static func == (a: Mix, b: Mix) -> Bool {
            a.name == b.name && a.cover == b.cover && a.tracks.map(\.id) == b.tracks.map(\.id)
                && a.tracks.map(\.familiar) == b.tracks.map(\.familiar)
        }
    }
    /// The user.
    public var user: String
    /// The day, empty when the bundle has no table.
    public var day: String
    /// The mixes, without disliked tracks (a mix left empty is dropped).
    public var mixes: [Mix]
}

/// A user's "Because you played" rows.
public struct ServedBecauseYouPlayed: Sendable, Equatable {
    /// One track of a row.
    public struct Track: Sendable, Equatable {
        /// The item id.
        public var id: String
        /// Cosine to the seed.
        public var similarity: Float
        /// The user's score for it.
        public var score: Float
        /// The seed's share of its explained score, when computed.
        public var seedShare: Float?
    }
    /// One row.
    public struct Row: Sendable, Equatable {
        /// The seed item id.
        public var seed: String
        /// When the user played the seed (Unix seconds), `nil` for a seed from the bundle history.
        public var playedAt: Int64?
        /// The tracks.
        public var tracks: [Track]
    }
    /// The user.
    public var user: String
    /// The rows, newest seed first.
    public var rows: [Row]
}

/// An explanation as served.
public struct ServedExplanation: Sendable, Equatable {
    /// One history item's part.
    public struct Contribution: Sendable, Equatable {
        /// The history item id.
        public var id: String
        /// Its contribution to the score.
        public var score: Float
        /// Its share of the score.
        public var share: Float
    }
    /// The user.
    public var user: String
    /// The item explained.
    public var item: String
    /// The score of the item for the user's exactly solved vector.
    public var score: Float
    /// The largest contributions first.
    public var contributions: [Contribution]
}

/// A user's real-time state as served (the debug endpoint).
public struct ServedUserState: Sendable, Equatable {
    /// The user.
    public var user: String
    /// Whether the bundle knows the user.
    public var known: Bool
    /// Events applied to this user since the bundle.
    public var eventsApplied: Int
    /// Items played or skipped since the bundle, sorted.
    public var played: [String]
    /// Liked items, sorted.
    public var likes: [String]
    /// Disliked items, sorted.
    public var dislikedTracks: [String]
    /// Disliked artists, sorted.
    public var dislikedArtists: [String]
    /// Followed artists, sorted.
    public var followedArtists: [String]
}

extension RealtimeEngine {
    /// The user's vector with the state it was computed from: the bundle's row when nothing changed it, a fold-in of
    /// the bundle history and the real-time events otherwise, `nil` for a user without any positive signal.
    func vector(
        for user: String, in g: Generation
    ) throws(ServingError) -> (vector: [Float]?, source: RecommendationSource, state: UserRealtimeState, row: Int32?) {
        let state = userState(user, in: g)
        let row = g.model.user(user)
        if !state.hasVectorChanges {
            if let row { return (g.model.model.userFactors.row(Int(row)), .model, state, row) }
            return (nil, .popular, state, nil)
        }
        if let cached = state.cachedVector, cached.revision == state.revision {
            return (cached.vector, cached.vector == nil ? .popular : .foldIn, state, row)
        }
        let (items, values) = foldInHistory(state: state, row: row, model: g.model)
        var v: [Float]? = nil
        if !items.isEmpty {
            do { v = try g.model.model.foldIn(items: items, values: values) } catch { throw .model(error.description) }
        }
        g.storeVector(user, revision: state.revision, vector: v)
        return (v, v == nil ? .popular : .foldIn, state, row)
    }

    /// The history a user's vector is folded in from: the bundle's row (its trained confidences) with one listen
    /// added for each listened play, like and playlist add since, weighted as training weighted listens (the
    /// bundle's ``ConfidenceContext``; a bundle without one adds 1 per listen to the stored values), without
    /// disliked tracks.
    func foldInHistory(state: UserRealtimeState, row: Int32?, model: ServingModel) -> (items: [Int32], values: [Float]) {
        var trained: (items: [Int32], values: [Float]) = ([], [])
        if let row { trained = ImplicitALS.history(of: row, in: model.bundle.userItems) }
        var added: [Int32: Float] = [:]
        // Posted tracks (item numbers past the bundle's) have no learned vector to fold in.
        let n = Int32(model.itemCount)
        for (i, c) in state.listenCounts where i < n { added[i, default: 0] += Float(c) }
        for i in state.likes where i < n { added[i, default: 0] += 1 }
        for i in state.playlistAdds where i < n { added[i, default: 0] += 1 }
        var merged: [Int32: Float] = [:]
        if let context = model.bundle.confidence {
            let weighted = context.row(items: trained.items, confidences: trained.values, adding: added)
            for (i, v) in zip(weighted.items, weighted.values) { merged[i] = v }
        } else {
            for (i, v) in zip(trained.items, trained.values) { merged[i, default: 0] += v }
            for (i, n) in added { merged[i, default: 0] += n }
        }
        for i in state.dislikedTracks where i < n { merged[i] = nil }
        let items = merged.keys.sorted().filter { merged[$0]! > 0 }
        return (items, items.map { merged[$0]! })
    }

    /// Items a user must never be shown: disliked tracks and the tracks of disliked artists.
    func disliked(_ state: UserRealtimeState, catalog: TrackCatalog) -> Set<Int32> {
        var out = state.dislikedTracks
        for a in state.dislikedArtists { out.formUnion(catalog.tracks(ofArtist: a)) }
        return out
    }

    /// Every item the user has played: the bundle row and everything played or skipped since.
    func played(_ state: UserRealtimeState, row: Int32?, model: ServingModel) -> Set<Int32> {
        var out = state.touched
        if let row { out.formUnion(model.bundle.userItems.columns(ofRow: Int(row))) }
        return out
    }

    /// The ids of `ids` the bundle knows, as item indices (unknown ids are ignored).
    func indices(_ ids: [String], in model: ServingModel) -> [Int32] { ids.compactMap { model.item($0) } }

    /// The top `k` items for `user`.
    ///
    /// - Parameters:
    ///   - excludePlayed: leave out the items of the bundle history and every item played or skipped since.
    ///   - allow: when given, only these item ids are candidates (unknown ids ignored).
    ///   - deny: item ids never returned.
    /// Disliked tracks and the tracks of disliked artists are always left out, and so are flagged tracks. A user
    /// without a vector (unknown to the bundle, no play yet) gets the most listened tracks.
    /// - Throws: ``ServingError/invalidParameter(name:message:)`` for `k` outside 1...1000,
    ///   ``ServingError/model(_:)`` when the fold-in fails.
    public func recommendations(
        user: String, k: Int, excludePlayed: Bool = true, allow: [String]? = nil, deny: [String] = []
    ) throws(ServingError) -> Recommendations {
        guard (1...1000).contains(k) else { throw .invalidParameter(name: "k", message: "must be in 1...1000, got \(k)") }
        let g = generation
        let m = g.model
        let live = g.live
        let n = Int32(m.itemCount)
        let (vector, source, state, row) = try vector(for: user, in: g)
        var exclude = disliked(state, catalog: m.catalog)
        exclude.formUnion(deny.compactMap { live.item($0) })
        if excludePlayed { exclude.formUnion(played(state, row: row, model: m)) }
        // Posted as flagged, or by an artist the user dislikes: never suggested.
        exclude.formUnion(live.excluded(artists: state.dislikedArtists))
        let flagged = m.catalog.flagged
        let allowedAll: Set<Int32>? = allow.map { Set($0.compactMap { live.item($0) }) }
        let allowed = allowedAll.map { $0.filter { $0 < n } }
        var items: [ScoredItem] = []
        if let vector {
            var ranked: [(Int32, Float)] = []
            if allowed == nil, let index = m.recommendationIndex {
                var blocked = flagged
                for i in exclude where i < n { blocked.insert(i) }
                if let found = try? index.search(vector, k: k, filter: .excluded(blocked)) {
                    ranked = found.map { ($0.id, m.environment.score($0.id, vector: vector)) }
                    ranked.sort { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
                }
            }
            if ranked.count < k {
                for i in 0..<n where flagged.contains(i) { exclude.insert(i) }
                let r: RankedItems
                do {
                    r = try m.model.recommend(vector: vector, k: k, exclude: exclude.filter { $0 < n }, allow: allowed)
                } catch {
                    throw .model(error.description)
                }
                ranked = Array(zip(r.items, r.scores))
            }
            // Posted tracks with a predicted vector, scored by the same user vector, merged by score (a bundle
            // track posted without plays takes its predicted score over its zero item factors' 0).
            let blocked = exclude
            let found = try live.recommend(vector, k: k) { i in
                !blocked.contains(i) && (allowedAll?.contains(i) ?? true) && !(i < n && flagged.contains(i))
            }
            if !found.isEmpty {
                var best: [Int32: Float] = [:]
                for (i, score) in ranked { best[i] = score }
                for (i, score) in found { best[i] = score }
                ranked = best.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(k).map { ($0.key, $0.value) }
            }
            items = ranked.map { ScoredItem(id: live.itemID($0.0), index: $0.0, score: $0.1) }
        } else {
            let listeners = m.listenerCounts
            for i in m.popular where items.count < k {
                if exclude.contains(i) || flagged.contains(i) { continue }
                if let allowed, !allowed.contains(i) { continue }
                items.append(ScoredItem(id: m.itemID(i), index: i, score: Float(listeners[Int(i)])))
            }
        }
        return Recommendations(user: user, known: row != nil, source: vector == nil ? .popular : source,
                               items: items, version: m.version)
    }

    /// The user's Discover Weekly from the bundle's table, without the tracks played, skipped or disliked since
    /// (empty for a user the bundle does not know, or a bundle without the table).
    public func discoverWeekly(user: String) -> ServedDiscoverWeekly {
        let g = generation
        let m = g.model
        guard let table = m.bundle.discoverWeekly else { return ServedDiscoverWeekly(user: user, week: "", tracks: []) }
        guard let row = m.user(user) else { return ServedDiscoverWeekly(user: user, week: table.week, tracks: []) }
        let state = userState(user, in: g)
        let tracks = table.tracks(ofUser: Int(row)).filter { t in
            !state.touched.contains(t.item) && !state.dislikes(t.item, catalog: m.catalog)
        }.map { ServedDiscoverWeekly.Track(id: m.itemID($0.item), score: $0.score, source: $0.source) }
        return ServedDiscoverWeekly(user: user, week: table.week, tracks: tracks)
    }

    /// The user's Daily Mixes from the bundle's table, without disliked tracks; a track played since the bundle is
    /// marked familiar, and a mix whose cover was disliked takes its first remaining track as cover.
    public func dailyMixes(user: String) -> ServedDailyMixes {
        let g = generation
        let m = g.model
        guard let table = m.bundle.dailyMixes else { return ServedDailyMixes(user: user, day: "", mixes: []) }
        guard let row = m.user(user) else { return ServedDailyMixes(user: user, day: table.day, mixes: []) }
        let state = userState(user, in: g)
        var mixes: [ServedDailyMixes.Mix] = []
        for mix in table.mixes(ofUser: Int(row)) {
            let kept = mix.tracks.filter { !state.dislikes($0.item, catalog: m.catalog) }
            guard let first = kept.first else { continue }
            let cover = state.dislikes(mix.cover, catalog: m.catalog) ? first.item : mix.cover
            mixes.append(.init(name: mix.name, cover: m.itemID(cover), tracks: kept.map {
                (m.itemID($0.item), $0.familiar || state.touched.contains($0.item))
            }))
        }
        return ServedDailyMixes(user: user, day: table.day, mixes: mixes)
    }

    /// "Because you played X" rows for the user's most recent listened plays since the bundle (newest first), then,
    /// when fewer than `rows`, for the user's strongest bundle-history items.
    ///
    /// Each row holds tracks near X in the item space that the user never played nor disliked, re-ranked by the
    /// user's current vector, with X's share of each track's explained score.
    /// - Throws: ``ServingError/invalidParameter(name:message:)`` for `rows` outside 1...20, `count` outside 1...50;
    ///   ``ServingError/model(_:)`` when the model or index fails.
    public func becauseYouPlayed(user: String, rows: Int = 3, count: Int = 10) throws(ServingError) -> ServedBecauseYouPlayed {
        guard (1...20).contains(rows) else { throw .invalidParameter(name: "rows", message: "must be in 1...20, got \(rows)") }
        guard (1...50).contains(count) else { throw .invalidParameter(name: "count", message: "must be in 1...50, got \(count)") }
        let g = generation
        let m = g.model
        let (vector, _, state, row) = try vector(for: user, in: g)
        // Seeds from the bundle's items (a posted track has no place in the "Because you played" item space).
        var seeds: [(Int32, Int64?)] = state.recentListens(limit: .max).filter { $0.item < Int32(m.itemCount) }
            .prefix(rows).map { ($0.item, $0.timestamp) }
        let history = foldInHistory(state: state, row: row, model: m)
        if seeds.count < rows, let row {
            let (items, values) = ImplicitALS.history(of: row, in: m.bundle.userItems)
            let order = items.indices.sorted { values[$0] != values[$1] ? values[$0] > values[$1] : items[$0] < items[$1] }
            for p in order where seeds.count < rows && !seeds.contains(where: { $0.0 == items[p] }) {
                if state.dislikes(items[p], catalog: m.catalog) { continue }
                seeds.append((items[p], nil))
            }
        }
        guard !seeds.isEmpty else { return ServedBecauseYouPlayed(user: user, rows: []) }
        // The history the playlist code filters with: the bundle row and everything touched since.
        let bundleItems = Int32(m.itemCount)
        let items = played(state, row: row, model: m).filter { $0 < bundleItems }.sorted()
        let weights = Dictionary(uniqueKeysWithValues: zip(history.items, history.values))
        let plays = items.map { weights[$0] ?? 0 }
        let built: [BecauseYouPlayed.Row]
        do {
            let h = try UserHistory(
                userKey: user, user: row, asOf: Int64(Date().timeIntervalSince1970) + 1, items: items, plays: plays,
                skips: items.map { _ in 0 }, firstPlayed: items.map { _ in 0 }, lastPlayed: items.map { _ in 0 },
                recency: plays, likes: Array(state.likes.filter { $0 < bundleItems }), dislikedTracks: Array(state.dislikedTracks.filter { $0 < bundleItems }),
                dislikedArtists: Array(state.dislikedArtists), followedArtists: Array(state.followedArtists))
            var builder = m.becauseYouPlayed
            if count != builder.configuration.count {
                var c = builder.configuration
                c.count = count
                c.poolSize = max(c.poolSize, count * 3)
                builder = try BecauseYouPlayed(environment: m.environment, configuration: c, referenceTime: builder.referenceTime)
            }
            built = try builder.rows(
                for: h, seeds: seeds.map(\.0), userVector: vector,
                confidence: history.items.isEmpty ? nil : history)
        } catch { throw .model(error.description) }
        let out = zip(seeds, built).map { seed, r in
            ServedBecauseYouPlayed.Row(seed: m.itemID(seed.0), playedAt: seed.1, tracks: r.items.map {
                .init(id: m.itemID($0.item), similarity: $0.similarity, score: $0.score, seedShare: $0.seedShare)
            })
        }
        return ServedBecauseYouPlayed(user: user, rows: out)
    }

    /// The `k` items most similar to `item` in `space` (`cf`, `audio`, `text`, `sequence` or `hybrid`), by cosine.
    ///
    /// `cf`: the item factors of the tracks with plays, through the cosine index when present. The other spaces:
    /// the bundle's vectors of the space by exact scan, plus the posted tracks' vectors through the live indexes
    /// (`hybrid`: predicted vectors; `audio`, `text`: posted embeddings and text vectors). A track posted again
    /// with other content is found by its new vectors only.
    /// - Throws: ``ServingError/unknownItem(_:)``, ``ServingError/invalidParameter(name:message:)`` for `k`
    ///   outside 1...1000 or an unknown space, ``ServingError/notInSpace(item:space:reason:)`` when the item has no
    ///   vector in the space, ``ServingError/model(_:)`` when an index fails.
    public func similar(item: String, k: Int, space: String = "cf") throws(ServingError) -> [ScoredItem] {
        guard (1...1000).contains(k) else { throw .invalidParameter(name: "k", message: "must be in 1...1000, got \(k)") }
        guard ServingModel.similaritySpaces.contains(space) else {
            throw .invalidParameter(name: "space", message: "must be one of \(ServingModel.similaritySpaces.joined(separator: ", ")), got '\(space)'")
        }
        let g = generation
        let m = g.model
        let live = g.live
        guard let i = live.item(item) else { throw .unknownItem(item) }
        let n = Int32(m.itemCount)
        if space == "cf" {
            guard i < n else {
                throw .notInSpace(item: item, space: space, reason: "a posted track has no plays, so no learned vector; try space=hybrid")
            }
            guard m.environment.space.hasVector.contains(i) else {
                throw .notInSpace(item: item, space: space, reason: "no one played it in the training data")
            }
            let near: [(item: Int32, similarity: Float)]
            do { near = try m.environment.space.neighbors(ofItem: i, k: k) } catch { throw .model(error.description) }
            return near.map { ScoredItem(id: m.itemID($0.item), index: $0.item, score: $0.similarity) }
        }
        let bundleSpace = try m.contentSpace(space)
        // The query: the posted vector (it replaces the bundle's), else the bundle's.
        var query = live.vector(of: i, space: space)
        if query == nil, i < n, let b = bundleSpace, b.hasVector.contains(i) { query = b.vector(i) }
        guard let query else {
            let reason: String
            switch space {
            case "sequence": reason = i < n ? "the bundle's /sequence/vectors does not cover it" : "a posted track is in no play session"
            case "hybrid": reason = "it has neither a learned nor a predicted vector (no plays, and no content or known artist to predict from)"
            case "audio": reason = "it has no audio embedding in the bundle and none was posted"
            default: reason = "it has no text vector in the bundle and none was posted"
            }
            throw .notInSpace(item: item, space: space, reason: reason)
        }
        var best: [Int32: Float] = [:]
        if let b = bundleSpace {
            // A bundle track posted with new content is compared by the posted vector (below), not the bundle's.
            let stale = live.replacedBundleItems(space: space)
            let filter: SearchFilter? = stale.isEmpty ? nil : .predicate { !stale.contains($0) }
            let found: [(item: Int32, similarity: Float)]
            do {
                found = try b.neighbors(of: query, k: k + 1, filter: filter)
            } catch { throw .model(error.description) }
            for x in found where x.item != i { best[x.item] = x.similarity }
        }
        for x in try live.neighbors(space: space, of: query, k: k, besides: i) { best[x.item] = x.similarity }
        return best.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(k).map {
            ScoredItem(id: live.itemID($0.key), index: $0.key, score: $0.value)
        }
    }

    /// A track's descriptors and what is known of it, as ``features(item:)`` serves them.
    public struct ItemFeatures: Sendable, Equatable {
        /// The item id.
        public var item: String
        /// The descriptors by name: the bundle's `/audio/descriptors` row, with posted ones replacing them.
        public var descriptors: [String: Float]
        /// Where the descriptors come from: `bundle`, `posted` or `bundle+posted`.
        public var source: String
        /// The posted track's record, when it was posted.
        public var posted: PostedTrack?
        /// Where its CF vector comes from (see ``LiveCatalog/Entry/provenance``), for a posted track.
        public var provenance: String?
    }

    /// The descriptors of `item`: the bundle's (`/audio/descriptors`), or the ones posted with the track.
    /// - Throws: ``ServingError/unknownItem(_:)``, ``ServingError/noFeatures(item:)`` when it has none.
    public func features(item: String) throws(ServingError) -> ItemFeatures {
        let g = generation
        let m = g.model
        let live = g.live
        guard let i = live.item(item) else { throw .unknownItem(item) }
        var out: [String: Float] = [:]
        var sources: [String] = []
        if let c = m.bundle.contentSpaces, let d = c.audioDescriptors, let row = d.vector(of: i) {
            // NaN marks a descriptor the analysis could not compute: left out.
            for (name, v) in zip(c.descriptorNames, row) where v.isFinite { out[name] = v }
            sources.append("bundle")
        }
        let entry = live.entry(i)
        if let posted = entry?.track.descriptors, !posted.isEmpty {
            for (name, v) in posted { out[name] = v }
            sources.append("posted")
        }
        guard !sources.isEmpty else { throw .noFeatures(item: item) }
        return ItemFeatures(item: item, descriptors: out, source: sources.joined(separator: "+"), posted: entry?.track,
                            provenance: entry?.provenance)
    }

    /// Why `item` scores as it does for `user`: the contributions of the user's history (bundle and real-time), the
    /// `limit` largest first.
    /// - Throws: ``ServingError/unknownItem(_:)``, ``ServingError/model(_:)``.
    public func explain(user: String, item: String, limit: Int = 10) throws(ServingError) -> ServedExplanation {
        let g = generation
        let m = g.model
        guard let i = m.item(item) else { throw .unknownItem(item) }
        let state = userState(user, in: g)
        let (items, values) = foldInHistory(state: state, row: m.user(user), model: m)
        guard !items.isEmpty else { return ServedExplanation(user: user, item: item, score: 0, contributions: []) }
        let e: Explanation
        do { e = try m.model.explain(item: i, items: items, values: values) } catch { throw .model(error.description) }
        return ServedExplanation(user: user, item: item, score: e.score, contributions: e.contributions.prefix(max(0, limit)).map {
            .init(id: m.itemID($0.item), score: $0.score, share: $0.share)
        })
    }

    /// The user's real-time state, for debugging and the crash test.
    public func state(user: String) -> ServedUserState {
        let g = generation
        let m = g.model
        let s = userState(user, in: g)
        func ids(_ set: Set<Int32>) -> [String] { set.sorted().map { g.live.itemID($0) } }
        func artists(_ set: Set<Int32>) -> [String] { set.sorted().map { m.catalog.artistIDs.id(at: $0) } }
        return ServedUserState(
            user: user, known: m.user(user) != nil, eventsApplied: s.eventsApplied, played: ids(s.touched),
            likes: ids(s.likes), dislikedTracks: ids(s.dislikedTracks), dislikedArtists: artists(s.dislikedArtists),
            followedArtists: artists(s.followedArtists))
    }
}
