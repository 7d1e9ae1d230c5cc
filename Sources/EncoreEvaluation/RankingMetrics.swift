import Foundation
import EncoreCore

/// A recommender as the evaluation sees it: for a batch of users (dense indices) and a list length `k`, the top-`k`
/// item indices of each user, best first, already excluding the user's training items.
///
/// It must return one list per user, in the order of `users`. A list may be shorter than `k` (the missing places
/// count as misses); items must be distinct and inside the catalog. Batches let the model score many users with
/// one matrix product (BLAS gemm). With more than one thread, ``RankingMetrics/evaluate(test:k:itemCount:threads:batchSize:recommend:)``
/// calls it from several threads at once, so it must be `@Sendable`.
public typealias BatchRecommender = @Sendable (_ users: [Int32], _ k: Int) -> [[Int32]]

/// Ranking metrics at a cut-off `k`, with exactly the definitions of Python `implicit` 0.7
/// (`implicit.evaluation.ranking_metrics_at_k`) for precision, MAP, NDCG and AUC, so numbers compare, plus recall,
/// hit rate and catalog coverage.
///
/// For a user `u` let `R` be the set of test items (the stored entries of row `u` of the test matrix, whatever their
/// value), `rec[0..<K]` the recommendation list (places past the end of a shorter list are misses), `hit(i)` whether
/// `rec[i]` is in `R`, `h` the number of hits, `c = min(K, |R|)` and `N` the number of items. Users with no test
/// item are skipped; `U` is the number of users evaluated.
///
/// - precision = `Σ_u h_u / Σ_u c_u` — micro-averaged: total hits over the total of `min(K, |R|)`, not a mean of
///   per-user precisions, and not divided by `K` (a user with 2 test items and 2 hits in 10 counts as 2/2).
/// - map = `(1/U) Σ_u (1/c_u) Σ_{i: hit(i)} (hits in rec[0...i]) / (i + 1)`.
/// - ndcg = `(1/U) Σ_u Σ_{i: hit(i)} g(i) / Σ_{j < c_u} g(j)` with `g(i) = 1 / log2(i + 2)` (binary gains; the ideal
///   DCG puts `min(K, |R|)` hits first).
/// - auc = `(1/U) Σ_u A_u / (|R| (N - |R|))`, where, walking `i = 0..<K` with a running hit count, every miss adds
///   the hits so far to `A_u`, and after the walk `A_u += (h + |R|) / 2 * (N - |R| - misses)`. `A_u` counts the
///   (positive, negative) pairs in the right order: a ranked negative is below the hits ranked before it; an
///   unranked negative is below all `h` ranked positives and ties (one half each) with the `|R| - h` unranked ones,
///   `h + (|R| - h) / 2 = (h + |R|) / 2`. (Training items, though never recommended, count among the `N - |R|`
///   negatives, as in implicit.)
/// - recall = `(1/U) Σ_u h_u / |R_u|` (not in implicit).
/// - hitRate = share of evaluated users with `h_u >= 1` (not in implicit).
/// - coverage = distinct items in the evaluated users' lists / `N` (not in implicit).
public struct RankingMetrics: Sendable, Codable, Equatable {
    /// The cut-off: the length of the recommendation lists scored.
    public var k: Int
    /// Micro-averaged precision: total hits / Σ min(k, |relevant|) (implicit's definition).
    public var precision: Double
    /// Mean over users of hits / |relevant|.
    public var recall: Double
    /// Mean average precision, each user's AP divided by min(k, |relevant|) (implicit's definition).
    public var map: Double
    /// Mean NDCG with binary gains and the ideal DCG over min(k, |relevant|) places (implicit's definition).
    public var ndcg: Double
    /// Mean of implicit's truncated AUC (see the type's documentation).
    public var auc: Double
    /// The share of evaluated users with at least one hit.
    public var hitRate: Double
    /// Distinct items recommended to the evaluated users / the number of items.
    public var coverage: Double
    /// The number of users evaluated (users with at least one test item).
    public var usersEvaluated: Int

    /// Metrics from their values.
    public init(
        k: Int, precision: Double, recall: Double, map: Double, ndcg: Double, auc: Double, hitRate: Double,
        coverage: Double, usersEvaluated: Int
    ) {
        self.k = k
        self.precision = precision
        self.recall = recall
        self.map = map
        self.ndcg = ndcg
        self.auc = auc
        self.hitRate = hitRate
        self.coverage = coverage
        self.usersEvaluated = usersEvaluated
    }

    // MARK: - Evaluation through a recommender

    /// Evaluates a recommender on every user with test items, in batches.
    ///
    /// The users with at least one stored entry in `test` are taken in index order, cut into batches of `batchSize`,
    /// and `recommend(batch, k)` is called once per batch (from up to `threads` threads at once). The lists are then
    /// scored as described on the type. The result does not depend on `threads`.
    /// - Parameters:
    ///   - test: the held-out users x items matrix; a stored entry marks a relevant item.
    ///   - k: the cut-off, at least 1.
    ///   - itemCount: the number of items `N` in the catalog (AUC's negatives, coverage's denominator);
    ///     `nil` for `test.cols`. Must be at least `test.cols`.
    ///   - threads: the number of batches in flight at once; 0 uses every core.
    ///   - batchSize: the number of users per call of `recommend`, at least 1.
    ///   - recommend: the recommender; see ``BatchRecommender``.
    /// - Throws: ``EvaluationError/invalidParameter(name:value:expected:)`` for a bad `k`, `itemCount`, `threads` or
    ///   `batchSize`; ``EvaluationError/invalidRecommendations(user:reason:)`` when the recommender returns the
    ///   wrong number of lists, an item out of range or a duplicate; ``EvaluationError/noTestUsers`` when `test` is
    ///   empty; ``EvaluationError/noNegativeItems(user:relevant:itemCount:)`` when a user's test items are every item.
    public static func evaluate(
        test: CSRMatrix, k: Int, itemCount: Int? = nil, threads: Int = 1, batchSize: Int = 1024,
        recommend: BatchRecommender
    ) throws(EvaluationError) -> RankingMetrics {
        let n = try checkArguments(test: test, k: k, itemCount: itemCount)
        guard threads >= 0 else {
            throw .invalidParameter(name: "threads", value: "\(threads)", expected: "an integer >= 0 (0: every core)")
        }
        guard batchSize >= 1 else {
            throw .invalidParameter(name: "batchSize", value: "\(batchSize)", expected: "an integer >= 1")
        }
        let users = (0..<test.rows).filter { test.count(ofRow: $0) > 0 }.map { Int32($0) }
        guard !users.isEmpty else { throw EvaluationError.noTestUsers }
        let scorer = UserScorer(k: k, itemCount: n)
        let batchCount = (users.count + batchSize - 1) / batchSize
        var results = [Result<BatchSums, EvaluationError>?](repeating: nil, count: batchCount)
        let threadCount = threads == 0 ? Parallel.coreCount : threads
        results.withUnsafeMutableBufferPointer { out in
            Parallel.forEach(batchCount, threads: threadCount) { b in
                let batch = Array(users[(b * batchSize)..<min(users.count, (b + 1) * batchSize)])
                let lists = recommend(batch, k)
                out[b] = Result { () throws(EvaluationError) -> BatchSums in
                    guard lists.count == batch.count else {
                        throw .invalidRecommendations(
                            user: batch[0],
                            reason: "the recommender returned \(lists.count) lists for a batch of \(batch.count) users "
                                + "starting at this one")
                    }
                    var sums = BatchSums()
                    for (u, list) in zip(batch, lists) {
                        try scorer.score(user: u, list: list, relevant: test.columns(ofRow: Int(u)), into: &sums)
                    }
                    sums.deduplicateItems()
                    return sums
                }
            }
        }
        var total = BatchSums()
        var coverage = CoverageCounter(itemCount: n)
        for r in results {
            // Every batch index was visited by Parallel.forEach, so every entry is set.
            guard let r else { continue }
            switch r {
            case .success(let sums):
                total.add(sums)
                coverage.mark(sums.items)
            case .failure(let error): throw error
            }
        }
        return total.metrics(k: k, distinctItems: coverage.distinct, itemCount: n)
    }

    // MARK: - Evaluation of given lists

    /// Evaluates given recommendation lists: `recommendations[j]` is the list of `users[j]`.
    ///
    /// Only the listed users are considered, and of them only those with test items are evaluated (the others are
    /// skipped, as in implicit). To compare with implicit, list every user with a test item, or use
    /// ``evaluate(test:k:itemCount:threads:batchSize:recommend:)``. Lists longer than `k` are cut to `k`.
    /// - Throws: as ``evaluate(test:k:itemCount:threads:batchSize:recommend:)``, plus
    ///   ``EvaluationError/shapeMismatch(_:)`` when the arrays differ in length and
    ///   ``EvaluationError/invalidRecommendations(user:reason:)`` for a user out of range or listed twice.
    public static func evaluate(
        users: [Int32], recommendations: [[Int32]], test: CSRMatrix, k: Int, itemCount: Int? = nil
    ) throws(EvaluationError) -> RankingMetrics {
        let n = try checkArguments(test: test, k: k, itemCount: itemCount)
        guard users.count == recommendations.count else {
            throw .shapeMismatch("\(users.count) users but \(recommendations.count) recommendation lists")
        }
        var listed = [Bool](repeating: false, count: test.rows)
        let scorer = UserScorer(k: k, itemCount: n)
        var sums = BatchSums()
        for (u, list) in zip(users, recommendations) {
            guard u >= 0, Int(u) < test.rows else {
                throw .invalidRecommendations(user: u, reason: "no such user: the test matrix has \(test.rows) rows")
            }
            guard !listed[Int(u)] else { throw .invalidRecommendations(user: u, reason: "the user is listed twice") }
            listed[Int(u)] = true
            let relevant = test.columns(ofRow: Int(u))
            guard !relevant.isEmpty else { continue }
            try scorer.score(user: u, list: list, relevant: relevant, into: &sums)
        }
        guard sums.users > 0 else { throw .noTestUsers }
        var coverage = CoverageCounter(itemCount: n)
        coverage.mark(sums.items)
        return sums.metrics(k: k, distinctItems: coverage.distinct, itemCount: n)
    }

    /// Evaluates recommendation lists keyed by user; see ``evaluate(users:recommendations:test:k:itemCount:)``.
    public static func evaluate(
        recommendations: [Int32: [Int32]], test: CSRMatrix, k: Int, itemCount: Int? = nil
    ) throws(EvaluationError) -> RankingMetrics {
        let users = recommendations.keys.sorted()
        return try evaluate(
            users: users, recommendations: users.map { recommendations[$0] ?? [] }, test: test, k: k,
            itemCount: itemCount)
    }

    // MARK: - Reporting

    /// The metrics by name with the cut-off, e.g. `precision@10`, `recall@10`, `map@10`, `ndcg@10`, `auc@10`,
    /// `hit_rate@10`, `coverage@10`, plus `users` (the number of users evaluated).
    public func asDictionary() -> [String: Double] {
        var d: [String: Double] = [:]
        for (name, value) in namedValues { d["\(name)@\(k)"] = value }
        d["users"] = Double(usersEvaluated)
        return d
    }

    /// A plain-text table of these metrics, one metric a line, under a column titled `title`.
    public func table(title: String = "value") -> String {
        RankingMetrics.table([(title, self)])
    }

    /// A plain-text table comparing several models (one column each, e.g. ALS against the popularity baseline).
    ///
    /// Rows are `precision@k`, `recall@k`, `map@k`, `ndcg@k`, `auc@k`, `hit_rate@k`, `coverage@k` (4 decimals) and
    /// `users`; the `@k` of a row is the first column's `k` and every column states its own `k` in its header.
    public static func table(_ columns: [(name: String, metrics: RankingMetrics)]) -> String {
        let k = columns.first?.metrics.k ?? 0
        let labels = RankingMetrics.metricNames.map { "\($0)@\(k)" } + ["users"]
        let header = ["metric"] + columns.map { "\($0.name) (k=\($0.metrics.k))" }
        var cells: [[String]] = [header]
        for (row, label) in labels.enumerated() {
            var line = [label]
            for c in columns {
                if row < RankingMetrics.metricNames.count {
                    line.append(String(format: "%.4f", c.metrics.namedValues[row].value))
                } else {
                    line.append("\(c.metrics.usersEvaluated)")
                }
            }
            cells.append(line)
        }
        let widths = (0..<header.count).map { c in cells.map { $0[c].count }.max() ?? 0 }
        var out = ""
        for (r, line) in cells.enumerated() {
            var text = ""
            for (c, cell) in line.enumerated() {
                let pad = String(repeating: " ", count: widths[c] - cell.count)
                // The label column is left-aligned, numbers right-aligned.
                text += c == 0 ? cell + pad : "  " + pad + cell
            }
            out += text + "\n"
            if r == 0 { out += String(repeating: "-", count: text.count) + "\n" }
        }
        return out
    }

    /// The metric names, in report order.
    static let metricNames = ["precision", "recall", "map", "ndcg", "auc", "hit_rate", "coverage"]

    /// The metric values with their names, in report order.
    var namedValues: [(name: String, value: Double)] {
        let values = [precision, recall, map, ndcg, auc, hitRate, coverage]
        return Array(zip(RankingMetrics.metricNames, values))
    }

    /// Checks `k` and the item count; returns the item count to use.
    private static func checkArguments(test: CSRMatrix, k: Int, itemCount: Int?) throws(EvaluationError) -> Int {
        guard k >= 1 else { throw .invalidParameter(name: "k", value: "\(k)", expected: "an integer >= 1") }
        let n = itemCount ?? test.cols
        guard n >= test.cols, n >= 1 else {
            throw .invalidParameter(
                name: "itemCount", value: "\(n)", expected: "at least the test matrix's \(test.cols) columns and >= 1")
        }
        return n
    }
}

/// Scores one user's list against the user's test items (implicit's inner loop, plus recall and hit rate).
struct UserScorer: Sendable {
    let k: Int
    let itemCount: Int
    /// `cg[i] = 1 / log2(i + 2)`: the discounted gain of a hit at place `i`.
    let cg: [Double]
    /// `cgSum[i] = cg[0] + ... + cg[i]`: the ideal DCG with `i + 1` hits.
    let cgSum: [Double]

    init(k: Int, itemCount: Int) {
        self.k = k
        self.itemCount = itemCount
        cg = (0..<k).map { 1 / Foundation.log2(Double($0 + 2)) }
        var sums: [Double] = []
        sums.reserveCapacity(k)
        var s = 0.0
        for g in cg {
            s += g
            sums.append(s)
        }
        cgSum = sums
    }

    /// Adds user `user`'s terms to `sums`. `relevant` is the user's sorted, non-empty test row.
    func score(
        user: Int32, list: [Int32], relevant: ArraySlice<Int32>, into sums: inout BatchSums
    ) throws(EvaluationError) {
        let ranked = list.prefix(k)
        for item in ranked where item < 0 || Int(item) >= itemCount {
            throw .invalidRecommendations(user: user, reason: "item \(item) is outside the \(itemCount) items")
        }
        if ranked.count > 1 {
            let sorted = ranked.sorted()
            for j in 1..<sorted.count where sorted[j] == sorted[j - 1] {
                throw .invalidRecommendations(user: user, reason: "item \(sorted[j]) is recommended twice")
            }
        }
        let numPos = Double(relevant.count)
        let numNeg = Double(itemCount - relevant.count)
        guard numNeg > 0 else {
            throw .noNegativeItems(user: user, relevant: relevant.count, itemCount: itemCount)
        }
        let capped = min(k, relevant.count)
        let idcg = cgSum[capped - 1]
        var hit = 0.0, miss = 0.0, ap = 0.0, dcg = 0.0, auc = 0.0
        for i in 0..<k {
            if i < ranked.count, Self.contains(relevant, ranked[ranked.startIndex + i]) {
                hit += 1
                ap += hit / Double(i + 1)
                dcg += cg[i] / idcg
            } else {
                miss += 1
                auc += hit
            }
        }
        auc += ((hit + numPos) / 2.0) * (numNeg - miss)
        sums.hits += hit
        sums.precisionDivisor += Double(capped)
        sums.ap += ap / Double(capped)
        sums.ndcg += dcg
        sums.auc += auc / (numPos * numNeg)
        sums.recall += hit / numPos
        if hit > 0 { sums.usersWithHit += 1 }
        sums.users += 1
        sums.items.append(contentsOf: ranked)
    }

    /// Binary search in a sorted row.
    static func contains(_ row: ArraySlice<Int32>, _ item: Int32) -> Bool {
        var lo = row.startIndex, hi = row.endIndex
        while lo < hi {
            let mid = (lo + hi) / 2
            if row[mid] < item { lo = mid + 1 } else { hi = mid }
        }
        return lo < row.endIndex && row[lo] == item
    }
}

/// Running sums of the per-user terms over a batch (or over everything).
struct BatchSums: Sendable {
    /// Σ hits (precision's numerator).
    var hits = 0.0
    /// Σ min(k, |relevant|) (precision's denominator).
    var precisionDivisor = 0.0
    /// Σ AP / min(k, |relevant|).
    var ap = 0.0
    /// Σ DCG / IDCG.
    var ndcg = 0.0
    /// Σ per-user AUC.
    var auc = 0.0
    /// Σ hits / |relevant|.
    var recall = 0.0
    /// Users with at least one hit.
    var usersWithHit = 0
    /// Users evaluated.
    var users = 0
    /// The items recommended in this batch (with repeats across users).
    var items: [Int32] = []

    /// Sorts ``items`` and removes repeats, so a finished batch holds little memory.
    mutating func deduplicateItems() {
        items.sort()
        var out: [Int32] = []
        out.reserveCapacity(items.count)
        for i in items where out.last != i { out.append(i) }
        items = out
    }

    /// Adds another batch's sums (not its items: those go to a ``CoverageCounter``).
    mutating func add(_ o: BatchSums) {
        hits += o.hits
        precisionDivisor += o.precisionDivisor
        ap += o.ap
        ndcg += o.ndcg
        auc += o.auc
        recall += o.recall
        usersWithHit += o.usersWithHit
        users += o.users
    }

    /// The metrics (requires `users > 0`).
    func metrics(k: Int, distinctItems: Int, itemCount: Int) -> RankingMetrics {
        let u = Double(users)
        return RankingMetrics(
            k: k, precision: hits / precisionDivisor, recall: recall / u, map: ap / u, ndcg: ndcg / u, auc: auc / u,
            hitRate: Double(usersWithHit) / u, coverage: Double(distinctItems) / Double(itemCount),
            usersEvaluated: users)
    }
}

/// Counts the distinct items recommended (items already checked to be in range).
struct CoverageCounter {
    private var seen: [Bool]
    /// The number of distinct items marked so far.
    private(set) var distinct = 0

    init(itemCount: Int) { seen = [Bool](repeating: false, count: itemCount) }

    /// Marks recommended items.
    mutating func mark(_ items: [Int32]) {
        for i in items where !seen[Int(i)] {
            seen[Int(i)] = true
            distinct += 1
        }
    }
}
