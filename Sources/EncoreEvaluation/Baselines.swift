import EncoreCore

/// Reference recommenders for evaluation: the popularity baseline every model must beat, and brute-force scorers
/// that tests use to check faster code paths.
///
/// Each returns a ``BatchRecommender`` for ``RankingMetrics/evaluate(test:k:itemCount:threads:batchSize:recommend:)``.
public enum Baselines {
    /// What "popular" means for ``popularity(train:measure:)``.
    public typealias PopularityMeasure = EncoreCore.PopularityMeasure

    /// The items of `train` (a users x items matrix) from most to least popular.
    ///
    /// Ties, including the items never played (popularity 0, at the end), are in increasing index order.
    public static func popularityRanking(train: CSRMatrix, measure: PopularityMeasure = .totalWeight) -> [Int32] {
        train.popularityRanking(measure: measure)
    }

    /// The popularity baseline: every user gets the most popular items of `train` (see
    /// ``popularityRanking(train:measure:)``), skipping the items in the user's own training row.
    ///
    /// Lists have `min(k, items - the user's training items)` entries. A user outside `train`'s rows has no training
    /// items to skip.
    public static func popularity(train: CSRMatrix, measure: PopularityMeasure = .totalWeight) -> BatchRecommender {
        let ranking = popularityRanking(train: train, measure: measure)
        return { users, k in
            users.map { u in
                let seen = trainRow(train, u)
                var list: [Int32] = []
                list.reserveCapacity(max(0, min(k, ranking.count)))
                for item in ranking {
                    if list.count >= k { break }
                    if !UserScorer.contains(seen, item) { list.append(item) }
                }
                return list
            }
        }
    }

    /// A brute-force recommender over a scoring function: for each user, every item's score from
    /// `scores(user)` (one value per item), the `k` best by ``TopK`` (ties: lower index first), skipping the user's
    /// training items in `train`. Meant for tests of faster recommenders.
    public static func bruteForce(
        train: CSRMatrix, scores: @escaping @Sendable (_ user: Int32) -> [Float]
    ) -> BatchRecommender {
        return { users, k in
            users.map { u in
                let seen = trainRow(train, u)
                let s = scores(u)
                return s.withUnsafeBufferPointer { buffer in
                    TopK.select(buffer, k: k, exclude: { UserScorer.contains(seen, $0) }).indices
                }
            }
        }
    }

    /// A brute-force matrix-factorisation recommender: the score of (u, i) is the dot product of row `u` of
    /// `userFactors` and row `i` of `itemFactors`, summed in plain order one term at a time (no BLAS), and each user
    /// gets the `k` best items not in the user's training row. A user outside the factor rows gets an empty list.
    /// - Throws: ``EvaluationError/shapeMismatch(_:)`` when the factor widths differ or `train` is not
    ///   users x items of the factors.
    public static func bruteForce(
        userFactors: Matrix, itemFactors: Matrix, train: CSRMatrix
    ) throws(EvaluationError) -> BatchRecommender {
        guard userFactors.cols == itemFactors.cols else {
            throw .shapeMismatch("user factors have \(userFactors.cols) columns, item factors \(itemFactors.cols)")
        }
        guard train.rows == userFactors.rows, train.cols == itemFactors.rows else {
            throw .shapeMismatch(
                "train is \(train.rows) x \(train.cols), factors are \(userFactors.rows) users x \(itemFactors.rows) items")
        }
        let recommend = bruteForce(train: train) { u in
            guard u >= 0, Int(u) < userFactors.rows else { return [] }
            let f = userFactors.cols
            var scores = [Float](repeating: 0, count: itemFactors.rows)
            for i in 0..<itemFactors.rows {
                var s: Float = 0
                for c in 0..<f { s += userFactors[Int(u), c] * itemFactors[i, c] }
                scores[i] = s
            }
            return scores
        }
        return recommend
    }

    /// The training row of user `u`, empty when `u` is outside the matrix.
    static func trainRow(_ train: CSRMatrix, _ u: Int32) -> ArraySlice<Int32> {
        guard u >= 0, Int(u) < train.rows else { return [] }
        return train.columns(ofRow: Int(u))
    }
}
