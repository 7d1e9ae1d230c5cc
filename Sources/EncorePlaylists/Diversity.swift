/// Maximal marginal relevance (Carbonell and Goldstein 1998) over an item space: picks tracks one at a time,
/// each maximizing `λ · relevance / max relevance − (1 − λ) · max cos(track, already picked)`, so the list stays
/// relevant without piling up near-duplicates. The artist and album caps of a ``CapCounter`` are enforced while
/// picking.
public struct Diversifier: Sendable, Equatable, Codable {
    /// The weight of relevance against novelty, in `[0, 1]`: 1 ranks by relevance alone.
    public var lambda: Float

    /// A diversifier.
    public init(lambda: Float = 0.8) { self.lambda = lambda }

    /// Checks `lambda` is in `[0, 1]`.
    public func validate() throws(PlaylistError) {
        guard lambda >= 0, lambda <= 1 else {
            throw .invalidParameter(name: "lambda", value: "\(lambda)", expected: "a value in [0, 1]")
        }
    }

    /// Up to `count` of `candidates` in the order picked (ties: the earlier candidate), skipping those the caps do
    /// not admit.
    ///
    /// - Parameters:
    ///   - candidates: the pool, any order.
    ///   - relevance: the relevance of each candidate (parallel to `candidates`).
    ///   - caps: the caps, already holding any tracks placed before.
    ///   - placed: tracks already in the playlist: a candidate near one of them is as redundant as near a pick.
    /// - Returns: positions in `candidates`.
    public func select(
        _ candidates: [Int32], relevance: [Float], count: Int, space: ItemSpace, catalog: TrackCatalog,
        caps: CapCounter, placed: [Int32] = []
    ) -> [Int] {
        let n = min(candidates.count, relevance.count)
        guard count > 0, n > 0 else { return [] }
        var caps = caps
        let best = relevance.prefix(n).max() ?? 0
        let norm = relevance.prefix(n).map { best > 0 ? max(0, $0) / best : 0 }
        var redundancy = [Float](repeating: 0, count: n)
        for i in 0..<n { for p in placed { redundancy[i] = max(redundancy[i], space.cosine(candidates[i], p)) } }
        var taken = [Bool](repeating: false, count: n)
        var picked: [Int] = []
        while picked.count < count {
            var choice = -1
            var value = -Float.infinity
            for i in 0..<n where !taken[i] {
                let v = lambda * norm[i] - (1 - lambda) * redundancy[i]
                if v > value, caps.admits(candidates[i], catalog: catalog) {
                    value = v
                    choice = i
                }
            }
            guard choice >= 0 else { break }
            taken[choice] = true
            picked.append(choice)
            caps.add(candidates[choice], catalog: catalog)
            for i in 0..<n where !taken[i] {
                redundancy[i] = max(redundancy[i], space.cosine(candidates[i], candidates[choice]))
            }
        }
        return picked
    }
}

/// Orders a playlist so it flows: it opens with the most relevant track, then each next track is the one that best
/// combines closeness to the previous track (cosine in the item space) and its own relevance, never by the artist of
/// the track before it while that can be avoided (tracks of unknown artists never clash).
///
/// At each step a track is only taken when the tracks left can still be ordered without two of one artist side by
/// side, so when such an order exists the result has one.
public struct FlowOrdering: Sendable, Equatable, Codable {
    /// The weight of closeness to the previous track against relevance, in `[0, 1]`.
    public var similarityWeight: Float

    /// An ordering.
    public init(similarityWeight: Float = 0.5) { self.similarityWeight = similarityWeight }

    /// A permutation of `0..<items.count`: the playing order.
    public func order(_ items: [Int32], relevance: [Float], space: ItemSpace, catalog: TrackCatalog) -> [Int] {
        let n = items.count
        guard n > 1 else { return Array(0..<n) }
        let best = relevance.prefix(n).max() ?? 0
        let rel = (0..<n).map { i in i < relevance.count && best > 0 ? max(0, relevance[i]) / best : 0 }
        var remaining = [Int: Int]()  // artist -> count among remaining
        for it in items {
            let a = catalog.artist(of: it)
            if a >= 0 { remaining[Int(a), default: 0] += 1 }
        }
        var taken = [Bool](repeating: false, count: n)
        var out: [Int] = []
        var previous: Int = -1
        var left = n

        /// Whether the tracks left after taking one of artist `a` can follow it without a clash.
        func feasible(after a: Int) -> Bool {
            let m = left - 1
            for (artist, c0) in remaining {
                let c = artist == a ? c0 - 1 : c0
                if artist == a ? c > m / 2 : c > (m + 1) / 2 { return false }
            }
            return true
        }

        while left > 0 {
            var choice = -1, fallback = -1, anyChoice = -1
            var value = -Float.infinity, fallbackValue = -Float.infinity, anyValue = -Float.infinity
            for i in 0..<n where !taken[i] {
                let v: Float
                if let last = out.last {
                    v = similarityWeight * space.cosine(items[last], items[i]) + (1 - similarityWeight) * rel[i]
                } else {
                    v = rel[i]
                }
                if v > anyValue { anyValue = v; anyChoice = i }
                let a = Int(catalog.artist(of: items[i]))
                if a >= 0 && a == previous { continue }
                if v > fallbackValue { fallbackValue = v; fallback = i }
                if v > value && feasible(after: a) { value = v; choice = i }
            }
            let pick = choice >= 0 ? choice : (fallback >= 0 ? fallback : anyChoice)
            taken[pick] = true
            out.append(pick)
            let a = Int(catalog.artist(of: items[pick]))
            if a >= 0 { remaining[a]! -= 1 }
            previous = a
            left -= 1
        }
        return out
    }

    /// Whether two tracks of one (known) artist are side by side in `items`.
    public static func hasAdjacentArtists(_ items: [Int32], catalog: TrackCatalog) -> Bool {
        for j in items.indices.dropFirst() {
            let a = catalog.artist(of: items[j])
            if a >= 0 && a == catalog.artist(of: items[j - 1]) { return true }
        }
        return false
    }
}
