import Foundation
import EncoreCore
import EncoreFactorization
import EncoreIndex

/// What every playlist is built from: the catalog, the item space tracks are compared in, and the factor model
/// that scores tracks for a user and explains the scores.
///
/// A value type holding its large arrays by reference (copy-on-write): copying it is cheap and any number of threads
/// may read one value.
public struct PlaylistEnvironment: Sendable {
    /// Track metadata aligned to the items.
    public let catalog: TrackCatalog
    /// The item space of similarity, diversity and clustering.
    public let space: ItemSpace
    /// The collaborative-filtering model (user scores, fold-in, explanations), or `nil`.
    public let model: ImplicitALS?

    /// An environment.
    /// - Throws: ``PlaylistError/shapeMismatch(_:)`` when the catalog, the space and the model do not have the same
    ///   number of items.
    public init(catalog: TrackCatalog, space: ItemSpace, model: ImplicitALS? = nil) throws(PlaylistError) {
        guard space.itemCount == catalog.itemCount else {
            throw .shapeMismatch("the catalog has \(catalog.itemCount) items, the space '\(space.name)' \(space.itemCount)")
        }
        if let model, model.itemCount != catalog.itemCount {
            throw .shapeMismatch("the catalog has \(catalog.itemCount) items, the model \(model.itemCount)")
        }
        self.catalog = catalog
        self.space = space
        self.model = model
    }

    /// The user vector for a history: the model's row when the model knows the user, else a fold-in of the history's
    /// listened plays; `nil` without a model or without plays.
    /// - Throws: ``PlaylistError/model(_:)`` when the fold-in fails.
    public func userVector(for history: UserHistory) throws(PlaylistError) -> [Float]? {
        guard let model else { return nil }
        if let u = history.user, u >= 0, Int(u) < model.userCount { return model.userFactors.row(Int(u)) }
        let (items, values) = history.playedItemsAndCounts
        guard !items.isEmpty else { return nil }
        do { return try model.foldIn(items: items, values: values) } catch { throw .model(error) }
    }

    /// The model's score `x·yᵢ` of `item` for user vector `vector` (0 without a model).
    public func score(_ item: Int32, vector: [Float]) -> Float {
        guard let model, item >= 0, Int(item) < model.itemCount, vector.count == model.itemFactors.cols else { return 0 }
        let f = vector.count
        return model.itemFactors.storage.withUnsafeBufferPointer { y in
            vector.withUnsafeBufferPointer { Kernels.dot(y.baseAddress! + Int(item) * f, $0.baseAddress!, f) }
        }
    }
}

/// Everything a ``CandidateSource`` sees for one user's playlist.
public struct PlaylistContext: Sendable {
    /// The catalog, item space and model.
    public let environment: PlaylistEnvironment
    /// The user's history.
    public let history: UserHistory
    /// The user's vector in the model, or `nil` (no model, or a user without plays).
    public let userVector: [Float]?
    /// The playlist's reference time (the week's Monday or the day, midnight UTC).
    public let referenceTime: Int64
    /// The playlist's seed (stable per user and week or day).
    public let seed: UInt64
    /// The items that must not be suggested as new (see ``PlaylistRules/excludedItems(for:catalog:unavailable:)``).
    public let excluded: IDBitset

    /// A context.
    public init(
        environment: PlaylistEnvironment, history: UserHistory, userVector: [Float]?, referenceTime: Int64,
        seed: UInt64, excluded: IDBitset
    ) {
        self.environment = environment
        self.history = history
        self.userVector = userVector
        self.referenceTime = referenceTime
        self.seed = seed
        self.excluded = excluded
    }

    /// The catalog.
    public var catalog: TrackCatalog { environment.catalog }
    /// The item space.
    public var space: ItemSpace { environment.space }

    /// Whether `item` may be suggested as new.
    @inline(__always)
    public func allows(_ item: Int32) -> Bool {
        item >= 0 && Int(item) < environment.catalog.itemCount && !excluded.contains(item)
    }

    /// The index filter of the items that may be suggested.
    public var filter: SearchFilter { .excluded(excluded) }

    /// The model's score of `item` for this user, or `nil` without a user vector.
    public func userScore(_ item: Int32) -> Float? {
        guard let v = userVector, environment.model != nil else { return nil }
        return environment.score(item, vector: v)
    }
}

/// One suggested track from one source, with the source's score (larger is better; scales differ between sources).
public struct Candidate: Sendable, Equatable, Hashable {
    /// The item.
    public var item: Int32
    /// The source's score.
    public var score: Float
    /// The source's name.
    public var source: String

    /// A candidate.
    public init(item: Int32, score: Float, source: String) {
        self.item = item
        self.score = score
        self.source = source
    }
}

/// A generator of new tracks for a user: a user vector searched in an index, similar users' likes, artists' new
/// releases, neighbors of the heavy rotation... Playlists take any list of sources, so a new source (or a source over
/// a new item space) plugs in without touching the playlist logic.
///
/// A source must return at most `limit` candidates, distinct, best first, each allowed by the context
/// (``PlaylistContext/allows(_:)``), with positive scores. It is called from many threads at once (one user each).
public protocol CandidateSource: Sendable {
    /// The name recorded with every candidate (`user-vector`, `similar-users`, ...).
    var name: String { get }
    /// Up to `limit` candidates for the context's user, best first.
    func candidates(for context: PlaylistContext, limit: Int) throws(PlaylistError) -> [Candidate]
}

/// One source's opinion of a merged candidate.
public struct SourceScore: Sendable, Equatable, Hashable, Codable {
    /// The source's name.
    public var source: String
    /// The source's score.
    public var score: Float
    /// The candidate's place in the source's list, from 0.
    public var rank: Int

    /// A source score.
    public init(source: String, score: Float, rank: Int) {
        self.source = source
        self.score = score
        self.rank = rank
    }
}

/// A candidate track with every source that suggested it and its combined relevance.
public struct MergedCandidate: Sendable, Equatable {
    /// The item.
    public var item: Int32
    /// The combined relevance (see ``CandidateMerge``).
    public var relevance: Float
    /// The sources that suggested it, in the order the sources were given.
    public var sources: [SourceScore]
}

/// Merges the candidate lists of several sources into one list per track, keeping every source's score.
///
/// The relevance of a track is `Σ wₛ · sₛ / maxₛ` over the sources that suggested it, where `sₛ` is the source's
/// score, `maxₛ` the best score in that source's list and `wₛ` the source's weight, plus, when a user vector is known,
/// `w_cf · max(0, x·yᵢ) / max_pool(x·yᵢ)`: agreement between sources adds up, and the model's opinion of every
/// candidate breaks ties between sources. The sum is then multiplied by every ``RelevancePrior``'s factor.
public enum CandidateMerge {
    /// The merged candidates, by decreasing relevance (ties by item), leaving out those the context does not allow.
    ///
    /// - Parameters:
    ///   - lists: each source's candidates with the source's weight.
    ///   - context: the user's context (for the filter and the user score).
    ///   - userScoreWeight: `w_cf`.
    public static func merge(
        _ lists: [(weight: Float, candidates: [Candidate])], context: PlaylistContext, userScoreWeight: Float,
        priors: [any RelevancePrior] = []
    ) -> [MergedCandidate] {
        let total = lists.reduce(0) { $0 + $1.candidates.count }
        var position: [Int32: Int] = [:]
        position.reserveCapacity(total)
        var merged: [MergedCandidate] = []
        merged.reserveCapacity(total)
        for (weight, list) in lists {
            let best = list.reduce(Float(0)) { max($0, $1.score) }
            for (rank, c) in list.enumerated() where context.allows(c.item) && c.score.isFinite {
                let share = best > 0 ? max(0, c.score) / best : 0
                let s = SourceScore(source: c.source, score: c.score, rank: rank)
                if let p = position[c.item] {
                    if merged[p].sources.contains(where: { $0.source == c.source }) { continue }
                    merged[p].sources.append(s)
                    merged[p].relevance += weight * share
                } else {
                    position[c.item] = merged.count
                    merged.append(MergedCandidate(item: c.item, relevance: weight * share, sources: [s]))
                }
            }
        }
        if userScoreWeight != 0, context.userVector != nil, !merged.isEmpty {
            let scores = merged.map { max(0, context.userScore($0.item) ?? 0) }
            let best = scores.max() ?? 0
            if best > 0 {
                for i in merged.indices { merged[i].relevance += userScoreWeight * scores[i] / best }
            }
        }
        for prior in priors {
            for i in merged.indices { merged[i].relevance *= max(0, prior.factor(for: merged[i].item, context: context)) }
        }
        merged.sort { $0.relevance != $1.relevance ? $0.relevance > $1.relevance : $0.item < $1.item }
        return merged
    }
}

/// A multiplicative factor on a candidate's relevance that does not come from one source: what is known about the
/// track itself (how recently it could be discovered, whether it is in a burst of interest). Factors are applied
/// after the sources are merged, so a prior reweights every source's candidates alike.
public protocol RelevancePrior: Sendable {
    /// The prior's name.
    var name: String { get }
    /// The factor (>= 0) for `item` in `context`; 1 is neutral.
    func factor(for item: Int32, context: PlaylistContext) -> Float
}

/// Fresh tracks first: the factor `((span + 7) / (min(age, span) + 7))^γ`, `age` the days since the track's release
/// at the playlist's reference time (1 for an unknown date).
///
/// Over a listening history of `span` days, a track out for only `age` days has had `(age + 7) / (span + 7)` of the
/// time to be found; among the tracks a user has not played yet, the ones out for a short time are the likeliest to
/// be found next week (fresh releases are played in their first weeks). On the synthetic world this prior is what
/// lets Discover Weekly beat plain ALS under the artist and album caps.
public struct ReleaseExposure: RelevancePrior {
    /// The prior's name.
    public let name: String
    /// The span of the histories, in days (ages are capped at it).
    public let spanDays: Float
    /// The exponent `γ`.
    public let gamma: Float

    /// A prior.
    /// - Throws: ``PlaylistError/invalidParameter(name:value:expected:)`` for a span below a day or a negative `γ`.
    public init(spanDays: Float = 84, gamma: Float = 0.5, name: String = "release-exposure") throws(PlaylistError) {
        guard spanDays >= 1, spanDays.isFinite else {
            throw .invalidParameter(name: "spanDays", value: "\(spanDays)", expected: ">= 1")
        }
        guard gamma >= 0, gamma.isFinite else { throw .invalidParameter(name: "gamma", value: "\(gamma)", expected: ">= 0") }
        self.spanDays = spanDays
        self.gamma = gamma
        self.name = name
    }

    public func factor(for item: Int32, context: PlaylistContext) -> Float {
        let r = context.catalog.release(of: item)
        guard r != TrackCatalog.unknownTime, gamma > 0 else { return 1 }
        let age = min(spanDays, max(0, Float(context.referenceTime - r) / Float(Timestamp.secondsPerDay)))
        return Float(Foundation.pow(Double((spanDays + 7) / (age + 7)), Double(gamma)))
    }
}
