import EncoreCore

/// Candidates from global popularity: the tracks with the most distinct listeners, scored by their listener count
/// relative to the most popular track. A weak source that fills a playlist when the personal sources run dry (a
/// new user, a user whose neighborhood is all played).
public struct PopularTracks: CandidateSource {
    /// The source's name.
    public let name: String
    /// Items by decreasing listener count (ties by item), only those with listeners.
    package let ranking: [Int32]
    let listeners: [Float]

    /// The popularity of the items of `histories` (distinct users with a listened play).
    public init(histories: ListeningHistories, name: String = "popular") {
        var count = [Float](repeating: 0, count: histories.itemCount)
        for (i, p) in zip(histories.pairItems, histories.pairPlays) where p > 0 { count[Int(i)] += 1 }
        self.init(listeners: count, name: name)
    }

    /// The popularity given by one listener count (or any popularity measure) per item.
    public init(listeners: [Float], name: String = "popular") {
        self.name = name
        self.listeners = listeners
        var items: [Int32] = []
        for i in 0..<listeners.count where listeners[i] > 0 { items.append(Int32(i)) }
        items.sort { (a: Int32, b: Int32) -> Bool in
            let la = listeners[Int(a)], lb = listeners[Int(b)]
            return la != lb ? la > lb : a < b
        }
        ranking = items
    }

    public func candidates(for context: PlaylistContext, limit: Int) throws(PlaylistError) -> [Candidate] {
        guard limit > 0, let first = ranking.first else { return [] }
        let top = listeners[Int(first)]
        var out: [Candidate] = []
        for i in ranking where context.allows(i) {
            out.append(Candidate(item: i, score: listeners[Int(i)] / top, source: name))
            if out.count >= limit { break }
        }
        return out
    }
}

/// Candidates being discovered right now, for this user: tracks whose share of first listens in the last
/// `windowDays` days (before the histories' moment) is well above the catalog's, scored by the user's model score
/// times that share relative to the catalog's.
///
/// A track's trend is `(recent + k·ρ) / (listeners + k)`, its recent first listens over all its listeners, shrunk
/// toward the catalog-wide share `ρ` with `k` pseudo-listeners. Fresh releases and tracks in a burst of interest
/// have a high trend, and a user who has not yet played them is more likely to do so next week than for an old track
/// of the same model score. The source needs only a timestamped play log (no catalog).
public struct TrendingTracks: CandidateSource {
    /// The source's name.
    public let name: String
    /// The trending items (trend at least `minimumLift · ρ`) and their lift `trend / ρ`.
    let items: [Int32]
    let lift: [Float]

    /// The trends of the items of `histories`.
    /// - Parameters:
    ///   - windowDays: the recent window, ending at the histories' moment.
    ///   - shrinkage: the pseudo-listeners `k`.
    ///   - minimumLift: the least `trend / ρ` of a candidate.
    public init(
        histories: ListeningHistories, windowDays: Int = 7, shrinkage: Float = 5, minimumLift: Float = 1.5,
        name: String = "trending"
    ) {
        let since = histories.asOf == Int64.max ? Int64.max
            : histories.asOf - Int64(max(1, windowDays)) * Timestamp.secondsPerDay
        var recent = [Float](repeating: 0, count: histories.itemCount)
        var total = [Float](repeating: 0, count: histories.itemCount)
        for p in 0..<histories.pairItems.count where histories.pairPlays[p] > 0 {
            let i = Int(histories.pairItems[p])
            total[i] += 1
            if histories.hasTimestamps && histories.pairFirst[p] >= since { recent[i] += 1 }
        }
        let allRecent = recent.reduce(0, +), all = total.reduce(0, +)
        let rho = all > 0 ? allRecent / all : 0
        var items: [Int32] = [], lift: [Float] = []
        if rho > 0 {
            for i in 0..<recent.count where recent[i] > 0 {
                let trend = (recent[i] + shrinkage * rho) / (total[i] + shrinkage)
                if trend >= minimumLift * rho {
                    items.append(Int32(i))
                    lift.append(trend / rho)
                }
            }
        }
        self.name = name
        self.items = items
        self.lift = lift
    }

    public func candidates(for context: PlaylistContext, limit: Int) throws(PlaylistError) -> [Candidate] {
        guard limit > 0, let v = context.userVector, context.environment.model != nil else { return [] }
        var top = TopK(k: limit)
        for (i, l) in zip(items, lift) where context.allows(i) {
            let s = context.environment.score(i, vector: v)
            if s > 0 { top.push(i, s * l) }
        }
        top.finish()
        return zip(top.indices, top.scores).map { Candidate(item: $0, score: $1, source: name) }
    }
}
