import Foundation
import Testing
@testable import EncoreCore
@testable import EncoreEvaluation


/// Hand-computed checks of ``RankingMetrics`` against the definitions of implicit 0.7's `ranking_metrics_at_k`.
@Suite("Evaluation: ranking metrics")
struct EvaluationMetricsTests {
    /// A users x items test matrix from per-user item lists (value 1 everywhere).
    static func matrix(_ rows: [[Int32]], cols: Int) throws -> CSRMatrix {
        var r: [Int32] = [], c: [Int32] = []
        for (u, items) in rows.enumerated() {
            for i in items {
                r.append(Int32(u))
                c.append(i)
            }
        }
        return try CSRMatrix(rows: rows.count, cols: cols, rowIndices: r, colIndices: c, values: r.map { _ in 1 })
    }

    static func close(_ a: Double, _ b: Double, _ tol: Double = 1e-12) -> Bool { abs(a - b) <= tol }

    // g(i) = 1/log2(i+2): g0 = 1, g1 = 1/log2(3) = 0.6309297535714575, g2 = 1/log2(4) = 0.5,
    // g3 = 1/log2(5) = 0.43067655807339306, g4 = 1/log2(6) = 0.38685280723454163.

    /// The main worked example: N = 10 items, k = 3, four users, one without test items.
    ///
    /// User 0: R = {1, 4}, list [1, 2, 4]
    ///   place 0: 1 hit  -> hit 1, AP += 1/1, DCG += g0 = 1
    ///   place 1: 2 miss -> miss 1, A += hit (1)
    ///   place 2: 4 hit  -> hit 2, AP += 2/3, DCG += g2 = 0.5
    ///   c = min(3, 2) = 2; AP = (1 + 2/3) / 2 = 5/6; IDCG = g0 + g1 = 1.6309297535714575;
    ///   NDCG = 1.5 / 1.6309297535714575 = 0.9197207891481876
    ///   AUC: pos 2, neg 8, A = 1 + (2 + 2)/2 * (8 - 1) = 15 -> 15/16 = 0.9375
    ///   recall 2/2 = 1, hit.
    /// User 1: no test items -> skipped (its list [9, 8, 7] is not scored and not in coverage).
    /// User 2: R = {0, 5, 7, 9}, list [3, 5, 6]
    ///   place 0: 3 miss -> miss 1, A += 0
    ///   place 1: 5 hit  -> hit 1, AP += 1/2, DCG += g1
    ///   place 2: 6 miss -> miss 2, A += 1
    ///   c = 3; AP = 0.5/3 = 1/6; IDCG = g0 + g1 + g2 = 2.1309297535714578;
    ///   NDCG = 0.6309297535714575 / 2.1309297535714578 = 0.2960819109658652
    ///   AUC: pos 4, neg 6, A = 1 + (1 + 4)/2 * (6 - 2) = 11 -> 11/24
    ///   recall 1/4, hit.
    /// User 3: R = {8}, list [0, 1, 2]: three misses, A = 0 + (0 + 1)/2 * (9 - 3) = 3 -> 3/9 = 1/3; c = 1.
    ///
    /// precision = (2 + 1 + 0) / (2 + 3 + 1) = 0.5         (micro-average over min(k, |R|))
    /// recall    = (1 + 0.25 + 0) / 3 = 0.41666...
    /// map       = (5/6 + 1/6 + 0) / 3 = 1/3
    /// ndcg      = (0.9197207891481876 + 0.2960819109658652 + 0) / 3 = 0.4052675667046843
    /// auc       = (15/16 + 11/24 + 1/3) / 3 = 0.5763888888888888
    /// hit rate  = 2/3; coverage = |{1, 2, 4, 3, 5, 6, 0}| / 10 = 0.7; users = 3.
    static let exampleTest: [[Int32]] = [[1, 4], [], [0, 5, 7, 9], [8]]
    static let exampleLists: [Int32: [Int32]] = [0: [1, 2, 4], 1: [9, 8, 7], 2: [3, 5, 6], 3: [0, 1, 2]]

    static func checkExample(_ m: RankingMetrics, users: Int = 3) {
        #expect(m.k == 3)
        #expect(m.usersEvaluated == users)
        #expect(close(m.precision, 0.5))
        #expect(close(m.recall, 1.25 / 3))
        #expect(close(m.map, 1.0 / 3))
        #expect(close(m.ndcg, 0.4052675667046843))
        #expect(close(m.auc, 0.5763888888888888))
        #expect(close(m.hitRate, 2.0 / 3))
        #expect(close(m.coverage, 0.7))
    }

    @Test func workedExampleFromLists() throws {
        let test = try Self.matrix(Self.exampleTest, cols: 10)
        let m = try RankingMetrics.evaluate(recommendations: Self.exampleLists, test: test, k: 3)
        Self.checkExample(m)
    }

    @Test func workedExampleThroughBatchedRecommender() throws {
        let test = try Self.matrix(Self.exampleTest, cols: 10)
        let lists = Self.exampleLists
        for (threads, batch) in [(1, 1024), (1, 1), (2, 1), (2, 2), (0, 3)] {
            let m = try RankingMetrics.evaluate(test: test, k: 3, threads: threads, batchSize: batch) { users, _ in
                // User 1 has no test items, so it must never be asked for.
                users.map { lists[$0]! }
            }
            Self.checkExample(m)
        }
    }

    @Test func recommenderIsOnlyAskedForTestUsers() throws {
        let test = try Self.matrix(Self.exampleTest, cols: 10)
        let asked = Locked<[Int32]>([])
        _ = try RankingMetrics.evaluate(test: test, k: 3, batchSize: 2) { users, k in
            asked.withLock { $0.append(contentsOf: users) }
            #expect(k == 3)
            return users.map { _ in [] }
        }
        #expect(asked.value.sorted() == [0, 2, 3])
    }

    /// Hits at different ranks, |R| = 2, k = 5, N = 10.
    /// Hits at places 0 and 1: AP = (1/1 + 2/2) / 2 = 1; NDCG = (g0 + g1) / (g0 + g1) = 1.
    /// Hits at places 3 and 4: AP = (1/4 + 2/5) / 2 = 0.325;
    ///   NDCG = (g3 + g4) / (g0 + g1) = 0.8175293653079347 / 1.6309297535714575 = 0.5012658353418871.
    /// AUC of the early hits: misses at places 2, 3, 4 each add hit = 2 -> A = 6, then
    ///   A += (2 + 2)/2 * (8 - 3) = 10 -> 16 / (2 * 8) = 1.
    /// AUC of the late hits: misses at 0, 1, 2 add 0; A = 0 + (2 + 2)/2 * (8 - 3) = 10 -> 10/16 = 0.625.
    @Test func hitsAtDifferentRanks() throws {
        let test = try Self.matrix([[7, 8]], cols: 10)
        let early = try RankingMetrics.evaluate(users: [0], recommendations: [[7, 8, 0, 1, 2]], test: test, k: 5)
        #expect(Self.close(early.map, 1))
        #expect(Self.close(early.ndcg, 1))
        #expect(Self.close(early.precision, 1))  // 2 hits / min(5, 2)
        #expect(Self.close(early.auc, 1))
        let late = try RankingMetrics.evaluate(users: [0], recommendations: [[0, 1, 2, 8, 7]], test: test, k: 5)
        #expect(Self.close(late.map, 0.325))
        #expect(Self.close(late.ndcg, 0.5012658353418871))
        #expect(Self.close(late.precision, 1))
        #expect(Self.close(late.auc, 0.625))
        #expect(Self.close(late.recall, 1))
    }

    /// Partial hits and micro-averaged precision.
    /// User 0: R = {0}, list [0, 1]: 1 hit, c = min(2, 1) = 1.
    /// User 1: R = {0, 1, 2, 3}, list [4, 5]: 0 hits, c = min(2, 4) = 2.
    /// precision = (1 + 0) / (1 + 2) = 1/3 (a mean of per-user precisions would give 0.5; dividing by k, 0.25).
    /// recall = (1/1 + 0/4) / 2 = 0.5; hit rate 1/2; map = (1/1 + 0) / 2 = 0.5; ndcg = (g0/g0 + 0) / 2 = 0.5.
    /// AUC, N = 6: user 0: miss at place 1 adds 1 -> A = 1 + (1 + 1)/2 * (5 - 1) = 5 -> 5/5 = 1;
    ///   user 1: A = 0 + (0 + 4)/2 * (2 - 2) = 0 -> 0; mean 0.5.
    @Test func microAveragedPrecision() throws {
        let test = try Self.matrix([[0], [0, 1, 2, 3]], cols: 6)
        let m = try RankingMetrics.evaluate(users: [0, 1], recommendations: [[0, 1], [4, 5]], test: test, k: 2)
        #expect(Self.close(m.precision, 1.0 / 3))
        #expect(Self.close(m.recall, 0.5))
        #expect(Self.close(m.hitRate, 0.5))
        #expect(Self.close(m.map, 0.5))
        #expect(Self.close(m.ndcg, 0.5))
        #expect(Self.close(m.auc, 0.5))
        #expect(Self.close(m.coverage, 4.0 / 6))
    }

    /// More relevant items than k: R = {0, 1, 2, 3, 4}, k = 2, list [3, 9], N = 10.
    /// c = min(2, 5) = 2: precision = 1/2; AP = (1/1) / 2 = 0.5; NDCG = g0 / (g0 + g1) = 1 / 1.6309297535714575
    /// = 0.6131471927654584; recall = 1/5 = 0.2.
    /// AUC: pos 5, neg 5; place 1 miss adds 1; A = 1 + (1 + 5)/2 * (5 - 1) = 13 -> 13/25 = 0.52.
    @Test func moreRelevantThanK() throws {
        let test = try Self.matrix([[0, 1, 2, 3, 4]], cols: 10)
        let m = try RankingMetrics.evaluate(users: [0], recommendations: [[3, 9]], test: test, k: 2)
        #expect(Self.close(m.precision, 0.5))
        #expect(Self.close(m.map, 0.5))
        #expect(Self.close(m.ndcg, 1 / 1.6309297535714575))
        #expect(Self.close(m.recall, 0.2))
        #expect(Self.close(m.auc, 0.52))
    }

    /// Fewer relevant items than k, and a list shorter than k (the missing places are misses, like implicit's -1 ids).
    /// R = {2}, k = 3, list [2], N = 5.
    /// place 0 hit: AP = 1, DCG = g0; c = min(3, 1) = 1, IDCG = g0 -> NDCG 1; precision 1/1.
    /// places 1, 2 missing: misses each add hit = 1 -> A = 2; A += (1 + 1)/2 * (4 - 2) = 2 -> 4/4 = 1.
    @Test func shortListAndFewRelevant() throws {
        let test = try Self.matrix([[2]], cols: 5)
        let m = try RankingMetrics.evaluate(users: [0], recommendations: [[2]], test: test, k: 3)
        #expect(Self.close(m.precision, 1))
        #expect(Self.close(m.map, 1))
        #expect(Self.close(m.ndcg, 1))
        #expect(Self.close(m.auc, 1))
        #expect(Self.close(m.coverage, 1.0 / 5))
        // A hit at place 1 instead: AP = (1/2)/1 = 0.5; NDCG = g1/g0 = 0.6309297535714575;
        // A = 0 (place 0) + 1 (place 2) + (1 + 1)/2 * (4 - 2) = 3 -> 3/4.
        let second = try RankingMetrics.evaluate(users: [0], recommendations: [[4, 2]], test: test, k: 3)
        #expect(Self.close(second.map, 0.5))
        #expect(Self.close(second.ndcg, 0.6309297535714575))
        #expect(Self.close(second.auc, 0.75))
    }

    /// AUC with known positive and negative counts, checked against the exact pairwise AUC.
    /// R = {0, 1}, N = 6 (4 negatives), k = 4, list [2, 0, 3, 1]:
    ///   place 0: 2 miss, A += 0; place 1: 0 hit; place 2: 3 miss, A += 1; place 3: 1 hit.
    ///   A = 1 + (2 + 2)/2 * (4 - 2) = 5 -> 5 / (2 * 4) = 0.625.
    /// Pairwise: negative 2 is above both positives (0 pairs right), negative 3 is between (1), negatives 4 and 5
    /// are unranked, below both positives (2 each): 5 of 8 pairs = 0.625.
    @Test func aucWithKnownCounts() throws {
        let test = try Self.matrix([[0, 1]], cols: 6)
        let m = try RankingMetrics.evaluate(users: [0], recommendations: [[2, 0, 3, 1]], test: test, k: 4)
        #expect(Self.close(m.auc, 0.625))
        // No hit at all, k = 2, list [2, 3]: A = 0 + (0 + 2)/2 * (4 - 2) = 2 -> 2/8 = 0.25 (unranked positives
        // against unranked negatives count one half).
        let none = try RankingMetrics.evaluate(users: [0], recommendations: [[2, 3]], test: test, k: 2)
        #expect(Self.close(none.auc, 0.25))
    }

    @Test func usersWithoutTestItemsAreSkipped() throws {
        // User 1 has no test items; its perfect-looking list must change nothing.
        let test = try Self.matrix([[3], []], cols: 4)
        let one = try RankingMetrics.evaluate(users: [0], recommendations: [[0]], test: test, k: 1)
        let both = try RankingMetrics.evaluate(users: [0, 1], recommendations: [[0], [3]], test: test, k: 1)
        #expect(one == both)
        #expect(both.usersEvaluated == 1)
        #expect(both.coverage == 0.25)
    }

    @Test func listsLongerThanKAreCut() throws {
        let test = try Self.matrix([[5]], cols: 6)
        // The hit is at place 2, beyond k = 2: no hit.
        let m = try RankingMetrics.evaluate(users: [0], recommendations: [[0, 1, 5]], test: test, k: 2)
        #expect(m.precision == 0)
        #expect(Self.close(m.coverage, 2.0 / 6))
    }

    /// A literal transliteration of implicit 0.7's `ranking_metrics_at_k` loop (ids padded with -1 to K, a hash set
    /// of likes, the global accumulators), used to cross-check random cases.
    static func implicitReference(
        test: CSRMatrix, recs: [Int32: [Int32]], K: Int
    ) -> (precision: Double, map: Double, ndcg: Double, auc: Double) {
        let items = test.cols
        var relevant = 0.0, prDiv = 0.0, total = 0.0, meanAP = 0.0, ndcg = 0.0, meanAUC = 0.0
        let cg = (0..<K).map { 1.0 / log2(Double($0 + 2)) }
        var cgSum = cg
        for i in 1..<K { cgSum[i] += cgSum[i - 1] }
        for u in 0..<test.rows {
            if test.indptr[u] == test.indptr[u + 1] { continue }
            var ids = [Int32](repeating: -1, count: K)
            for (i, r) in (recs[Int32(u)] ?? []).prefix(K).enumerated() { ids[i] = r }
            let likes = Set(test.columns(ofRow: u))
            prDiv += Double(min(K, likes.count))
            var ap = 0.0, hit = 0.0, miss = 0.0, auc = 0.0
            let idcg = cgSum[min(K, likes.count) - 1]
            let numPos = Double(likes.count), numNeg = Double(items) - numPos
            for i in 0..<K {
                if likes.contains(ids[i]) {
                    relevant += 1
                    hit += 1
                    ap += hit / Double(i + 1)
                    ndcg += cg[i] / idcg
                } else {
                    miss += 1
                    auc += hit
                }
            }
            auc += ((hit + numPos) / 2.0) * (numNeg - miss)
            meanAP += ap / Double(min(K, likes.count))
            meanAUC += auc / (numPos * numNeg)
            total += 1
        }
        return (relevant / prDiv, meanAP / total, ndcg / total, meanAUC / total)
    }

    @Test(arguments: [UInt64(1), 2, 3, 4, 5])
    func matchesImplicitReferenceOnRandomCases(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        let users = 40, items = 30
        var rows: [[Int32]] = []
        var recs: [Int32: [Int32]] = [:]
        for u in 0..<users {
            var pool = (0..<Int32(items)).map { $0 }
            for i in stride(from: pool.count - 1, to: 0, by: -1) { pool.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
            let nTest = Int(rng.next() % 7)  // 0...6 test items, some users skipped
            rows.append(Array(pool[0..<nTest]))
            // Recommendations from a fresh shuffle, 0...12 long, so lists can be shorter than k.
            for i in stride(from: pool.count - 1, to: 0, by: -1) { pool.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
            recs[Int32(u)] = Array(pool[0..<Int(rng.next() % 13)])
        }
        let test = try Self.matrix(rows, cols: items)
        let lists = recs
        for k in [1, 3, 10] {
            let ref = Self.implicitReference(test: test, recs: recs, K: k)
            let m = try RankingMetrics.evaluate(recommendations: recs, test: test, k: k)
            #expect(Self.close(m.precision, ref.precision, 1e-12))
            #expect(Self.close(m.map, ref.map, 1e-12))
            #expect(Self.close(m.ndcg, ref.ndcg, 1e-12))
            #expect(Self.close(m.auc, ref.auc, 1e-12))
            let batched = try RankingMetrics.evaluate(test: test, k: k, threads: 2, batchSize: 7) { us, k in
                us.map { Array((lists[$0] ?? []).prefix(k)) }
            }
            #expect(batched.usersEvaluated == m.usersEvaluated)
            #expect(Self.close(batched.precision, m.precision, 1e-12))
            #expect(Self.close(batched.auc, m.auc, 1e-12))
            #expect(Self.close(batched.ndcg, m.ndcg, 1e-12))
            #expect(batched.coverage == m.coverage)
        }
    }

    @Test func resultDoesNotDependOnThreadsOrBatchSize() throws {
        let test = try Self.matrix(Self.exampleTest + Self.exampleTest + Self.exampleTest, cols: 10)
        let lists = Self.exampleLists
        let recommend: BatchRecommender = { users, _ in users.map { lists[$0 % 4]! } }
        let a = try RankingMetrics.evaluate(test: test, k: 3, threads: 1, batchSize: 5, recommend: recommend)
        let b = try RankingMetrics.evaluate(test: test, k: 3, threads: 2, batchSize: 5, recommend: recommend)
        #expect(a == b)
        Self.checkExample(a, users: 9)  // the same three users, three times: every mean is unchanged
    }

    // MARK: - Errors

    @Test func rejectsBadArguments() throws {
        let test = try Self.matrix([[1]], cols: 4)
        #expect(throws: EvaluationError.invalidParameter(name: "k", value: "0", expected: "an integer >= 1")) {
            try RankingMetrics.evaluate(users: [0], recommendations: [[1]], test: test, k: 0)
        }
        #expect(throws: EvaluationError.self) {
            try RankingMetrics.evaluate(users: [0], recommendations: [[1]], test: test, k: 1, itemCount: 3)
        }
        #expect(throws: EvaluationError.self) {
            try RankingMetrics.evaluate(test: test, k: 1, batchSize: 0) { u, _ in u.map { _ in [] } }
        }
        #expect(throws: EvaluationError.self) {
            try RankingMetrics.evaluate(test: test, k: 1, threads: -1) { u, _ in u.map { _ in [] } }
        }
        #expect(throws: EvaluationError.shapeMismatch("1 users but 2 recommendation lists")) {
            try RankingMetrics.evaluate(users: [0], recommendations: [[1], [2]], test: test, k: 1)
        }
    }

    @Test func rejectsBadRecommendations() throws {
        let test = try Self.matrix([[1], [2]], cols: 4)
        #expect(throws: EvaluationError.invalidRecommendations(user: 0, reason: "item 4 is outside the 4 items")) {
            try RankingMetrics.evaluate(users: [0], recommendations: [[4]], test: test, k: 2)
        }
        #expect(throws: EvaluationError.invalidRecommendations(user: 1, reason: "item 3 is recommended twice")) {
            try RankingMetrics.evaluate(users: [1], recommendations: [[3, 3]], test: test, k: 2)
        }
        #expect(throws: EvaluationError.invalidRecommendations(user: 0, reason: "the user is listed twice")) {
            try RankingMetrics.evaluate(users: [0, 0], recommendations: [[1], [1]], test: test, k: 2)
        }
        #expect(throws: EvaluationError.self) {
            try RankingMetrics.evaluate(users: [7], recommendations: [[1]], test: test, k: 2)
        }
        // The batched recommender returns one list too few.
        #expect(throws: EvaluationError.self) {
            try RankingMetrics.evaluate(test: test, k: 2) { users, _ in users.dropLast().map { _ in [] } }
        }
    }

    @Test func rejectsEmptyTestAndUndefinedAUC() throws {
        let empty = try Self.matrix([[], []], cols: 4)
        #expect(throws: EvaluationError.noTestUsers) {
            try RankingMetrics.evaluate(test: empty, k: 2) { users, _ in users.map { _ in [] } }
        }
        #expect(throws: EvaluationError.noTestUsers) {
            try RankingMetrics.evaluate(users: [0], recommendations: [[1]], test: empty, k: 2)
        }
        let all = try Self.matrix([[0, 1]], cols: 2)
        #expect(throws: EvaluationError.noNegativeItems(user: 0, relevant: 2, itemCount: 2)) {
            try RankingMetrics.evaluate(users: [0], recommendations: [[0, 1]], test: all, k: 2)
        }
    }

    // MARK: - Reporting

    @Test func dictionaryTableAndCoding() throws {
        let m = RankingMetrics(
            k: 10, precision: 0.125, recall: 0.25, map: 0.0625, ndcg: 0.5, auc: 0.75, hitRate: 0.375,
            coverage: 0.03125, usersEvaluated: 42)
        let d = m.asDictionary()
        #expect(
            d == [
                "precision@10": 0.125, "recall@10": 0.25, "map@10": 0.0625, "ndcg@10": 0.5, "auc@10": 0.75,
                "hit_rate@10": 0.375, "coverage@10": 0.03125, "users": 42,
            ])
        let table = m.table(title: "als")
        let lines = table.split(separator: "\n").map(String.init)
        #expect(lines.count == 10)  // header, rule, 7 metrics, users
        #expect(lines[0].hasPrefix("metric"))
        #expect(lines[0].hasSuffix("als (k=10)"))
        #expect(lines[2].hasPrefix("precision@10"))
        #expect(lines[2].hasSuffix("0.1250"))
        #expect(lines[9].hasPrefix("users"))
        #expect(lines[9].hasSuffix("42"))
        let compare = RankingMetrics.table([("als", m), ("popularity", m)])
        #expect(compare.split(separator: "\n")[2].split(separator: " ").map(String.init) == ["precision@10", "0.1250", "0.1250"])
        let data = try JSONEncoder().encode(m)
        #expect(try JSONDecoder().decode(RankingMetrics.self, from: data) == m)
    }
}
