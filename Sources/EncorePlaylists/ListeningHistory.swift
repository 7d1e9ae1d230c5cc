import Foundation
import EncoreCore
import EncoreData

/// One listening event of one user, as the server sees it.
public struct ListeningEvent: Sendable, Equatable {
    /// The item index.
    public var item: Int32
    /// When, in Unix seconds.
    public var timestamp: Int64
    /// Listened plays this event stands for (1 for one play; 0 for a skip).
    public var plays: Float
    /// Whether the event is a skip (under 30 s).
    public var isSkip: Bool

    /// An event; a skip counts no listened play.
    public init(item: Int32, timestamp: Int64, plays: Float = 1, isSkip: Bool = false) {
        self.item = item
        self.timestamp = timestamp
        self.plays = isSkip ? 0 : max(0, plays)
        self.isSkip = isSkip
    }
}

/// Everything the playlists need to know about one user at one moment (``asOf``): every item the user ever touched
/// (played or skipped) with play and skip counts, first and last times and a recency weight, and the user's likes,
/// dislikes and follows.
///
/// Items are sorted and unique; the per-item arrays are parallel to ``items``. The recency weight of an item is
/// `Σ plays · 2^(−age / half-life)` over its listened plays, `age = asOf − timestamp`, so the plays of the last days
/// count most. Because the decay is exponential, the weights seen from any later time are the same up to one factor:
/// their order and proportions do not depend on the reference time.
///
/// Built in bulk by ``ListeningHistories`` or for one user from events by
/// ``init(userKey:user:asOf:halfLifeDays:events:likes:dislikedTracks:dislikedArtists:followedArtists:)`` (the server).
public struct UserHistory: Sendable, Equatable {
    /// The user's stable external id: the key of the playlists' seeds.
    public var userKey: String
    /// The user's row in the model, or `nil` for a user the model does not know (folded in).
    public var user: Int32?
    /// The moment of the history: later events are not in it.
    public var asOf: Int64
    /// The half-life of the recency weights, in days.
    public var halfLifeDays: Double
    /// Every item the user played or skipped, ascending.
    public var items: [Int32]
    /// Listened plays of each item (0 when it was only skipped).
    public var plays: [Float]
    /// Skips of each item.
    public var skips: [Int32]
    /// The first event of each item (Unix seconds; 0 without timestamps).
    public var firstPlayed: [Int64]
    /// The last event of each item (Unix seconds; 0 without timestamps).
    public var lastPlayed: [Int64]
    /// The recency weight of each item (see the type's documentation; the play count without timestamps).
    public var recency: [Float]
    /// Liked items, ascending.
    public var likes: [Int32]
    /// Disliked items, ascending.
    public var dislikedTracks: [Int32]
    /// Disliked artists, ascending.
    public var dislikedArtists: [Int32]
    /// Followed artists, ascending.
    public var followedArtists: [Int32]

    /// A history from its columns (items ascending and unique, per-item columns parallel to them).
    /// - Throws: ``PlaylistError/shapeMismatch(_:)`` or ``PlaylistError/invalidParameter(name:value:expected:)`` when
    ///   the columns disagree or items are not ascending.
    public init(
        userKey: String, user: Int32?, asOf: Int64, halfLifeDays: Double = 7, items: [Int32], plays: [Float],
        skips: [Int32], firstPlayed: [Int64], lastPlayed: [Int64], recency: [Float], likes: [Int32] = [],
        dislikedTracks: [Int32] = [], dislikedArtists: [Int32] = [], followedArtists: [Int32] = []
    ) throws(PlaylistError) {
        let n = items.count
        guard plays.count == n, skips.count == n, firstPlayed.count == n, lastPlayed.count == n, recency.count == n else {
            throw .shapeMismatch("history of '\(userKey)' has \(n) items but columns of \(plays.count), \(skips.count), "
                + "\(firstPlayed.count), \(lastPlayed.count), \(recency.count) values")
        }
        for i in 1..<max(1, n) where items[i] <= items[i - 1] {
            throw .invalidParameter(name: "items", value: "\(items[i - 1]), \(items[i])", expected: "ascending, unique")
        }
        guard halfLifeDays > 0, halfLifeDays.isFinite else {
            throw .invalidParameter(name: "halfLifeDays", value: "\(halfLifeDays)", expected: "a positive number of days")
        }
        self.init(unchecked: userKey, user: user, asOf: asOf, halfLifeDays: halfLifeDays, items: items, plays: plays,
                  skips: skips, firstPlayed: firstPlayed, lastPlayed: lastPlayed, recency: recency,
                  likes: Self.sortedUnique(likes), dislikedTracks: Self.sortedUnique(dislikedTracks),
                  dislikedArtists: Self.sortedUnique(dislikedArtists), followedArtists: Self.sortedUnique(followedArtists))
    }

    /// A history from one user's raw events (any order) and feedback, as the server keeps them. Events at or after
    /// `asOf` are left out.
    /// - Throws: ``PlaylistError/invalidParameter(name:value:expected:)`` for a negative item or a bad half-life.
    public init(
        userKey: String, user: Int32?, asOf: Int64, halfLifeDays: Double = 7, events: [ListeningEvent],
        likes: [Int32] = [], dislikedTracks: [Int32] = [], dislikedArtists: [Int32] = [], followedArtists: [Int32] = []
    ) throws(PlaylistError) {
        guard halfLifeDays > 0, halfLifeDays.isFinite else {
            throw .invalidParameter(name: "halfLifeDays", value: "\(halfLifeDays)", expected: "a positive number of days")
        }
        for e in events where e.item < 0 {
            throw .invalidParameter(name: "events", value: "item \(e.item)", expected: "non-negative item indices")
        }
        var agg = HistoryAggregate()
        let kept = events.filter { $0.timestamp < asOf }.sorted { ($0.item, $0.timestamp) < ($1.item, $1.timestamp) }
        agg.add(kept, asOf: asOf, halfLifeSeconds: halfLifeDays * 86_400, timed: true)
        self.init(unchecked: userKey, user: user, asOf: asOf, halfLifeDays: halfLifeDays, items: agg.items,
                  plays: agg.plays, skips: agg.skips, firstPlayed: agg.first, lastPlayed: agg.last,
                  recency: agg.recency, likes: Self.sortedUnique(likes),
                  dislikedTracks: Self.sortedUnique(dislikedTracks), dislikedArtists: Self.sortedUnique(dislikedArtists),
                  followedArtists: Self.sortedUnique(followedArtists))
    }

    init(
        unchecked userKey: String, user: Int32?, asOf: Int64, halfLifeDays: Double, items: [Int32], plays: [Float],
        skips: [Int32], firstPlayed: [Int64], lastPlayed: [Int64], recency: [Float], likes: [Int32],
        dislikedTracks: [Int32], dislikedArtists: [Int32], followedArtists: [Int32]
    ) {
        self.userKey = userKey
        self.user = user
        self.asOf = asOf
        self.halfLifeDays = halfLifeDays
        self.items = items
        self.plays = plays
        self.skips = skips
        self.firstPlayed = firstPlayed
        self.lastPlayed = lastPlayed
        self.recency = recency
        self.likes = likes
        self.dislikedTracks = dislikedTracks
        self.dislikedArtists = dislikedArtists
        self.followedArtists = followedArtists
    }

    static func sortedUnique(_ a: [Int32]) -> [Int32] {
        var s = a.sorted()
        var w = 0
        for i in 0..<s.count where i == 0 || s[i] != s[i - 1] {
            s[w] = s[i]
            w += 1
        }
        s.removeLast(s.count - w)
        return s
    }

    // MARK: Queries

    /// The number of items the user touched.
    public var count: Int { items.count }

    /// The position of `item` in ``items``, or `nil`.
    public func position(of item: Int32) -> Int? {
        Self.search(items[...], item)
    }

    /// Whether the user ever played or skipped `item`.
    public func hasPlayed(_ item: Int32) -> Bool { position(of: item) != nil }

    /// Whether the user liked `item`.
    public func likes(_ item: Int32) -> Bool { Self.search(likes[...], item) != nil }

    /// Whether the user disliked `item` or its artist.
    public func dislikes(_ item: Int32, catalog: TrackCatalog) -> Bool {
        if Self.search(dislikedTracks[...], item) != nil { return true }
        let a = catalog.artist(of: item)
        return a >= 0 && Self.search(dislikedArtists[...], a) != nil
    }

    /// Whether the user follows artist `a`.
    public func follows(artist a: Int32) -> Bool { Self.search(followedArtists[...], a) != nil }

    /// Whether item position `p` is "familiar": listened at least once and not mostly skipped.
    public func isFamiliar(at p: Int) -> Bool { plays[p] > 0 && Float(skips[p]) <= plays[p] }

    /// The positions of the user's items by decreasing recency weight (ties: more plays, later last play, lower
    /// item), keeping only those `include` accepts, at most `limit`.
    public func positionsByRecency(limit: Int = .max, where include: (Int) -> Bool = { _ in true }) -> [Int] {
        var ps = (0..<items.count).filter(include)
        ps.sort { a, b in
            if recency[a] != recency[b] { return recency[a] > recency[b] }
            if plays[a] != plays[b] { return plays[a] > plays[b] }
            if lastPlayed[a] != lastPlayed[b] { return lastPlayed[a] > lastPlayed[b] }
            return items[a] < items[b]
        }
        if ps.count > limit { ps.removeLast(ps.count - limit) }
        return ps
    }

    /// The user's familiar items (see ``isFamiliar(at:)``) as `(items, values)` with the listened plays as values,
    /// for ``ImplicitALS/foldIn(items:values:)`` when no better confidence is at hand.
    public var playedItemsAndCounts: (items: [Int32], values: [Float]) {
        var it: [Int32] = [], vs: [Float] = []
        for p in 0..<items.count where plays[p] > 0 {
            it.append(items[p])
            vs.append(plays[p])
        }
        return (it, vs)
    }

    package static func search(_ a: ArraySlice<Int32>, _ x: Int32) -> Int? {
        var lo = a.startIndex, hi = a.endIndex
        while lo < hi {
            let mid = (lo + hi) >> 1
            if a[mid] < x { lo = mid + 1 } else { hi = mid }
        }
        return lo < a.endIndex && a[lo] == x ? lo - a.startIndex : nil
    }
}

/// Aggregates one user's events, sorted by (item, time), into per-item columns.
struct HistoryAggregate {
    var items: [Int32] = []
    var plays: [Float] = []
    var skips: [Int32] = []
    var first: [Int64] = []
    var last: [Int64] = []
    var recency: [Float] = []

    /// `events` sorted by item then time.
    mutating func add(_ events: [ListeningEvent], asOf: Int64, halfLifeSeconds: Double, timed: Bool) {
        var i = 0
        while i < events.count {
            let item = events[i].item
            var p: Double = 0, r: Double = 0
            var s: Int32 = 0
            let f = events[i].timestamp
            var l = f
            while i < events.count && events[i].item == item {
                let e = events[i]
                if e.isSkip || e.plays <= 0 {
                    s &+= 1
                } else {
                    p += Double(e.plays)
                    r += timed ? Double(e.plays) * Foundation.exp2(-Double(asOf - e.timestamp) / halfLifeSeconds)
                        : Double(e.plays)
                }
                l = max(l, e.timestamp)
                i += 1
            }
            items.append(item)
            plays.append(Float(p))
            skips.append(s)
            first.append(timed ? f : 0)
            last.append(timed ? l : 0)
            recency.append(Float(r))
        }
    }
}

/// The histories of all users of a play log, in flat arrays (about 32 bytes per distinct user-item pair, no
/// dictionary per user, so hundreds of thousands of users fit): the bulk input of the weekly job.
///
/// ``history(of:)`` hands out one user's ``UserHistory``; it is a cheap copy of the user's slices, so the weekly job
/// can build every user's playlists in parallel.
public struct ListeningHistories: Sendable {
    /// The users' external ids (seed keys), in index order.
    public let userKeys: [String]
    /// The number of items of the log's item map.
    public let itemCount: Int
    /// The moment of the histories: events at or after it were left out.
    public let asOf: Int64
    /// The half-life of the recency weights, in days.
    public let halfLifeDays: Double
    /// Whether the log had timestamps (without them, recency weights are plain play counts).
    public let hasTimestamps: Bool
    /// The latest event kept (Unix seconds), or `nil` when none has a timestamp.
    public let latestTimestamp: Int64?

    // Pairs: user u's items are pairItems[pairStart[u]..<pairStart[u+1]], ascending.
    let pairStart: [Int]
    let pairItems: [Int32]
    let pairPlays: [Float]
    let pairSkips: [Int32]
    let pairFirst: [Int64]
    let pairLast: [Int64]
    let pairRecency: [Float]
    // Feedback, grouped by user, sorted and unique.
    let likes: GroupedLists
    let dislikedTracks: GroupedLists
    let dislikedArtists: GroupedLists
    let follows: GroupedLists

    /// The number of users.
    public var userCount: Int { userKeys.count }

    /// The number of distinct (user, item) pairs.
    public var pairCount: Int { pairItems.count }

    /// Builds the histories of every user of `plays` (users and items keep the log's indices).
    ///
    /// - Parameters:
    ///   - plays: the play log (one row per play, or per pair with a count; see `weighting`).
    ///   - weighting: how a row's weight is read.
    ///   - feedback: likes, dislikes and follows (with the log's user and item indices).
    ///   - asOf: the moment of the histories; events and feedback at or after it are left out (feedback without a
    ///     timestamp is kept). Default: the Monday after the latest event (the default Discover Weekly week), or no
    ///     limit for a log without timestamps.
    ///   - halfLifeDays: the half-life of the recency weights.
    ///   - threads: worker threads; 0 uses every core. The result does not depend on it.
    /// - Throws: ``PlaylistError/invalidParameter(name:value:expected:)`` for a bad half-life,
    ///   ``PlaylistError/unknownIndex(_:)`` for feedback outside the log's users or items,
    ///   ``PlaylistError/shapeMismatch(_:)`` for a log with columns of different lengths.
    public static func build(
        plays: Interactions, weighting: PlayWeighting = .counts, feedback: FeedbackLog = FeedbackLog(),
        asOf: Int64? = nil, halfLifeDays: Double = 7, threads: Int = 0
    ) throws(PlaylistError) -> ListeningHistories {
        guard plays.items.count == plays.count, plays.weights.count == plays.count,
              plays.timestamps.isEmpty || plays.timestamps.count == plays.count
        else { throw .shapeMismatch("the play log's columns have different lengths") }
        for (u, i) in zip(plays.users, plays.items)
        where u < 0 || Int(u) >= plays.userIDs.count || i < 0 || Int(i) >= plays.itemIDs.count {
            throw .unknownIndex("play of user \(u), item \(i) outside the log's \(plays.userIDs.count) users and "
                + "\(plays.itemIDs.count) items")
        }
        return try build(
            userKeys: plays.userIDs.ids, itemCount: plays.itemIDs.count, users: plays.users, items: plays.items,
            timestamps: plays.timestamps, weights: plays.weights, weighting: weighting, feedback: feedback, asOf: asOf,
            halfLifeDays: halfLifeDays, threads: threads)
    }

    init(
        userKeys: [String], itemCount: Int, asOf: Int64, halfLifeDays: Double, hasTimestamps: Bool,
        latestTimestamp: Int64?, pairStart: [Int], pairItems: [Int32], pairPlays: [Float], pairSkips: [Int32],
        pairFirst: [Int64], pairLast: [Int64], pairRecency: [Float], likes: GroupedLists, dislikedTracks: GroupedLists,
        dislikedArtists: GroupedLists, follows: GroupedLists
    ) {
        self.userKeys = userKeys; self.itemCount = itemCount; self.asOf = asOf; self.halfLifeDays = halfLifeDays
        self.hasTimestamps = hasTimestamps; self.latestTimestamp = latestTimestamp; self.pairStart = pairStart
        self.pairItems = pairItems; self.pairPlays = pairPlays; self.pairSkips = pairSkips; self.pairFirst = pairFirst
        self.pairLast = pairLast; self.pairRecency = pairRecency; self.likes = likes
        self.dislikedTracks = dislikedTracks; self.dislikedArtists = dislikedArtists; self.follows = follows
    }

    package static func build(
        userKeys: [String], itemCount: Int, users: [Int32], items: [Int32], timestamps: [Int64], weights: [Float],
        weighting: PlayWeighting, feedback: FeedbackLog, asOf requestedAsOf: Int64?, halfLifeDays: Double, threads: Int
    ) throws(PlaylistError) -> ListeningHistories {
        guard halfLifeDays > 0, halfLifeDays.isFinite else {
            throw .invalidParameter(name: "halfLifeDays", value: "\(halfLifeDays)", expected: "a positive number of days")
        }
        let userCount = userKeys.count
        let timed = !timestamps.isEmpty
        let asOf: Int64
        if let requestedAsOf {
            asOf = requestedAsOf
        } else if timed, let latest = timestamps.max() {
            asOf = PlaylistDate.mondayAfter(latest).timestamp
        } else {
            asOf = Int64.max
        }
        // Rows by user (counting sort), dropping rows at or after asOf.
        var start = [Int](repeating: 0, count: userCount + 1)
        var latest: Int64? = nil
        for r in 0..<users.count where !timed || timestamps[r] < asOf {
            start[Int(users[r]) + 1] += 1
            if timed { latest = max(latest ?? Int64.min, timestamps[r]) }
        }
        for u in 0..<userCount { start[u + 1] += start[u] }
        var next = start
        var order = [Int32](repeating: 0, count: start[userCount])
        for r in 0..<users.count where !timed || timestamps[r] < asOf {
            let u = Int(users[r])
            order[next[u]] = Int32(truncatingIfNeeded: r)
            next[u] += 1
        }
        // Aggregate each user in parallel blocks, concatenated in order.
        let block = 1_024
        let blocks = (userCount + block - 1) / block
        let slots = OrderedSlots<(counts: [Int], agg: HistoryAggregate)>(count: blocks)
        let halfLifeSeconds = halfLifeDays * 86_400
        let t = threads > 0 ? threads : Parallel.coreCount
        let isSkip: (Float) -> Bool = { weighting.isSkip(rowWeight: $0) }
        let playsOf: (Float) -> Float = { weighting.listens(rowWeight: $0) }
        Parallel.forEach(blocks, threads: t) { b in
            var agg = HistoryAggregate()
            var counts: [Int] = []
            var events: [ListeningEvent] = []
            for u in (b * block)..<min(userCount, (b + 1) * block) {
                events.removeAll(keepingCapacity: true)
                for p in start[u]..<start[u + 1] {
                    let r = Int(order[p])
                    let w = weights[r]
                    let skip = isSkip(w)
                    events.append(ListeningEvent(
                        item: items[r], timestamp: timed ? timestamps[r] : 0, plays: skip ? 0 : playsOf(w), isSkip: skip))
                }
                events.sort { ($0.item, $0.timestamp) < ($1.item, $1.timestamp) }
                let before = agg.items.count
                agg.add(events, asOf: asOf, halfLifeSeconds: halfLifeSeconds, timed: timed)
                counts.append(agg.items.count - before)
            }
            slots.set(b, (counts, agg))
        }
        var pairStart = [Int](repeating: 0, count: userCount + 1)
        var all = HistoryAggregate()
        var u = 0
        for (counts, agg) in slots.take() {
            for c in counts {
                pairStart[u + 1] = pairStart[u] + c
                u += 1
            }
            all.items += agg.items; all.plays += agg.plays; all.skips += agg.skips
            all.first += agg.first; all.last += agg.last; all.recency += agg.recency
        }
        func group(_ events: [FeedbackLog.Event], targets: Int?, name: String) throws(PlaylistError) -> GroupedLists {
            for e in events where e.user < 0 || Int(e.user) >= userCount || e.target < 0
                || (targets.map { Int(e.target) >= $0 } ?? false) {
                throw .unknownIndex("\(name) of user \(e.user), target \(e.target) outside the log")
            }
            return GroupedLists(userCount: userCount, events: events.filter { !timed || $0.timestamp < asOf })
        }
        return ListeningHistories(
            userKeys: userKeys, itemCount: itemCount, asOf: asOf, halfLifeDays: halfLifeDays, hasTimestamps: timed,
            latestTimestamp: latest, pairStart: pairStart, pairItems: all.items, pairPlays: all.plays,
            pairSkips: all.skips, pairFirst: all.first, pairLast: all.last, pairRecency: all.recency,
            likes: try group(feedback.likes, targets: itemCount, name: "like"),
            dislikedTracks: try group(feedback.dislikedTracks, targets: itemCount, name: "track dislike"),
            dislikedArtists: try group(feedback.dislikedArtists, targets: nil, name: "artist dislike"),
            follows: try group(feedback.follows, targets: nil, name: "follow"))
    }

    // MARK: Per user

    /// User `user`'s history.
    /// - Throws: ``PlaylistError/unknownIndex(_:)`` for a user outside the histories.
    public func history(of user: Int32) throws(PlaylistError) -> UserHistory {
        guard user >= 0, Int(user) < userCount else { throw .unknownIndex("user \(user) of \(userCount)") }
        let r = pairStart[Int(user)]..<pairStart[Int(user) + 1]
        return UserHistory(
            unchecked: userKeys[Int(user)], user: user, asOf: asOf, halfLifeDays: halfLifeDays,
            items: Array(pairItems[r]), plays: Array(pairPlays[r]), skips: Array(pairSkips[r]),
            firstPlayed: Array(pairFirst[r]), lastPlayed: Array(pairLast[r]), recency: Array(pairRecency[r]),
            likes: Array(likes.list(user)), dislikedTracks: Array(dislikedTracks.list(user)),
            dislikedArtists: Array(dislikedArtists.list(user)), followedArtists: Array(follows.list(user)))
    }

    /// The items user `user` played or skipped, ascending (empty outside the histories).
    public func items(of user: Int32) -> ArraySlice<Int32> {
        guard user >= 0, Int(user) < userCount else { return [] }
        return pairItems[pairStart[Int(user)]..<pairStart[Int(user) + 1]]
    }

    /// The listened plays of user `user`'s items, parallel to ``items(of:)``.
    public func plays(of user: Int32) -> ArraySlice<Float> {
        guard user >= 0, Int(user) < userCount else { return [] }
        return pairPlays[pairStart[Int(user)]..<pairStart[Int(user) + 1]]
    }

    /// The items user `user` liked, ascending.
    public func likedItems(of user: Int32) -> ArraySlice<Int32> { likes.list(user) }

    /// The users with at least one event, ascending.
    public var activeUsers: [Int32] {
        (0..<userCount).filter { pairStart[$0 + 1] > pairStart[$0] }.map { Int32($0) }
    }
}

/// Lists of targets grouped by user, each sorted and unique.
struct GroupedLists: Sendable {
    let start: [Int]
    let values: [Int32]

    init(userCount: Int, events: [FeedbackLog.Event]) {
        var s = [Int](repeating: 0, count: userCount + 1)
        for e in events { s[Int(e.user) + 1] += 1 }
        for u in 0..<userCount { s[u + 1] += s[u] }
        var fill = s
        var v = [Int32](repeating: 0, count: events.count)
        for e in events {
            v[fill[Int(e.user)]] = e.target
            fill[Int(e.user)] += 1
        }
        // Sort and deduplicate each user's list, compacting in place.
        var out = [Int](repeating: 0, count: userCount + 1)
        var w = 0
        for u in 0..<userCount {
            let lo = s[u], hi = s[u + 1]
            if hi - lo > 1 { v[lo..<hi].sort() }
            var last: Int32 = -1
            for i in lo..<hi where i == lo || v[i] != last {
                last = v[i]
                v[w] = last
                w += 1
            }
            out[u + 1] = w
        }
        v.removeLast(v.count - w)
        start = out
        values = v
    }

    func list(_ user: Int32) -> ArraySlice<Int32> {
        guard user >= 0, Int(user) < start.count - 1 else { return [] }
        return values[start[Int(user)]..<start[Int(user) + 1]]
    }
}
