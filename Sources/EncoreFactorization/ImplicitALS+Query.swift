import Foundation
import EncoreCore

/// Items ranked by score, best first.
public struct RankedItems: Sendable, Equatable {
    /// Item indices, best first.
    public var items: [Int32]
    /// Their scores.
    public var scores: [Float]

    /// A ranking from parallel arrays.
    public init(items: [Int32], scores: [Float]) {
        self.items = items
        self.scores = scores
    }
}

/// Why a model scores an item for a user: the user's history items and how much each contributes.
public struct Explanation: Sendable, Equatable {
    /// One history item's part of the score.
    public struct Contribution: Sendable, Equatable {
        /// The history item.
        public var item: Int32
        /// Its additive contribution to the score.
        public var score: Float
        /// `score / total`: the shares of all history items sum to 1.
        public var share: Float
    }

    /// The item explained.
    public var item: Int32
    /// The model's score for the item with the user vector solved exactly from the history.
    public var score: Float
    /// Every positive history item's contribution, largest first. They sum to ``score``.
    public var contributions: [Contribution]
}

extension ImplicitALS {
    // MARK: Scoring and recommendation

    /// The top `k` items for a user vector.
    ///
    /// - Parameters:
    ///   - vector: a user vector (a row of ``userFactors`` or the result of ``foldIn(items:values:)``).
    ///   - exclude: item indices never returned (already played, denied).
    ///   - allow: when given, only these items are candidates.
    public func recommend(
        vector: [Float], k: Int, exclude: Set<Int32> = [], allow: Set<Int32>? = nil
    ) throws(FactorizationError) -> RankedItems {
        let f = parameters.factors
        guard vector.count == f else { throw .shapeMismatch("user vector has \(vector.count) values, model has \(f) factors") }
        if let allow {
            var top = TopK(k: k)
            for i in allow.sorted() where i >= 0 && Int(i) < itemCount && !exclude.contains(i) {
                let s = itemFactors.storage.withUnsafeBufferPointer { ys in
                    vector.withUnsafeBufferPointer { Kernels.dot(ys.baseAddress! + Int(i) * f, $0.baseAddress!, f) }
                }
                top.push(i, s)
            }
            top.finish()
            return RankedItems(items: top.indices, scores: top.scores)
        }
        var scores = [Float](repeating: 0, count: itemCount)
        itemFactors.storage.withUnsafeBufferPointer { ys in
            vector.withUnsafeBufferPointer { v in
                scores.withUnsafeMutableBufferPointer { s in
                    BLAS.gemv(ys.baseAddress!, m: itemCount, n: f, v.baseAddress!, s.baseAddress!)
                }
            }
        }
        let picked = scores.withUnsafeBufferPointer { s in
            TopK.select(s, k: k, exclude: exclude.isEmpty ? nil : { exclude.contains($0) })
        }
        return RankedItems(items: picked.indices, scores: picked.scores)
    }

    /// The top `k` items for a known user.
    ///
    /// - Parameters:
    ///   - userItems: the users x items matrix the user's played items are read from (required when
    ///     `filterAlreadyLiked` is set).
    ///   - filterAlreadyLiked: leave out items the user has in `userItems` (the default, as in `implicit`).
    ///   - allow: when given, only these items are candidates.
    ///   - deny: items never returned.
    public func recommend(
        user: Int32, k: Int, userItems: CSRMatrix?, filterAlreadyLiked: Bool = true,
        allow: Set<Int32>? = nil, deny: Set<Int32> = []
    ) throws(FactorizationError) -> RankedItems {
        guard user >= 0, Int(user) < userCount else { throw .unknownIndex("user \(user) of \(userCount)") }
        var exclude = deny
        if filterAlreadyLiked {
            guard let userItems else { throw .shapeMismatch("filtering played items needs the user-items matrix") }
            guard Int(user) < userItems.rows else { throw .unknownIndex("user \(user) not in the user-items matrix") }
            exclude.formUnion(userItems.columns(ofRow: Int(user)))
        }
        return try recommend(vector: userFactors.row(Int(user)), k: k, exclude: exclude, allow: allow)
    }

    /// The top `k` items for each of many users: one BLAS `sgemm` per block of users, then a partial top-k per row,
    /// blocks spread over ``ALSParameters/effectiveThreads`` threads.
    ///
    /// - Returns: one ranking per user, in the order of `users`.
    public func recommend(
        users: [Int32], k: Int, userItems: CSRMatrix?, filterAlreadyLiked: Bool = true
    ) throws(FactorizationError) -> [RankedItems] {
        for u in users where u < 0 || Int(u) >= userCount { throw .unknownIndex("user \(u) of \(userCount)") }
        if filterAlreadyLiked {
            guard let userItems, userItems.rows >= userCount else {
                throw .shapeMismatch("filtering played items needs a user-items matrix with every user")
            }
        }
        let f = parameters.factors
        let n = itemCount
        let block = max(8, min(256, (1 << 22) / max(1, n)))
        let blocks = (users.count + block - 1) / block
        var results = [RankedItems](repeating: RankedItems(items: [], scores: []), count: users.count)
        results.withUnsafeMutableBufferPointer { out in
            let outp = UncheckedSendable(out.baseAddress!)
            userFactors.storage.withUnsafeBufferPointer { xs in
                itemFactors.storage.withUnsafeBufferPointer { ys in
                    let env = UncheckedSendable((xs.baseAddress!, ys.baseAddress!))
                    Parallel.forEach(blocks, threads: parameters.effectiveThreads) { b in
                        let (x, y) = env.value
                        let lo = b * block, hi = min(users.count, lo + block)
                        let m = hi - lo
                        var queries = [Float](repeating: 0, count: m * f)
                        for r in 0..<m {
                            let u = Int(users[lo + r])
                            for j in 0..<f { queries[r * f + j] = x[u * f + j] }
                        }
                        var scores = [Float](repeating: 0, count: m * n)
                        queries.withUnsafeBufferPointer { q in
                            scores.withUnsafeMutableBufferPointer { s in
                                BLAS.gemmABt(q.baseAddress!, y, s.baseAddress!, m: m, n: n, k: f)
                                for r in 0..<m {
                                    let row = s.baseAddress! + r * n
                                    if filterAlreadyLiked, let userItems {
                                        for c in userItems.columns(ofRow: Int(users[lo + r])) { row[Int(c)] = -.infinity }
                                    }
                                    var top = TopK(k: k)
                                    for i in 0..<n where row[i] >= top.threshold && row[i] > -.infinity {
                                        top.push(Int32(i), row[i])
                                    }
                                    top.finish()
                                    outp.value[lo + r] = RankedItems(items: top.indices, scores: top.scores)
                                }
                            }
                        }
                    }
                }
            }
        }
        return results
    }

    // MARK: Similarity

    /// The `k` items most similar to `item` by cosine similarity of their factors (the item itself left out unless
    /// `includeSelf`).
    public func similarItems(to item: Int32, k: Int, includeSelf: Bool = false) throws(FactorizationError) -> RankedItems {
        guard item >= 0, Int(item) < itemCount else { throw .unknownIndex("item \(item) of \(itemCount)") }
        return Self.cosineNeighbors(
            of: Int(item), in: itemFactors, norms: itemNorms, k: k, includeSelf: includeSelf)
    }

    /// The `k` users most similar to `user` by cosine similarity of their factors.
    public func similarUsers(to user: Int32, k: Int, includeSelf: Bool = false) throws(FactorizationError) -> RankedItems {
        guard user >= 0, Int(user) < userCount else { throw .unknownIndex("user \(user) of \(userCount)") }
        return Self.cosineNeighbors(
            of: Int(user), in: userFactors, norms: userFactors.rowNorms(), k: k, includeSelf: includeSelf)
    }

    static func cosineNeighbors(of row: Int, in m: Matrix, norms: [Float], k: Int, includeSelf: Bool) -> RankedItems {
        let f = m.cols
        var scores = [Float](repeating: 0, count: m.rows)
        m.storage.withUnsafeBufferPointer { ys in
            scores.withUnsafeMutableBufferPointer { s in
                BLAS.gemv(ys.baseAddress!, m: m.rows, n: f, ys.baseAddress! + row * f, s.baseAddress!)
            }
        }
        let own = norms[row]
        for i in 0..<scores.count {
            let d = own * norms[i]
            scores[i] = d > 0 ? scores[i] / d : 0
        }
        let picked = scores.withUnsafeBufferPointer { s in
            TopK.select(s, k: k, exclude: includeSelf ? nil : { Int($0) == row })
        }
        return RankedItems(items: picked.indices, scores: picked.scores)
    }

    // MARK: Fold-in and explanations

    /// Solves a user vector exactly (Cholesky) from a listening history, with the item factors fixed.
    ///
    /// This is how a new user, or a user with new plays, gets a vector without refitting: O(n·f² + f³) for a
    /// history of `n` items. Folding in a training user's own history reproduces the vector a Cholesky fit gives.
    ///
    /// - Parameters:
    ///   - items: the history's item indices (repeats are summed).
    ///   - values: the raw strengths (play counts or weights); confidence is `alpha * value`.
    public func foldIn(items: [Int32], values: [Float]) throws(FactorizationError) -> [Float] {
        let (cols, vals) = try history(items: items, values: values)
        let f = parameters.factors
        var x = [Float](repeating: 0, count: f)
        let gram = regularizedItemGram()
        let scratch = ALSSolvers.Scratch(factors: f)
        var failure: LinalgError?
        itemFactors.storage.withUnsafeBufferPointer { ys in
            gram.storage.withUnsafeBufferPointer { g in
                cols.withUnsafeBufferPointer { c in
                    vals.withUnsafeBufferPointer { v in
                        x.withUnsafeMutableBufferPointer { xb in
                            do throws(LinalgError) {
                                try ALSSolvers.cholesky(
                                    x: xb.baseAddress!, f: f, gram: g.baseAddress!, y: ys.baseAddress!,
                                    cols: c.baseAddress!, vals: v.baseAddress!, count: cols.count, scratch: scratch)
                            } catch { failure = error }
                        }
                    }
                }
            }
        }
        if let failure { throw .solveFailed("fold-in: \(failure)") }
        return x
    }

    /// Explains the score of `item` for a user with the given history, as `implicit`'s `explain` does
    /// (Hu, Koren and Volinsky 2008, section 5): with `W = (YᵀCY + λI)⁻¹`, history item `j` contributes
    /// `cⱼ · yᵢᵀ W yⱼ`, and the contributions sum to the score `yᵢ · x` of the exactly solved user vector `x`.
    public func explain(item: Int32, items: [Int32], values: [Float]) throws(FactorizationError) -> Explanation {
        guard item >= 0, Int(item) < itemCount else { throw .unknownIndex("item \(item) of \(itemCount)") }
        let (cols, vals) = try history(items: items, values: values)
        let f = parameters.factors
        let gram = regularizedItemGram()
        let scratch = ALSSolvers.Scratch(factors: f)
        var w = itemFactors.row(Int(item))
        var b = [Float](repeating: 0, count: f)
        var failure: LinalgError?
        itemFactors.storage.withUnsafeBufferPointer { ys in
            gram.storage.withUnsafeBufferPointer { g in
                cols.withUnsafeBufferPointer { c in
                    vals.withUnsafeBufferPointer { v in
                        b.withUnsafeMutableBufferPointer { bb in
                            ALSSolvers.normalEquations(
                                a: scratch.a, b: bb.baseAddress!, f: f, gram: g.baseAddress!, y: ys.baseAddress!,
                                cols: c.baseAddress!, vals: v.baseAddress!, count: cols.count,
                                gathered: &scratch.gathered)
                        }
                    }
                }
            }
        }
        w.withUnsafeMutableBufferPointer { wb in
            do throws(LinalgError) { try BLAS.choleskySolve(scratch.a, n: f, wb.baseAddress!) } catch { failure = error }
        }
        if let failure { throw .solveFailed("explain: \(failure)") }
        var contributions: [Explanation.Contribution] = []
        var total: Float = 0
        itemFactors.storage.withUnsafeBufferPointer { ys in
            w.withUnsafeBufferPointer { wb in
                for (j, c) in zip(cols, vals) where c > 0 {
                    let s = c * Kernels.dot(wb.baseAddress!, ys.baseAddress! + Int(j) * f, f)
                    total += s
                    contributions.append(.init(item: j, score: s, share: 0))
                }
            }
        }
        for i in contributions.indices { contributions[i].share = total != 0 ? contributions[i].score / total : 0 }
        contributions.sort { $0.score > $1.score || ($0.score == $1.score && $0.item < $1.item) }
        return Explanation(item: item, score: total, contributions: contributions)
    }

    /// The history of a known user from a users x items matrix, as `(items, values)` for ``foldIn(items:values:)``
    /// and ``explain(item:items:values:)``.
    public static func history(of user: Int32, in userItems: CSRMatrix) -> (items: [Int32], values: [Float]) {
        (Array(userItems.columns(ofRow: Int(user))), Array(userItems.values(ofRow: Int(user))))
    }

    // MARK: Refit

    /// Recomputes the vectors of the given users exactly from their rows in `userItems` (which may have more rows
    /// than the model: new users are added, with zero vectors for rows not listed).
    public mutating func refitUsers(_ users: [Int32], userItems: CSRMatrix) throws(FactorizationError) {
        userFactors = try refit(users, of: userFactors, from: userItems, given: itemFactors, side: "user")
    }

    /// Recomputes the vectors of the given items exactly from their rows in `itemUsers` (items x users).
    public mutating func refitItems(_ items: [Int32], itemUsers: CSRMatrix) throws(FactorizationError) {
        itemFactors = try refit(items, of: itemFactors, from: itemUsers, given: userFactors, side: "item")
    }

    /// `solving` with the listed rows solved exactly (Cholesky) from `matrix` given the other side's factors.
    private func refit(
        _ rows: [Int32], of solving: Matrix, from matrix: CSRMatrix, given other: Matrix, side: String
    ) throws(FactorizationError) -> Matrix {
        guard matrix.cols == other.rows else {
            throw .shapeMismatch("the \(side) matrix has \(matrix.cols) columns, the model's other side \(other.rows) rows")
        }
        for r in rows where r < 0 || Int(r) >= matrix.rows { throw .unknownIndex("\(side) \(r) of \(matrix.rows)") }
        var x = solving
        x.grow(toRows: matrix.rows)
        var p = parameters
        p.solver = .cholesky
        // At alpha 1 and floor 0 every value is its own confidence: no copy.
        let c = p.alpha == 1 && p.confidenceFloor == 0 ? matrix : matrix.mapValues { p.confidence($0) }
        try Self.solveSide(c, solving: &x, given: other, parameters: p, rows: rows)
        return x
    }

    // MARK: Helpers

    package func regularizedItemGram() -> Matrix {
        var g = itemGram
        for j in 0..<g.cols { g[j, j] += parameters.regularization }
        return g
    }

    /// Validates a history, sums repeated items and turns the sums into confidences (``ALSParameters/confidence(_:)``).
    package func history(items: [Int32], values: [Float]) throws(FactorizationError) -> ([Int32], [Float]) {
        guard items.count == values.count else {
            throw .shapeMismatch("history has \(items.count) items and \(values.count) values")
        }
        var merged: [Int32: Float] = [:]
        for (i, v) in zip(items, values) {
            guard i >= 0, Int(i) < itemCount else { throw .unknownIndex("item \(i) of \(itemCount)") }
            guard v.isFinite else { throw .invalidParameter("history value for item \(i) is not finite") }
            merged[i, default: 0] += v
        }
        let cols = merged.keys.sorted()
        return (cols, cols.map { parameters.confidence(merged[$0]!) })
    }
}
