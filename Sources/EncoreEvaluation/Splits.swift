import EncoreCore
import EncoreData

/// A split of an interaction log into a training part and a test part.
///
/// Both parts are ``Interactions/subset(_:)`` of the same log, so they keep both id maps and their matrices
/// (``Interactions/matrix()``) have the same users x items shape, which is what ``RankingMetrics`` and the
/// factorisation expect.
///
/// The random and leave-k-out splits work on distinct (user, item) pairs: all rows of a pair (repeated plays) go to
/// the same side, so no pair is in both parts and the union of the parts is the input. The temporal split keeps rows
/// strictly before its cutoff for training and may drop later rows; see ``temporal(_:cutoff:end:)``.
public struct TrainTestSplit: Sendable, Equatable {
    /// The training interactions.
    public var train: Interactions
    /// The held-out interactions.
    public var test: Interactions
    /// The positions in the source log of the training rows, ascending.
    public var trainPositions: [Int]
    /// The positions in the source log of the test rows, ascending.
    public var testPositions: [Int]

    /// A split from row positions of `log` (each list ascending).
    init(log: Interactions, trainPositions: [Int], testPositions: [Int]) {
        self.train = log.subset(trainPositions)
        self.test = log.subset(testPositions)
        self.trainPositions = trainPositions
        self.testPositions = testPositions
    }

    // MARK: - Random

    /// Holds out a random share of the distinct (user, item) pairs.
    ///
    /// Exactly `round(testFraction * P)` of the `P` distinct pairs go to the test part, chosen by a partial
    /// Fisher-Yates shuffle driven by ``SplitMix64`` seeded with `seed`, so a seed always gives the same split on
    /// every platform. All rows of a chosen pair go to the test part; all rows of the other pairs to training.
    ///
    /// (implicit's `train_test_split` instead draws one Bernoulli variable per stored matrix entry, so its test size
    /// is only approximately the fraction.)
    /// - Parameters:
    ///   - log: the interactions to split.
    ///   - testFraction: the share of pairs to hold out, strictly between 0 and 1.
    ///   - seed: the seed of the shuffle.
    /// - Throws: ``EvaluationError/invalidParameter(name:value:expected:)`` for a fraction outside `(0, 1)`,
    ///   ``EvaluationError/inconsistentLog(_:)`` for a malformed log.
    public static func random(
        _ log: Interactions, testFraction: Double, seed: UInt64
    ) throws(EvaluationError) -> TrainTestSplit {
        guard testFraction > 0, testFraction < 1 else {
            throw .invalidParameter(name: "testFraction", value: "\(testFraction)", expected: "a value in (0, 1)")
        }
        try validate(log, operation: "random split")
        let groups = PairGroups(log)
        let pairCount = groups.pairCount
        let testCount = min(pairCount, Int((testFraction * Double(pairCount)).rounded()))
        var order = Array(0..<pairCount)
        var rng = SplitMix64(seed: seed)
        for i in 0..<testCount {
            let j = i + uniformIndex(pairCount - i, &rng)
            order.swapAt(i, j)
        }
        var side = [Side](repeating: .train, count: log.count)
        for p in order[0..<testCount] {
            for r in groups.rows(ofPair: p) { side[r] = .test }
        }
        return TrainTestSplit(log: log, sides: side)
    }

    // MARK: - Leave k out

    /// Holds out `k` distinct items of every user who has enough of them.
    ///
    /// A user with `m` distinct items takes part when `m - k >= minimumTrainItems` (with the default of 1: when the
    /// user has more than `k` items); other users stay entirely in training. All rows of a held-out pair go to the
    /// test part. (implicit's `leave_k_out_split` takes part users with more than `k + 1` ratings, which is
    /// `minimumTrainItems: 2` on a log without repeated pairs.)
    ///
    /// Which items are held out:
    /// - `latestByTimestamp == false`: `k` of the user's pairs chosen uniformly at random, by a partial Fisher-Yates
    ///   shuffle driven by one ``SplitMix64`` seeded with `seed` and consumed user by user in index order, so a
    ///   seed always gives the same split.
    /// - `latestByTimestamp == true`: the `k` pairs the user discovered last, ordered by the timestamp of each pair's
    ///   *first* occurrence (ties: the later row in the log is the later one). A pair first played long ago and
    ///   replayed yesterday is not "new", so it is not the one held out. `seed` is not used.
    /// - Parameters:
    ///   - log: the interactions to split.
    ///   - k: the number of items held out per user, at least 1.
    ///   - seed: the seed of the random choice.
    ///   - latestByTimestamp: hold out the latest `k` pairs by timestamp instead of random ones.
    ///   - minimumTrainItems: the number of distinct items a user must keep in training to take part, at least 0.
    /// - Throws: ``EvaluationError/invalidParameter(name:value:expected:)`` for `k < 1` or
    ///   `minimumTrainItems < 0`, ``EvaluationError/missingTimestamps(operation:)`` when `latestByTimestamp` is set
    ///   and the log has no timestamps, ``EvaluationError/inconsistentLog(_:)`` for a malformed log.
    public static func leaveKOut(
        _ log: Interactions, k: Int = 1, seed: UInt64, latestByTimestamp: Bool = false, minimumTrainItems: Int = 1
    ) throws(EvaluationError) -> TrainTestSplit {
        guard k >= 1 else { throw .invalidParameter(name: "k", value: "\(k)", expected: "an integer >= 1") }
        guard minimumTrainItems >= 0 else {
            throw .invalidParameter(name: "minimumTrainItems", value: "\(minimumTrainItems)", expected: "an integer >= 0")
        }
        if latestByTimestamp && !log.hasTimestamps {
            throw .missingTimestamps(operation: "leave-k-out split by latest timestamp")
        }
        try validate(log, operation: "leave-k-out split")
        let groups = PairGroups(log)
        var side = [Side](repeating: .train, count: log.count)
        var rng = SplitMix64(seed: seed)
        for u in 0..<groups.userCount {
            let pairs = groups.pairs(ofUser: u)
            let m = pairs.count
            guard m - k >= minimumTrainItems else { continue }
            var chosen: [Int]
            if latestByTimestamp {
                // Key of a pair: its first occurrence (earliest timestamp, then earliest row).
                var keyed: [(time: Int64, row: Int, pair: Int)] = []
                keyed.reserveCapacity(m)
                for p in pairs {
                    var best = (time: Int64.max, row: Int.max)
                    for r in groups.rows(ofPair: p) {
                        let t = log.timestamps[r]
                        if t < best.time || (t == best.time && r < best.row) { best = (t, r) }
                    }
                    keyed.append((best.time, best.row, p))
                }
                keyed.sort { $0.time != $1.time ? $0.time > $1.time : $0.row > $1.row }
                chosen = keyed[0..<k].map(\.pair)
            } else {
                chosen = Array(pairs)
                for i in 0..<k {
                    let j = i + uniformIndex(m - i, &rng)
                    chosen.swapAt(i, j)
                }
                chosen.removeLast(m - k)
            }
            for p in chosen {
                for r in groups.rows(ofPair: p) { side[r] = .test }
            }
        }
        return TrainTestSplit(log: log, sides: side)
    }

    // MARK: - Temporal

    /// Splits at a point in time: training is everything strictly before `cutoff`; the test part is the *new*
    /// (user, item) pairs of the period from `cutoff` on.
    ///
    /// - Training: every row with `timestamp < cutoff`.
    /// - Test: the rows with `cutoff <= timestamp < end` (no upper bound when `end` is `nil`) of the pairs whose first
    ///   occurrence (earliest timestamp) is at or after `cutoff`.
    /// - Dropped: rows at or after `cutoff` of pairs already seen before it (a replay of a known item is not a new
    ///   play to predict, and keeping it in training would leak the future), and rows at or after `end`.
    ///
    /// So a pair first seen in training and played again after the cutoff stays in training only, with its
    /// pre-cutoff rows; the test part holds what "new plays in the test week" means. Unlike the other splits, the
    /// union of the parts may be smaller than the input (``trainPositions`` and ``testPositions`` say which rows
    /// were kept).
    /// - Parameters:
    ///   - log: the interactions to split; must have timestamps.
    ///   - cutoff: the first instant of the test period.
    ///   - end: the end (exclusive) of the test period, or `nil` for no end.
    /// - Throws: ``EvaluationError/missingTimestamps(operation:)`` when the log has no timestamps,
    ///   ``EvaluationError/invalidParameter(name:value:expected:)`` when `end <= cutoff`,
    ///   ``EvaluationError/inconsistentLog(_:)`` for a malformed log.
    public static func temporal(
        _ log: Interactions, cutoff: Int64, end: Int64? = nil
    ) throws(EvaluationError) -> TrainTestSplit {
        guard log.hasTimestamps else { throw .missingTimestamps(operation: "temporal split") }
        if let end, end <= cutoff {
            throw .invalidParameter(name: "end", value: "\(end)", expected: "a timestamp after the cutoff \(cutoff)")
        }
        try validate(log, operation: "temporal split")
        let groups = PairGroups(log)
        var side = [Side](repeating: .dropped, count: log.count)
        for p in 0..<groups.pairCount {
            let rows = groups.rows(ofPair: p)
            var first = Int64.max
            for r in rows { first = min(first, log.timestamps[r]) }
            for r in rows {
                let t = log.timestamps[r]
                if t < cutoff {
                    side[r] = .train
                } else if first >= cutoff, end.map({ t < $0 }) ?? true {
                    side[r] = .test
                }
            }
        }
        return TrainTestSplit(log: log, sides: side)
    }

    // MARK: - Helpers

    /// Where a row of the source log goes.
    enum Side: UInt8 { case train, test, dropped }

    /// A split from the side of every row.
    init(log: Interactions, sides: [Side]) {
        var train: [Int] = [], test: [Int] = []
        for (r, s) in sides.enumerated() {
            switch s {
            case .train: train.append(r)
            case .test: test.append(r)
            case .dropped: break
            }
        }
        self.init(log: log, trainPositions: train, testPositions: test)
    }

    /// A uniform integer in `0..<n` (`n > 0`) by the multiply-high method; deterministic on every platform.
    static func uniformIndex(_ n: Int, _ rng: inout SplitMix64) -> Int {
        Int(rng.next().multipliedFullWidth(by: UInt64(n)).high)
    }

    /// Checks column lengths and that every index is inside its id map.
    static func validate(_ log: Interactions, operation: String) throws(EvaluationError) {
        let n = log.users.count
        guard log.items.count == n, log.weights.count == n, log.timestamps.isEmpty || log.timestamps.count == n else {
            throw .inconsistentLog(
                "\(operation): columns have different lengths (users \(n), items \(log.items.count), "
                    + "weights \(log.weights.count), timestamps \(log.timestamps.count))")
        }
        let userCount = log.userIDs.count, itemCount = log.itemIDs.count
        for r in 0..<n {
            let u = log.users[r], i = log.items[r]
            guard u >= 0, Int(u) < userCount else {
                throw .inconsistentLog("\(operation): row \(r) has user index \(u), the id map has \(userCount) users")
            }
            guard i >= 0, Int(i) < itemCount else {
                throw .inconsistentLog("\(operation): row \(r) has item index \(i), the id map has \(itemCount) items")
            }
        }
    }
}

/// The rows of a log grouped by distinct (user, item) pair, pairs in (user, item) order, rows of a pair in log order.
///
/// Built by two counting sorts (by item, then stably by user): O(rows + users + items), no hashing.
struct PairGroups {
    /// Log positions, grouped by pair.
    private(set) var rowOrder: [Int]
    /// Pair `p` occupies `rowOrder[pairStart[p]..<pairStart[p+1]]`.
    private(set) var pairStart: [Int]
    /// The pairs of user `u` are `userPairStart[u]..<userPairStart[u+1]`.
    private(set) var userPairStart: [Int]
    /// The user of each pair.
    private(set) var pairUser: [Int32]
    /// The item of each pair.
    private(set) var pairItem: [Int32]

    /// The number of distinct pairs.
    var pairCount: Int { pairUser.count }
    /// The number of users (of the id map).
    var userCount: Int { userPairStart.count - 1 }

    /// Groups a validated log.
    init(_ log: Interactions) {
        let n = log.count
        let userCount = log.userIDs.count, itemCount = log.itemIDs.count
        var itemStart = [Int](repeating: 0, count: itemCount + 1)
        for i in log.items { itemStart[Int(i) + 1] += 1 }
        for i in 0..<itemCount { itemStart[i + 1] += itemStart[i] }
        var byItem = [Int](repeating: 0, count: n)
        for r in 0..<n {
            let i = Int(log.items[r])
            byItem[itemStart[i]] = r
            itemStart[i] += 1
        }
        var userStart = [Int](repeating: 0, count: userCount + 1)
        for u in log.users { userStart[Int(u) + 1] += 1 }
        for u in 0..<userCount { userStart[u + 1] += userStart[u] }
        var next = userStart
        var order = [Int](repeating: 0, count: n)
        for r in byItem {
            let u = Int(log.users[r])
            order[next[u]] = r
            next[u] += 1
        }
        // A pair starts wherever the item changes within a user's run of rows.
        var pairStart: [Int] = []
        var pairUser: [Int32] = [], pairItem: [Int32] = []
        var userPairStart = [Int](repeating: 0, count: userCount + 1)
        for u in 0..<userCount {
            var last: Int32 = -1
            for q in userStart[u]..<userStart[u + 1] {
                let i = log.items[order[q]]
                if i != last {
                    pairStart.append(q)
                    pairUser.append(Int32(u))
                    pairItem.append(i)
                    last = i
                }
            }
            userPairStart[u + 1] = pairUser.count
        }
        pairStart.append(n)
        self.rowOrder = order
        self.pairStart = pairStart
        self.userPairStart = userPairStart
        self.pairUser = pairUser
        self.pairItem = pairItem
    }

    /// The log positions of pair `p`, in log order.
    func rows(ofPair p: Int) -> ArraySlice<Int> { rowOrder[pairStart[p]..<pairStart[p + 1]] }

    /// The pair indices of user `u`.
    func pairs(ofUser u: Int) -> Range<Int> { userPairStart[u]..<userPairStart[u + 1] }
}
