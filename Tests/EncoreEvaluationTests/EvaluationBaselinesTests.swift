import Testing
@testable import EncoreCore
@testable import EncoreEvaluation


@Suite("Evaluation: baseline recommenders")
struct EvaluationBaselinesTests {
    /// 3 users x 4 items:
    ///   user 0: item 0 (5 plays), item 1 (1)
    ///   user 1: item 1 (1), item 2 (1)
    ///   user 2: item 1 (1)
    /// total plays: item 0 = 5, item 1 = 3, item 2 = 1, item 3 = 0 -> ranking [0, 1, 2, 3]
    /// users:       item 1 = 3, item 0 = 1, item 2 = 1, item 3 = 0 -> ranking [1, 0, 2, 3] (tie 0/2: lower index)
    static func train() throws -> CSRMatrix {
        try CSRMatrix(
            rows: 3, cols: 4, rowIndices: [0, 0, 1, 1, 2], colIndices: [0, 1, 1, 2, 1], values: [5, 1, 1, 1, 1])
    }

    @Test func popularityRanking() throws {
        let train = try Self.train()
        #expect(Baselines.popularityRanking(train: train) == [0, 1, 2, 3])
        #expect(Baselines.popularityRanking(train: train, measure: .userCount) == [1, 0, 2, 3])
    }

    @Test func popularityExcludesTrainingItems() throws {
        let recommend = Baselines.popularity(train: try Self.train())
        // user 0 skips 0, 1; user 1 skips 1, 2; user 2 skips 1; user 5 (unknown) skips nothing.
        #expect(recommend([0, 1, 2, 5], 2) == [[2, 3], [0, 3], [0, 2], [0, 1]])
        // Lists stop when the catalog runs out: user 0 has only 2 items left.
        #expect(recommend([0], 10) == [[2, 3]])
        let byUsers = Baselines.popularity(train: try Self.train(), measure: .userCount)
        #expect(byUsers([2], 3) == [[0, 2, 3]])
    }

    /// Popularity evaluated end to end. Test: user 0 -> {3}, user 1 -> {0}, user 2 -> {} (skipped).
    /// k = 1: user 0 gets [2] (miss), user 1 gets [0] (hit).
    /// precision = 1 / (1 + 1) = 0.5; hit rate 1/2; coverage |{2, 0}| / 4 = 0.5.
    /// AUC, N = 4: user 0: miss adds 0, A = (0 + 1)/2 * (3 - 1) = 1 -> 1/3;
    ///   user 1: hit, A = (1 + 1)/2 * (3 - 0) = 3 -> 3/3 = 1; mean 2/3.
    @Test func popularityEvaluated() throws {
        let train = try Self.train()
        let test = try CSRMatrix(rows: 3, cols: 4, rowIndices: [0, 1], colIndices: [3, 0], values: [1, 1])
        let m = try RankingMetrics.evaluate(test: test, k: 1, recommend: Baselines.popularity(train: train))
        #expect(m.usersEvaluated == 2)
        #expect(m.precision == 0.5)
        #expect(m.hitRate == 0.5)
        #expect(m.coverage == 0.5)
        #expect(abs(m.auc - 2.0 / 3) < 1e-12)
    }

    /// user 0 = [1, 0], user 1 = [0, 1]; items 0 = [1, 1], 1 = [2, 0], 2 = [0, 3].
    /// Scores: user 0 -> [1, 2, 0], user 1 -> [1, 0, 3]. User 0 has trained on item 1.
    /// Top 2: user 0 -> [0, 2] (item 1 excluded), user 1 -> [2, 0].
    @Test func bruteForceFactors() throws {
        let users = try Matrix(rows: 2, cols: 2, storage: [1, 0, 0, 1])
        let items = try Matrix(rows: 3, cols: 2, storage: [1, 1, 2, 0, 0, 3])
        let train = try CSRMatrix(rows: 2, cols: 3, rowIndices: [0], colIndices: [1], values: [1])
        let recommend = try Baselines.bruteForce(userFactors: users, itemFactors: items, train: train)
        #expect(recommend([0, 1], 2) == [[0, 2], [2, 0]])
        #expect(recommend([1], 1) == [[2]])
        #expect(recommend([9], 2) == [[]])
        #expect(throws: EvaluationError.self) {
            try Baselines.bruteForce(userFactors: users, itemFactors: Matrix(rows: 3, cols: 3), train: train)
        }
        #expect(throws: EvaluationError.self) {
            try Baselines.bruteForce(userFactors: users, itemFactors: Matrix(rows: 4, cols: 2), train: train)
        }
    }

    @Test func bruteForceScoresBreaksTiesByIndex() throws {
        let train = try CSRMatrix(rows: 1, cols: 4, rowIndices: [0], colIndices: [0], values: [1])
        let recommend = Baselines.bruteForce(train: train) { _ in [9, 1, 5, 5] }
        // Item 0 is excluded although best; 2 and 3 tie at 5: lower index first.
        #expect(recommend([0], 3) == [[2, 3, 1]])
    }
}
