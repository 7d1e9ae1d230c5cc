import Foundation
import EncoreCore

/// What ``ImplicitALS/fit(_:warmStart:progress:)`` reports after each iteration.
public struct ALSProgress: Sendable, Equatable {
    /// The iteration just finished, from 1.
    public var iteration: Int
    /// The number of iterations in the fit.
    public var iterations: Int
    /// Seconds the iteration took.
    public var seconds: Double
    /// Seconds since the fit started.
    public var elapsed: Double
    /// The training loss after the iteration, when ``ALSParameters/calculateLoss`` is set.
    public var loss: Double?
}

extension ImplicitALS {
    /// Fits the factors to a users x items matrix of raw interaction strengths (play counts or weighted values).
    ///
    /// The confidence of a stored value `r` is `alpha * r`, at least ``ALSParameters/confidenceFloor``; a negative
    /// value marks a negative example of confidence `alpha * |r|` (at least the floor too). Each iteration solves
    /// every user given the items, then every item given the users, on
    /// ``ALSParameters/effectiveThreads`` threads (OpenBLAS stays single-threaded meanwhile).
    ///
    /// - Parameters:
    ///   - userItems: users x items, for example `Interactions.matrix()` after ``ConfidenceWeighting``.
    ///   - warmStart: keep the current factors where their shape allows (new rows start random), as when refitting
    ///     last week's model on this week's data; otherwise start from seeded random factors like `implicit`.
    ///   - progress: called on the calling thread after every iteration.
    /// - Returns: one ``ALSProgress`` per iteration.
    @discardableResult
    public mutating func fit(
        _ userItems: CSRMatrix, warmStart: Bool = false, progress: ((ALSProgress) -> Void)? = nil
    ) throws(FactorizationError) -> [ALSProgress] {
        try parameters.validate()
        for v in userItems.values where !v.isFinite {
            throw .invalidParameter("the interaction matrix holds a non-finite value")
        }
        let f = parameters.factors
        // Users and items are solved in order of descending activity and popularity: the factor rows every solve
        // gathers then cluster by how often they are read, so the popular ones stay in cache. The factors are
        // returned in the caller's order.
        let userOrder = Self.descendingCountOrder((0..<userItems.rows).map { userItems.count(ofRow: $0) })
        let itemOrder = userItems.popularityRanking(measure: .userCount)
        let (cui, ciu) = try Self.reordered(
            userItems, rowOrder: userOrder, columnOrder: itemOrder, confidence: parameters.confidence)
        var x: Matrix, y: Matrix
        if warmStart && userFactors.cols == f && itemFactors.cols == f {
            x = Self.extended(userFactors, rows: cui.rows, seed: parameters.seed)
            y = Self.extended(itemFactors, rows: cui.cols, seed: parameters.seed &+ 1)
        } else {
            x = Matrix.random(rows: cui.rows, cols: f, scale: 0.01, seed: parameters.seed)
            y = Matrix.random(rows: cui.cols, cols: f, scale: 0.01, seed: parameters.seed &+ 1)
        }
        x = Self.gatheredRows(x, order: userOrder)
        y = Self.gatheredRows(y, order: itemOrder)
        var reports: [ALSProgress] = []
        let start = Date()
        for it in 0..<parameters.iterations {
            let t0 = Date()
            try Self.solveSide(cui, solving: &x, given: y, parameters: parameters)
            try Self.solveSide(ciu, solving: &y, given: x, parameters: parameters)
            let loss = parameters.calculateLoss ? Self.loss(cui, x: x, y: y, parameters: parameters, confidencesApplied: true) : nil
            let now = Date()
            let report = ALSProgress(
                iteration: it + 1, iterations: parameters.iterations, seconds: now.timeIntervalSince(t0),
                elapsed: now.timeIntervalSince(start), loss: loss)
            reports.append(report)
            progress?(report)
        }
        userFactors = Self.scatteredRows(x, order: userOrder)
        itemFactors = Self.scatteredRows(y, order: itemOrder)
        return reports
    }

    /// The indices ordered by descending count, ties by index.
    static func descendingCountOrder(_ counts: [Int]) -> [Int32] {
        (0..<Int32(counts.count)).sorted { a, b in
            let ca = counts[Int(a)], cb = counts[Int(b)]
            return ca != cb ? ca > cb : a < b
        }
    }

    /// `m` with row `k` of the result holding row `rowOrder[k]` and column `k` holding column `columnOrder[k]`, each
    /// value replaced by its `confidence`; and its transpose. Both keep their columns sorted within each row.
    static func reordered(
        _ m: CSRMatrix, rowOrder: [Int32], columnOrder: [Int32], confidence: (Float) -> Float
    ) throws(FactorizationError) -> (CSRMatrix, CSRMatrix) {
        var newColumn = [Int32](repeating: 0, count: m.cols)
        for (k, c) in columnOrder.enumerated() { newColumn[Int(c)] = Int32(k) }
        // The transpose first: visiting the new rows in order fills each column's list in ascending row order.
        var start = [Int](repeating: 0, count: m.cols + 1)
        for c in m.indices { start[Int(newColumn[Int(c)]) + 1] += 1 }
        for c in 0..<m.cols { start[c + 1] += start[c] }
        var next = start
        var tIndices = [Int32](repeating: 0, count: m.nnz)
        var tValues = [Float](repeating: 0, count: m.nnz)
        for (k, r) in rowOrder.enumerated() {
            for p in m.indptr[Int(r)]..<m.indptr[Int(r) + 1] {
                let c = Int(newColumn[Int(m.indices[p])])
                tIndices[next[c]] = Int32(k)
                tValues[next[c]] = confidence(m.values[p])
                next[c] += 1
            }
        }
        let t: CSRMatrix
        do {
            t = try CSRMatrix(rows: m.cols, cols: m.rows, indptr: start, indices: tIndices, values: tValues)
        } catch {
            throw .invalidParameter("the interaction matrix reordered by activity is not valid: \(error)")
        }
        return (t.transposed(), t)
    }

    /// Rows of `m` in `order`: row `k` of the result is row `order[k]` of `m`.
    static func gatheredRows(_ m: Matrix, order: [Int32]) -> Matrix {
        var out = Matrix(rows: m.rows, cols: m.cols)
        let f = m.cols
        out.storage.withUnsafeMutableBufferPointer { o in
            m.storage.withUnsafeBufferPointer { s in
                for (k, r) in order.enumerated() {
                    (o.baseAddress! + k * f).update(from: s.baseAddress! + Int(r) * f, count: f)
                }
            }
        }
        return out
    }

    /// The inverse of ``gatheredRows(_:order:)``: row `order[k]` of the result is row `k` of `m`.
    static func scatteredRows(_ m: Matrix, order: [Int32]) -> Matrix {
        var out = Matrix(rows: m.rows, cols: m.cols)
        let f = m.cols
        out.storage.withUnsafeMutableBufferPointer { o in
            m.storage.withUnsafeBufferPointer { s in
                for (k, r) in order.enumerated() {
                    (o.baseAddress! + Int(r) * f).update(from: s.baseAddress! + k * f, count: f)
                }
            }
        }
        return out
    }

    /// The `implicit` training loss of the model on `userItems`:
    /// `(Σᵤᵢ cᵤᵢ(pᵤᵢ − xᵤ·yᵢ)² + λ(Σ‖xᵤ‖² + Σ‖yᵢ‖²)) / (Σ c⁺ + users·items − nnz)`.
    ///
    /// - Parameter alphaApplied: whether `userItems` already holds the confidences (``ALSParameters/confidence(_:)``).
    public func loss(_ userItems: CSRMatrix, alphaApplied: Bool = false) -> Double {
        Self.loss(userItems, x: userFactors, y: itemFactors, parameters: parameters, confidencesApplied: alphaApplied)
    }

    static func loss(_ userItems: CSRMatrix, x userFactors: Matrix, y itemFactors: Matrix,
                     parameters: ALSParameters, confidencesApplied: Bool) -> Double {
        let f = parameters.factors
        let gram = BLAS.gram(itemFactors, threads: parameters.effectiveThreads)
        let block = 256
        let blocks = (userItems.rows + block - 1) / block
        var partial = [Double](repeating: 0, count: blocks)
        var partialConfidence = [Double](repeating: 0, count: blocks)
        partial.withUnsafeMutableBufferPointer { pb in
            partialConfidence.withUnsafeMutableBufferPointer { cb in
                let pbs = UncheckedSendable(pb.baseAddress!), cbs = UncheckedSendable(cb.baseAddress!)
                userFactors.storage.withUnsafeBufferPointer { xs in
                    itemFactors.storage.withUnsafeBufferPointer { ys in
                        gram.storage.withUnsafeBufferPointer { gs in
                            userItems.indices.withUnsafeBufferPointer { idx in
                                userItems.values.withUnsafeBufferPointer { val in
                                    let env = UncheckedSendable((xs.baseAddress!, ys.baseAddress!, gs.baseAddress!,
                                                                 idx.baseAddress!, val.baseAddress!))
                                    Parallel.forEach(blocks, threads: parameters.effectiveThreads) { b in
                                        let (x0, y, g, ind, vs) = env.value
                                        var total = 0.0, conf = 0.0
                                        for u in (b * block)..<min(userItems.rows, (b + 1) * block) {
                                            let x = x0 + u * f
                                            var xg = 0.0
                                            for j in 0..<f { xg += Double(x[j] * Kernels.dot(g + j * f, x, f)) }
                                            total += xg + Double(parameters.regularization * Kernels.dot(x, x, f))
                                            for p in userItems.indptr[u]..<userItems.indptr[u + 1] {
                                                var c = Double(confidencesApplied ? vs[p] : parameters.confidence(vs[p]))
                                                let s = Double(Kernels.dot(y + Int(ind[p]) * f, x, f))
                                                if c > 0 {
                                                    total += (c - 1) * s * s - 2 * c * s + c
                                                    conf += c
                                                } else {
                                                    c = -c
                                                    total += (c - 1) * s * s
                                                }
                                            }
                                        }
                                        pbs.value[b] = total
                                        cbs.value[b] = conf
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        var total = partial.reduce(0, +)
        let itemNorm = itemFactors.storage.withUnsafeBufferPointer { ys in
            (0..<itemFactors.rows).reduce(0.0) { $0 + Double(Kernels.dot(ys.baseAddress! + $1 * f, ys.baseAddress! + $1 * f, f)) }
        }
        total += Double(parameters.regularization) * itemNorm
        let denominator = partialConfidence.reduce(0, +) + Double(userItems.rows) * Double(userItems.cols)
            - Double(userItems.nnz)
        return denominator > 0 ? total / denominator : total
    }

    /// `YᵀY + λI` for the given factors.
    static func regularizedGram(_ y: Matrix, regularization: Float, threads: Int) -> Matrix {
        var g = BLAS.gram(y, threads: threads)
        for j in 0..<y.cols { g[j, j] += regularization }
        return g
    }

    /// Solves every row of `x` given the fixed factors `y` and the rows' confidences `c` (already scaled by alpha).
    static func solveSide(
        _ c: CSRMatrix, solving x: inout Matrix, given y: Matrix, parameters: ALSParameters,
        rows: [Int32]? = nil
    ) throws(FactorizationError) {
        let f = parameters.factors
        let threads = parameters.effectiveThreads
        let gram = regularizedGram(y, regularization: parameters.regularization, threads: threads)
        let solver = parameters.solver
        let steps = parameters.cgSteps
        let block = 64
        let rowCount = rows?.count ?? c.rows
        let blocks = (rowCount + block - 1) / block
        let firstFailure = Locked<String?>(nil)
        x.storage.withUnsafeMutableBufferPointer { xs in
            y.storage.withUnsafeBufferPointer { ys in
                gram.storage.withUnsafeBufferPointer { gs in
                    c.indices.withUnsafeBufferPointer { idx in
                        c.values.withUnsafeBufferPointer { val in
                            c.indptr.withUnsafeBufferPointer { ptr in
                                let env = UncheckedSendable((xs.baseAddress!, ys.baseAddress!, gs.baseAddress!,
                                                             idx.baseAddress!, val.baseAddress!, ptr.baseAddress!))
                                Parallel.forEach(blocks, threads: threads) { b in
                                    let (x0, y0, g, ind, vs, ip) = env.value
                                    let scratch = ALSSolvers.Scratch(factors: f)
                                    for k in (b * block)..<min(rowCount, (b + 1) * block) {
                                        let u = rows.map { Int($0[k]) } ?? k
                                        let lo = ip[u], n = ip[u + 1] - lo
                                        let xu = x0 + u * f
                                        switch solver {
                                        case .cg:
                                            ALSSolvers.conjugateGradient(
                                                x: xu, f: f, gram: g, y: y0, cols: ind + lo, vals: vs + lo, count: n,
                                                steps: steps, r: scratch.r, p: scratch.p, ap: scratch.ap)
                                        case .cholesky:
                                            do throws(LinalgError) {
                                                try ALSSolvers.cholesky(
                                                    x: xu, f: f, gram: g, y: y0, cols: ind + lo, vals: vs + lo,
                                                    count: n, scratch: scratch)
                                            } catch {
                                                let message = "row \(u): \(error)"
                                                firstFailure.withLock { if $0 == nil { $0 = message } }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        if let message = firstFailure.value { throw .solveFailed(message) }
    }

    /// `m` with rows appended (seeded random, like a fresh fit) up to `rows`, or cut to `rows`.
    static func extended(_ m: Matrix, rows: Int, seed: UInt64) -> Matrix {
        if m.rows == rows { return m }
        if m.rows > rows {
            return (try? Matrix(rows: rows, cols: m.cols, storage: Array(m.storage[0..<(rows * m.cols)])))
                ?? Matrix(rows: rows, cols: m.cols)
        }
        var out = m
        out.grow(toRows: rows)
        let fresh = Matrix.random(rows: rows - m.rows, cols: m.cols, scale: 0.01, seed: seed ^ UInt64(m.rows))
        out.storage.replaceSubrange((m.rows * m.cols)..<(rows * m.cols), with: fresh.storage)
        return out
    }
}
