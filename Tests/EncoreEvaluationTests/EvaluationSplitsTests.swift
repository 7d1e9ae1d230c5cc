import Testing
@testable import EncoreData
@testable import EncoreEvaluation


@Suite("Evaluation: train/test splits")
struct EvaluationSplitsTests {
    /// A log of `users` users; user u has `u % 7 + 1` distinct items, some played twice (duplicate rows).
    static func syntheticLog(users: Int = 30, withTimestamps: Bool = true) -> Interactions {
        var log = Interactions()
        var t: Int64 = 1000
        for u in 0..<users {
            for j in 0..<(u % 7 + 1) {
                let item = "i\((u * 3 + j * 5) % 40)"
                log.append(user: "u\(u)", item: item, weight: 1, timestamp: withTimestamps ? t : nil)
                t += 1
                if j % 2 == 0 {  // a replay of the same pair
                    log.append(user: "u\(u)", item: item, weight: 2, timestamp: withTimestamps ? t + 500 : nil)
                }
            }
        }
        return log
    }

    struct Pair: Hashable { let user: Int32, item: Int32 }

    static func pairs(_ log: Interactions) -> Set<Pair> {
        Set(zip(log.users, log.items).map { Pair(user: $0, item: $1) })
    }

    static func checkPartition(_ log: Interactions, _ split: TrainTestSplit) {
        // Disjoint pairs.
        #expect(pairs(split.train).isDisjoint(with: pairs(split.test)))
        // The union of the rows is the input, each row once.
        #expect((split.trainPositions + split.testPositions).sorted() == Array(0..<log.count))
        #expect(split.train == log.subset(split.trainPositions))
        #expect(split.test == log.subset(split.testPositions))
        // Same id maps, so same matrix shape.
        #expect(split.train.userIDs == log.userIDs && split.test.userIDs == log.userIDs)
        #expect(split.train.itemIDs == log.itemIDs && split.test.itemIDs == log.itemIDs)
        let a = split.train.matrix(), b = split.test.matrix()
        #expect(a.rows == b.rows && a.cols == b.cols)
        #expect(a.rows == log.userIDs.count && a.cols == log.itemIDs.count)
    }

    // MARK: - Random

    @Test func randomSplitIsDeterministicDisjointAndComplete() throws {
        let log = Self.syntheticLog()
        let a = try TrainTestSplit.random(log, testFraction: 0.25, seed: 7)
        let b = try TrainTestSplit.random(log, testFraction: 0.25, seed: 7)
        #expect(a == b)
        Self.checkPartition(log, a)
        let c = try TrainTestSplit.random(log, testFraction: 0.25, seed: 8)
        #expect(a.testPositions != c.testPositions)
        // Exactly round(0.25 * P) distinct pairs held out.
        let p = Self.pairs(log).count
        #expect(Self.pairs(a.test).count == Int((0.25 * Double(p)).rounded()))
    }

    @Test func randomSplitKeepsDuplicateRowsTogether() throws {
        // One pair played three times, another once: 2 pairs, 50% -> exactly one pair (all its rows) in test.
        var log = Interactions()
        log.append(user: "a", item: "x")
        log.append(user: "a", item: "y")
        log.append(user: "a", item: "x")
        log.append(user: "a", item: "x")
        for seed in UInt64(0)..<20 {
            let s = try TrainTestSplit.random(log, testFraction: 0.5, seed: seed)
            #expect(s.testPositions == [0, 2, 3] || s.testPositions == [1])
            Self.checkPartition(log, s)
        }
    }

    @Test(arguments: [0.0, 1.0, -0.1, 1.5, Double.nan, Double.infinity])
    func randomSplitRejectsBadFractions(fraction: Double) {
        let log = Self.syntheticLog(users: 3)
        #expect(throws: EvaluationError.self) { try TrainTestSplit.random(log, testFraction: fraction, seed: 1) }
    }

    @Test func rejectsInconsistentLog() {
        var log = Self.syntheticLog(users: 3)
        log.users[0] = 99  // outside the user id map
        #expect(throws: EvaluationError.self) { try TrainTestSplit.random(log, testFraction: 0.5, seed: 1) }
        var short = Self.syntheticLog(users: 3)
        short.weights.removeLast()
        #expect(throws: EvaluationError.self) { try TrainTestSplit.leaveKOut(short, k: 1, seed: 1) }
    }

    // MARK: - Leave k out

    @Test(arguments: [1, 2, 3])
    func leaveKOutHoldsOutKPerEligibleUser(k: Int) throws {
        let log = Self.syntheticLog()
        let s = try TrainTestSplit.leaveKOut(log, k: k, seed: 3)
        #expect(s == (try TrainTestSplit.leaveKOut(log, k: k, seed: 3)))
        Self.checkPartition(log, s)
        let all = Self.pairs(log), test = Self.pairs(s.test), train = Self.pairs(s.train)
        for u in 0..<Int32(log.userIDs.count) {
            let m = all.filter { $0.user == u }.count
            let held = test.filter { $0.user == u }.count
            // Default minimumTrainItems = 1: users with more than k distinct items take part.
            #expect(held == (m > k ? k : 0), "user \(u): \(m) items, \(held) held out")
            #expect(train.filter { $0.user == u }.count == m - held)
        }
    }

    @Test func leaveKOutMinimumTrainItems() throws {
        let log = Self.syntheticLog()
        // k = 1, at least 3 items left in training: users with m >= 4 distinct items take part.
        let s = try TrainTestSplit.leaveKOut(log, k: 1, seed: 3, minimumTrainItems: 3)
        let all = Self.pairs(log), test = Self.pairs(s.test)
        for u in 0..<Int32(log.userIDs.count) {
            let m = all.filter { $0.user == u }.count
            #expect(test.filter { $0.user == u }.count == (m >= 4 ? 1 : 0))
        }
        // Different seeds choose different items (a fixed, checked-once fact for this log).
        let other = try TrainTestSplit.leaveKOut(log, k: 1, seed: 4, minimumTrainItems: 3)
        #expect(other.testPositions != s.testPositions)
    }

    /// User a: x at t=1, y at t=2, z at t=3, x again at t=10. First occurrences: x 1, y 2, z 3.
    /// k = 1 holds out z (the latest new item, not the replayed x); k = 2 holds out z and y.
    /// User b has a single item and stays in training.
    @Test func leaveKOutLatestByTimestamp() throws {
        var log = Interactions()
        log.append(user: "a", item: "x", timestamp: 1)  // 0
        log.append(user: "a", item: "z", timestamp: 3)  // 1
        log.append(user: "b", item: "x", timestamp: 5)  // 2
        log.append(user: "a", item: "y", timestamp: 2)  // 3
        log.append(user: "a", item: "x", timestamp: 10)  // 4
        let one = try TrainTestSplit.leaveKOut(log, k: 1, seed: 0, latestByTimestamp: true)
        #expect(one.testPositions == [1])
        #expect(one.trainPositions == [0, 2, 3, 4])
        let two = try TrainTestSplit.leaveKOut(log, k: 2, seed: 99, latestByTimestamp: true)
        #expect(two.testPositions == [1, 3])
        Self.checkPartition(log, two)
    }

    @Test func leaveKOutErrors() {
        let plain = Self.syntheticLog(users: 5, withTimestamps: false)
        #expect(throws: EvaluationError.missingTimestamps(operation: "leave-k-out split by latest timestamp")) {
            try TrainTestSplit.leaveKOut(plain, k: 1, seed: 0, latestByTimestamp: true)
        }
        #expect(throws: EvaluationError.self) { try TrainTestSplit.leaveKOut(plain, k: 0, seed: 0) }
        #expect(throws: EvaluationError.self) { try TrainTestSplit.leaveKOut(plain, k: 1, seed: 0, minimumTrainItems: -1) }
    }

    // MARK: - Temporal

    /// cutoff 100, end 200:
    ///   0 (u0, a, 50)  train            4 (u1, c, 99)  train
    ///   1 (u0, a, 150) dropped: a replay of a pair first seen before the cutoff
    ///   2 (u0, b, 120) test             5 (u1, d, 100) test: at the cutoff counts as test
    ///   3 (u0, b, 130) test             6 (u1, e, 250) after the end: dropped (test without an end)
    ///   7 (u1, d, 210) after the end: dropped (test without an end)
    static func temporalLog() -> Interactions {
        var log = Interactions()
        log.append(user: "u0", item: "a", timestamp: 50)
        log.append(user: "u0", item: "a", timestamp: 150)
        log.append(user: "u0", item: "b", timestamp: 120)
        log.append(user: "u0", item: "b", timestamp: 130)
        log.append(user: "u1", item: "c", timestamp: 99)
        log.append(user: "u1", item: "d", timestamp: 100)
        log.append(user: "u1", item: "e", timestamp: 250)
        log.append(user: "u1", item: "d", timestamp: 210)
        return log
    }

    @Test func temporalSplitWithWindow() throws {
        let log = Self.temporalLog()
        let s = try TrainTestSplit.temporal(log, cutoff: 100, end: 200)
        #expect(s.trainPositions == [0, 4])
        #expect(s.testPositions == [2, 3, 5])
        #expect(s.train.timestamps.allSatisfy { $0 < 100 })
        #expect(s.test.timestamps.allSatisfy { $0 >= 100 && $0 < 200 })
        #expect(Self.pairs(s.train).isDisjoint(with: Self.pairs(s.test)))
        #expect(s.train.matrix().rows == s.test.matrix().rows && s.train.matrix().cols == s.test.matrix().cols)
    }

    @Test func temporalSplitWithoutEnd() throws {
        let log = Self.temporalLog()
        let s = try TrainTestSplit.temporal(log, cutoff: 100)
        #expect(s.trainPositions == [0, 4])
        #expect(s.testPositions == [2, 3, 5, 6, 7])
        // The replay of (u0, a) after the cutoff is in neither part.
        #expect(!s.trainPositions.contains(1) && !s.testPositions.contains(1))
    }

    @Test func temporalSplitOnLargerLogRespectsCutoff() throws {
        let log = Self.syntheticLog()
        let cutoff: Int64 = 1060
        let s = try TrainTestSplit.temporal(log, cutoff: cutoff)
        #expect(s.train.timestamps.allSatisfy { $0 < cutoff })
        #expect(s.test.timestamps.allSatisfy { $0 >= cutoff })
        #expect(Self.pairs(s.train).isDisjoint(with: Self.pairs(s.test)))
        // Every row before the cutoff is in training.
        #expect(s.trainPositions == log.timestamps.indices.filter { log.timestamps[$0] < cutoff })
        // Every test pair's first occurrence is at or after the cutoff.
        for p in Self.pairs(s.test) {
            let first = log.timestamps.indices.filter { log.users[$0] == p.user && log.items[$0] == p.item }
                .map { log.timestamps[$0] }.min()!
            #expect(first >= cutoff)
        }
    }

    @Test func temporalErrors() {
        let plain = Self.syntheticLog(users: 5, withTimestamps: false)
        #expect(throws: EvaluationError.missingTimestamps(operation: "temporal split")) {
            try TrainTestSplit.temporal(plain, cutoff: 10)
        }
        let log = Self.temporalLog()
        #expect(throws: EvaluationError.self) { try TrainTestSplit.temporal(log, cutoff: 100, end: 100) }
        #expect(throws: EvaluationError.self) { try TrainTestSplit.temporal(log, cutoff: 100, end: 50) }
    }
}
